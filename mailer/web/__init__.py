"""The ASGI app: public consent pages and the admin API."""

from mailer.web.app import create_app

__all__ = ["create_app"]

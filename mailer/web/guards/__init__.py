"""Pure ASGI middlewares around the whole app: they answer before any route or body read."""

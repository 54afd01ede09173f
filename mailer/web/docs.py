"""/api/docs: Swagger UI served from the package, so the page loads nothing from a third party.

The assets are swagger-ui-dist (Apache-2.0), vendored under
`mailer/web/static/swagger-ui/` with their licence (see VENDORED.md there). The
page's scripts are all same-origin files, so its policy allows no inline
script; the validator badge (an image from swagger.io) is turned off.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse, Response
from fastapi.staticfiles import StaticFiles

ASSETS = Path(__file__).resolve().parent / "static" / "swagger-ui"
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline';"
    " img-src 'self' data:; connect-src 'self'; base-uri 'none'; form-action 'none';"
    " frame-ancestors 'none'"
)

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="robots" content="noindex">
<title>mailer admin API</title>
<link rel="stylesheet" href="/api/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/api/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/api/docs/assets/swagger-ui-bundle.js"></script>
<script src="/api/docs/init.js"></script>
</body>
</html>
"""

_INIT = """window.ui = SwaggerUIBundle({
  url: "/api/openapi.json",
  dom_id: "#swagger-ui",
  layout: "BaseLayout",
  deepLinking: true,
  validatorUrl: null,
  presets: [SwaggerUIBundle.presets.apis],
});
"""


async def _docs() -> Response:
    return HTMLResponse(_PAGE, headers={"Content-Security-Policy": DOCS_CSP})


async def _init() -> Response:
    return Response(_INIT, media_type="text/javascript")


def install(app: FastAPI) -> None:
    app.add_api_route("/api/docs", _docs, methods=["GET"], include_in_schema=False)
    app.add_api_route("/api/docs/init.js", _init, methods=["GET"], include_in_schema=False)
    app.mount("/api/docs/assets", StaticFiles(directory=ASSETS), name="api-docs-assets")

"""The workspace's static files, from the package: htmx (vendored) and its style sheet.

Served with a one-year cache: the URLs carry the version (htmx) or a digest of
the content (the style sheet), so a change is a new URL.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import Response

STATIC = Path(__file__).resolve().parent.parent / "static" / "admin"
HTMX_VERSION = "2.0.11"
_CSS = (STATIC / "admin.css").read_bytes()
CSS_URL = f"/static/admin/admin-{hashlib.sha256(_CSS).hexdigest()[:12]}.css"
HTMX_URL = f"/static/admin/htmx-{HTMX_VERSION}.min.js"
_FILES = {
    CSS_URL: ("text/css; charset=utf-8", _CSS),
    HTMX_URL: ("text/javascript; charset=utf-8", (STATIC / "htmx.min.js").read_bytes()),
}
CACHE = "public, max-age=31536000, immutable"

router = APIRouter(include_in_schema=False)


@router.get("/static/admin/{name}")
async def asset(name: str) -> Response:
    found = _FILES.get(f"/static/admin/{name}")
    if found is None:
        raise HTTPException(404, "no such file")
    media_type, body = found
    return Response(body, media_type=media_type, headers={"Cache-Control": CACHE})

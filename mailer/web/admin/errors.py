"""The workspace's answers to a missing login (303), a role not allowed or an expired form (403)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.responses import RedirectResponse, Response

from mailer.web.admin.auth import CSRFRefused, Forbidden, LoginRequired
from mailer.web.admin.render import is_htmx, page


def install(app: FastAPI) -> None:
    async def login_required(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, LoginRequired)
        if is_htmx(request):  # htmx follows HX-Redirect with a whole page
            return Response(status_code=204, headers={"HX-Redirect": exc.target})
        return RedirectResponse(exc.target, status_code=303)

    async def forbidden(request: Request, exc: Exception) -> Response:
        staff = getattr(request.state, "staff", None)
        return page(
            request,
            staff,
            "error.html",
            {"title": "Not allowed", "detail": f"Your role may not do this. ({exc})"},
            403,
        )

    async def csrf(request: Request, exc: Exception) -> Response:
        staff = getattr(request.state, "staff", None)
        return page(
            request,
            staff,
            "error.html",
            {"title": "This form has expired", "detail": str(exc)},
            403,
        )

    app.add_exception_handler(LoginRequired, login_required)
    app.add_exception_handler(Forbidden, forbidden)
    app.add_exception_handler(CSRFRefused, csrf)

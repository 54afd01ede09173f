"""`GET /r/{token}`: a counted link of a newsletter, followed to the target it signed.

The answer is a plain redirect to the signed target, with no cookie and no-store;
the click is counted per link and day (mailer.clicks.counter) unless this client
already clicked more than `MAILER_CLICK_RATE`, in which case it is only redirected
(the limit lives in memory, keyed as every limit of ours is, and is never stored).
A broken or changed token gets the error page and goes nowhere. HEAD requests,
which link checkers send, are redirected without being counted.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from mailer.app.wiring import Runtime
from mailer.content.links import BrokenLink
from mailer.web.errors import error_response
from mailer.web.ratelimit import RequestLimits

router = APIRouter(include_in_schema=False)


@router.api_route("/r/{token}", methods=["GET", "HEAD"])
async def follow(request: Request, token: str) -> Response:
    runtime: Runtime = request.app.state.runtime
    limits: RequestLimits = request.app.state.limits
    count = request.method == "GET" and await limits.clicks.allow(
        request.client.host if request.client else None
    )
    try:
        target = await run_in_threadpool(runtime.clicks.follow, token, count)
    except BrokenLink:
        return error_response(
            request,
            400,
            "This link is not valid",
            "The link is damaged or was changed, so it leads nowhere. If you copied it from"
            " a newsletter, open the newsletter and follow the link from there.",
        )
    return RedirectResponse(
        target,
        status_code=302,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"},
    )

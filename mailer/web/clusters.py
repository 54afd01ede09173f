"""Public catalogue pages: /clusters (filters), each cluster's page, the clusters of the
month, and the form to propose a cluster or a change, which waits for an editor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from consent.addresses import InvalidInput
from mailer.app.wiring import Runtime
from mailer.clusters import catalogue, month, proposals
from mailer.clusters.catalogue import ClusterSpec, Filters
from mailer.clusters.importer import split_sectors
from mailer.web import csrf
from mailer.web.errors import error_response
from mailer.web.pages import page, read_form, too_many
from mailer.web.ratelimit import RequestLimits

router = APIRouter(include_in_schema=False)
FIELDS = ("name", "country", "region", "sectors", "objectives", "website", "note")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _query(request: Request, name: str) -> str:
    return str(request.query_params.get(name, ""))[:200].strip()


def _catalogue(runtime: Runtime, filters: Filters) -> dict[str, Any]:
    with runtime.sessions() as session:
        return {
            "clusters": [catalogue.record(c) for c in catalogue.find(session, filters)],
            "countries": catalogue.countries(session),
            "sectors": catalogue.sectors(session),
        }


@router.get("/clusters")
async def clusters_page(request: Request) -> Response:
    country, sector = _query(request, "country"), _query(request, "sector")
    badge = _query(request, "priority") in ("1", "yes", "on")
    filters = Filters(country or None, sector or None, badge)
    try:
        view = await run_in_threadpool(_catalogue, _runtime(request), filters)
    except InvalidInput:  # an unknown country in the address bar: the whole catalogue instead
        view = await run_in_threadpool(_catalogue, _runtime(request), Filters(None, sector, badge))
        country = ""
    chosen = {"country": country, "sector": sector, "priority": badge}
    return page(request, "clusters.html", {**view, "chosen": chosen})


def _months(runtime: Runtime) -> list[dict[str, str | None]]:
    with runtime.sessions() as session:
        return month.history_view(session)


@router.get("/clusters/of-the-month")
async def months_page(request: Request) -> Response:
    months = await run_in_threadpool(_months, _runtime(request))
    return page(request, "clusters_months.html", {"months": months})


def _form_values(runtime: Runtime, slug: str) -> dict[str, str]:
    with runtime.sessions() as session:
        found = catalogue.by_slug(session, slug) if slug else None
        if found is None:
            return {}
        record = catalogue.record(found)
        return {
            "name": record["name"],
            "country": record["country_name"],
            "region": record["region"],
            "sectors": "; ".join(record["sectors"]),
            "objectives": record["objectives"],
            "website": record["website"],
        }


@router.get("/clusters/propose")
async def propose_form(request: Request) -> Response:
    values = await run_in_threadpool(_form_values, _runtime(request), _query(request, "cluster"))
    return page(request, "cluster_propose.html", {"values": values, "error": None})


def _propose(runtime: Runtime, values: dict[str, str]) -> str:
    spec = ClusterSpec(
        name=values["name"],
        country=values["country"],
        region=values["region"],
        sectors=split_sectors(values["sectors"]),
        objectives=values["objectives"],
        website=values["website"],
    )
    with runtime.sessions.begin() as session:
        return proposals.propose(session, runtime.clock.now(), spec, values["note"]).kind


@router.post("/clusters/propose")
async def propose(request: Request) -> Response:
    runtime = _runtime(request)
    limits: RequestLimits = request.app.state.limits
    if not await limits.proposals.allow(request.client.host if request.client else None):
        return too_many(request, limits.proposals)
    form = await read_form(request)
    csrf.check(request, runtime.settings.secret_key, form.get(csrf.FIELD))
    values = {name: str(form.get(name) or "")[:20_000] for name in FIELDS}
    try:
        kind = await run_in_threadpool(_propose, runtime, values)
    except InvalidInput as exc:
        return page(
            request, "cluster_propose.html", {"values": values, "error": str(exc)}, status=422
        )
    except proposals.QueueFull as exc:
        return error_response(request, 429, "Please come back later", str(exc))
    return page(request, "cluster_proposed.html", {"kind": kind, "name": values["name"]}, 202)


def _one(runtime: Runtime, slug: str) -> dict[str, Any] | None:
    with runtime.sessions() as session:
        found = catalogue.by_slug(session, slug)
        return catalogue.record(found) if found is not None else None


@router.get("/clusters/{slug}")
async def cluster_page(request: Request, slug: str) -> Response:
    record = await run_in_threadpool(_one, _runtime(request), slug)
    if record is None:
        return error_response(request, 404, "No such cluster", "It is not in the catalogue.")
    return page(request, "cluster.html", {"cluster": record})

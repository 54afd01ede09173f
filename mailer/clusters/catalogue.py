"""The catalogue: clusters checked, added or updated by name, found, filtered and shown.

A cluster's name is its identity (re-imports update by name, case aside); its
slug names its public page. Sectors are a list; countries are ISO alpha-2 codes.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import exists, func, select
from sqlalchemy.orm import Session, selectinload

from consent.addresses import InvalidInput, clean_text
from mailer.clusters.countries import country_code, country_name
from mailer.clusters.models import Cluster, ClusterSector

MAX_SECTORS = 30
_URL = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.-]*\.[A-Za-z]{2,}(:\d+)?(/\S*)?$")


class UnknownCluster(InvalidInput, LookupError):
    def __init__(self, name: str) -> None:
        super().__init__(f"no cluster named {name[:200]!r} (see `mailer clusters list`)")


class ClusterExists(InvalidInput):
    """Another cluster has this name already."""


@dataclass(frozen=True)
class ClusterSpec:
    """A cluster as given (import, edit, proposal); `checked()` validates and normalises it."""

    name: str
    country: str
    region: str = ""
    sectors: tuple[str, ...] = ()
    objectives: str = ""
    website: str = ""
    priority: bool = False

    def checked(self) -> ClusterSpec:
        sectors = tuple(dict.fromkeys(clean_text(s, "a sector", 300) for s in self.sectors if s))
        if len(sectors) > MAX_SECTORS:
            raise InvalidInput(f"at most {MAX_SECTORS} sectors")
        region = clean_text(self.region, "the region", 200, required=False)
        return ClusterSpec(
            name=clean_text(self.name, "the name", 200),
            country=country_code(self.country),
            region="" if region == "-" else region,
            sectors=sectors,
            objectives=_long_text(self.objectives, "the objectives", 20_000),
            website=clean_website(self.website),
            priority=bool(self.priority),
        )


def _long_text(value: str, what: str, limit: int) -> str:
    text = " ".join(str(value).split())
    if len(text) > limit:
        raise InvalidInput(f"{what} is longer than {limit} characters")
    return text


def clean_website(raw: str) -> str:
    """An http(s) URL; a bare host (www.example.org/x) is taken as https."""
    value = str(raw).strip()
    if not value:
        return ""
    if len(value) > 500:
        raise InvalidInput("the website is longer than 500 characters")
    parts = urlsplit(value if "://" in value else f"https://{value}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidInput(f"the website {value[:100]!r} is not an http(s) address")
    if "://" not in value and not _URL.match(value):
        raise InvalidInput(f"the website {value[:100]!r} is not an http(s) address")
    return parts.geturl()


def name_key(name: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", name).casefold().split())


def slugify(name: str) -> str:
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")
    return slug[:70] or "cluster"


RESERVED = {"propose", "of-the-month"}  # pages under /clusters/


def _free_slug(session: Session, name: str, own_id: int | None = None) -> str:
    base = slugify(name)
    if base in RESERVED:
        base = f"{base}-cluster"
    slug, n = base, 1
    while True:
        taken = session.scalar(select(Cluster.id).where(Cluster.slug == slug))
        if taken is None or taken == own_id:
            return slug
        n += 1
        slug = f"{base}-{n}"


def by_name(session: Session, name: str) -> Cluster | None:
    return session.scalar(
        select(Cluster)
        .where(Cluster.name_key == name_key(name))
        .options(selectinload(Cluster.sectors))
    )


def get_cluster(session: Session, name: str) -> Cluster:
    found = by_name(session, name)
    if found is None:
        raise UnknownCluster(name)
    return found


def by_slug(session: Session, slug: str) -> Cluster | None:
    if not re.fullmatch(r"[a-z0-9-]{1,80}", slug):
        return None
    return session.scalar(
        select(Cluster).where(Cluster.slug == slug).options(selectinload(Cluster.sectors))
    )


def resolve(session: Session, name: str) -> Cluster | None:
    """The catalogue entry a person means: the same name (case aside), or the one entry whose
    name starts with what they typed ("Silicon Alps" for "Silicon Alps Cluster GmbH")."""
    key = name_key(name)
    if not key:
        return None
    found = by_name(session, name)
    if found is not None:
        return found
    starts = session.scalars(
        select(Cluster).where(Cluster.name_key.startswith(key, autoescape=True)).limit(2)
    ).all()
    return starts[0] if len(starts) == 1 else None


def _same(cluster: Cluster, spec: ClusterSpec) -> bool:
    return (
        cluster.name == spec.name
        and cluster.country == spec.country
        and cluster.region == spec.region
        and tuple(cluster.sector_names) == spec.sectors
        and cluster.objectives == spec.objectives
        and cluster.website == spec.website
        and cluster.priority == spec.priority
    )


def _apply(cluster: Cluster, spec: ClusterSpec) -> None:
    cluster.name, cluster.name_key = spec.name, name_key(spec.name)
    cluster.country, cluster.region = spec.country, spec.region
    cluster.objectives, cluster.website, cluster.priority = (
        spec.objectives,
        spec.website,
        spec.priority,
    )
    if tuple(cluster.sector_names) != spec.sectors:
        cluster.sectors.clear()
        cluster.sectors.extend(
            ClusterSector(position=i, name=name) for i, name in enumerate(spec.sectors)
        )


def upsert(session: Session, now: datetime, spec: ClusterSpec) -> str:
    """Add the cluster, or update the one of that name: "added", "updated" or "unchanged"."""
    spec = spec.checked()
    cluster = by_name(session, spec.name)
    if cluster is None:
        cluster = Cluster(
            slug=_free_slug(session, spec.name), created_at=now, updated_at=now, sectors=[]
        )
        _apply(cluster, spec)
        session.add(cluster)
        session.flush()
        return "added"
    if _same(cluster, spec):
        return "unchanged"
    _apply(cluster, spec)
    cluster.updated_at = now
    session.flush()
    return "updated"


@dataclass(frozen=True)
class Changes:
    """What `clusters edit` (or an accepted proposal) changes; None leaves a field as it is."""

    name: str | None = None
    country: str | None = None
    region: str | None = None
    sectors: tuple[str, ...] | None = None
    objectives: str | None = None
    website: str | None = None
    priority: bool | None = None

    def given(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


def spec_of(cluster: Cluster) -> ClusterSpec:
    return ClusterSpec(
        name=cluster.name,
        country=cluster.country,
        region=cluster.region,
        sectors=tuple(cluster.sector_names),
        objectives=cluster.objectives,
        website=cluster.website,
        priority=cluster.priority,
    )


def edit(session: Session, now: datetime, name: str, changes: Changes) -> Cluster:
    cluster = get_cluster(session, name)
    given = changes.given()
    if not given:
        raise InvalidInput("nothing to change: give at least one option")
    spec = replace(spec_of(cluster), **given).checked()
    other = by_name(session, spec.name)
    if other is not None and other.id != cluster.id:
        raise ClusterExists(f"another cluster is named {spec.name!r}")
    if spec.name != cluster.name:
        cluster.slug = _free_slug(session, spec.name, cluster.id)
    _apply(cluster, spec)
    cluster.updated_at = now
    session.flush()
    return cluster


def remove(session: Session, name: str) -> None:
    session.delete(get_cluster(session, name))


@dataclass(frozen=True)
class Filters:
    country: str | None = None
    sector: str | None = None
    priority: bool = False


def find(session: Session, filters: Filters | None = None) -> list[Cluster]:
    """The catalogue, by name; a sector filter matches part of a sector's name, case aside."""
    filters = filters or Filters()
    query = select(Cluster).options(selectinload(Cluster.sectors)).order_by(Cluster.name_key)
    if filters.country:
        query = query.where(Cluster.country == country_code(filters.country))
    if filters.priority:
        query = query.where(Cluster.priority.is_(True))
    clusters = list(session.scalars(query))
    if filters.sector:
        wanted = name_key(filters.sector)
        clusters = [c for c in clusters if any(wanted in name_key(s) for s in c.sector_names)]
    return clusters


def countries(session: Session) -> list[tuple[str, str, int]]:
    """(code, name, clusters) of every country in the catalogue, by name."""
    rows = session.execute(select(Cluster.country, func.count()).group_by(Cluster.country))
    return sorted(((c, country_name(c), int(n)) for c, n in rows), key=lambda r: r[1])


def sectors(session: Session) -> list[str]:
    return sorted(set(session.scalars(select(ClusterSector.name))), key=lambda s: name_key(s))


def has_sector(sector: str) -> Any:
    return exists().where(ClusterSector.cluster_id == Cluster.id, ClusterSector.name == sector)


def record(cluster: Cluster) -> dict[str, Any]:
    return {
        "name": cluster.name,
        "slug": cluster.slug,
        "country": cluster.country,
        "country_name": country_name(cluster.country),
        "region": cluster.region,
        "sectors": cluster.sector_names,
        "objectives": cluster.objectives,
        "website": cluster.website,
        "priority": cluster.priority,
    }

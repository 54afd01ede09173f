"""MAILER_DOMAIN_LIMITS taken apart: destination domain groups, their rate and connections.

`MAILER_DOMAIN_LIMITS` is a compact string, `gmail.com+googlemail.com=20:10;
example.net=2:1` (domains joined by `+`, then `=RATE:CONNECTIONS`, groups
separated by `;`; `*=RATE:CONNECTIONS` sets the default for every other domain,
each on its own; `0` means no limit), or the path of a TOML or JSON file with
the same content as tables. Groups given replace the built-in group of the same
domains; `none` drops the built-in ones. Pure: read at start, so that a mistyped
limit fails then and not mid-campaign (mailer.delivery.destinations applies them).
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class DomainLimit:
    """One destination group: its domains, messages a second and connections (None: no limit)."""

    name: str
    domains: tuple[str, ...]
    rate: float | None
    connections: int | None


# Conservative guesses: no provider publishes a sending rate or a connection count.
# The anchor is Postfix (default_destination_concurrency_limit = 20, lowered per
# transport for strict receivers); the values sit well below what providers are
# reported to tolerate from a warmed-up IP. Sources in docs/scaling.md.
BUILTIN: tuple[DomainLimit, ...] = (
    DomainLimit("google", ("gmail.com", "googlemail.com"), 20.0, 10),
    DomainLimit(
        "microsoft",
        (
            "outlook.com",
            "hotmail.com",
            "live.com",
            "msn.com",
            "hotmail.fr",
            "hotmail.co.uk",
            "outlook.fr",
            "live.fr",
            "hotmail.de",
            "outlook.de",
        ),
        10.0,
        5,
    ),  # fmt: skip
    DomainLimit(
        "yahoo",
        (
            "yahoo.com",
            "aol.com",
            "ymail.com",
            "rocketmail.com",
            "yahoo.fr",
            "yahoo.co.uk",
            "yahoo.de",
            "yahoo.es",
            "yahoo.it",
        ),
        5.0,
        3,
    ),  # fmt: skip
    DomainLimit("apple", ("icloud.com", "me.com", "mac.com"), 10.0, 5),
    DomainLimit("united-internet", ("gmx.de", "gmx.net", "gmx.at", "gmx.ch", "web.de"), 5.0, 2),
    DomainLimit("orange", ("orange.fr", "wanadoo.fr"), 2.0, 2),
    DomainLimit("free", ("free.fr",), 3.0, 2),
    DomainLimit("sfr", ("sfr.fr", "neuf.fr"), 3.0, 2),
    DomainLimit("laposte", ("laposte.net",), 3.0, 2),
    DomainLimit("t-online", ("t-online.de",), 3.0, 2),
)


@dataclass(frozen=True)
class DomainLimits:
    """The groups by domain, and the default for every other domain (None: no limit)."""

    groups: tuple[DomainLimit, ...] = BUILTIN
    default: DomainLimit | None = None
    _by_domain: dict[str, DomainLimit] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for group in self.groups:
            for domain in group.domains:
                self._by_domain[domain] = group

    def limit_for(self, domain: str) -> DomainLimit | None:
        """The group of `domain`, or the default applied to that domain alone."""
        found = self._by_domain.get(domain)
        if found is not None:
            return found
        if self.default is None:
            return None
        return DomainLimit(domain, (domain,), self.default.rate, self.default.connections)


def _number(text: str, what: str, spec: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"MAILER_DOMAIN_LIMITS: {what} must be a number in {spec!r}") from None
    if value < 0:
        raise ValueError(f"MAILER_DOMAIN_LIMITS: {what} must not be negative in {spec!r}")
    return value or None


def _group(domains: Iterable[str], rate: Any, connections: Any, spec: str) -> DomainLimit:
    names = tuple(d.strip().lower().rstrip(".") for d in domains if d.strip())
    if not names or any(" " in d or "@" in d for d in names):
        raise ValueError(f"MAILER_DOMAIN_LIMITS: bad domain list in {spec!r}")
    speed = _number(str(rate), "the rate", spec)
    count = _number(str(connections), "the connections", spec)
    if count is not None and count != int(count):
        raise ValueError(f"MAILER_DOMAIN_LIMITS: connections must be whole in {spec!r}")
    return DomainLimit(names[0], names, speed, int(count) if count else None)


def _compact(value: str) -> tuple[list[DomainLimit], DomainLimit | None, bool]:
    groups: list[DomainLimit] = []
    default: DomainLimit | None = None
    builtin = True
    for part in value.replace("\n", ";").split(";"):
        part = part.strip()
        if not part:
            continue
        if part.lower() == "none":
            builtin = False
            continue
        domains, eq, limits = part.partition("=")
        rate, colon, connections = limits.partition(":")
        if not eq or not colon:
            raise ValueError(
                f"MAILER_DOMAIN_LIMITS: {part!r} is not DOMAIN[+DOMAIN...]=RATE:CONNECTIONS"
            )
        if domains.strip() == "*":
            default = _group(["*"], rate, connections, part)
        else:
            groups.append(_group(domains.split("+"), rate, connections, part))
    return groups, default, builtin


def _document(data: Any, source: str) -> tuple[list[DomainLimit], DomainLimit | None, bool]:
    """{"builtin": bool, "default": {rate, connections}, "groups": {name: {domains, ...}}}."""
    if not isinstance(data, dict):
        raise ValueError(f"MAILER_DOMAIN_LIMITS: {source} must hold a table")
    groups: list[DomainLimit] = []
    for name, group in dict(data.get("groups", {})).items():
        if not isinstance(group, dict) or not isinstance(group.get("domains"), list):
            raise ValueError(f"MAILER_DOMAIN_LIMITS: group {name!r} needs a list of domains")
        limit = _group(group["domains"], group.get("rate", 0), group.get("connections", 0), name)
        groups.append(DomainLimit(str(name), limit.domains, limit.rate, limit.connections))
    default = None
    if isinstance(data.get("default"), dict):
        d = data["default"]
        default = _group(["*"], d.get("rate", 0), d.get("connections", 0), "default")
    return groups, default, bool(data.get("builtin", True))


def parse_domain_limits(value: str) -> DomainLimits:
    """MAILER_DOMAIN_LIMITS (compact, or a .toml/.json file) over the built-in groups."""
    value = value.strip()
    if value.endswith((".toml", ".json")):
        path = Path(value)
        try:
            text = path.read_text(encoding="utf-8")
            data = tomllib.loads(text) if value.endswith(".toml") else json.loads(text)
        except (OSError, ValueError) as exc:
            raise ValueError(f"MAILER_DOMAIN_LIMITS: cannot read {value}: {exc}") from None
        groups, default, builtin = _document(data, value)
    else:
        groups, default, builtin = _compact(value)
    given = {d for g in groups for d in g.domains}
    kept = [g for g in BUILTIN if not given.intersection(g.domains)] if builtin else []
    return DomainLimits(tuple(kept + groups), default)

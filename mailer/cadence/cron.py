"""Cadence arithmetic, pure: cron expressions in a time zone, slots, durations.

APScheduler's CronTrigger does the cron and time-zone work. A slot is named by
its local wall-clock time, so a local hour that occurs twice on a daylight-saving
change (CronTrigger fires at both) is still one slot; an hour that does not
exist fires once, at the shifted instant CronTrigger chooses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from apscheduler.triggers.cron import CronTrigger

_DURATION = re.compile(r"^\s*(\d+)\s*([hm]?)\s*$")


class CadenceError(ValueError):
    """A cron expression, time zone or duration a person must correct."""


def parse_duration(text: str) -> timedelta:
    """'24h', '90m' or '0' -> timedelta."""
    found = _DURATION.match(text or "")
    if not found or (found.group(2) == "" and found.group(1) != "0"):
        raise CadenceError(f"durations are written like 24h, 90m or 0, not {text!r}")
    amount = int(found.group(1))
    return timedelta(hours=amount) if found.group(2) == "h" else timedelta(minutes=amount)


def format_duration(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes == 0:
        return "0"
    return f"{minutes // 60}h" if minutes % 60 == 0 else f"{minutes}m"


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise CadenceError(f"unknown time zone {name!r}") from exc


def trigger(cron: str, tz: str) -> CronTrigger:
    if len(cron.split()) != 5:
        raise CadenceError(f"a cron expression has five fields (m h dom mon dow), not {cron!r}")
    try:
        return CronTrigger.from_crontab(cron, timezone=zone(tz))
    except (ValueError, KeyError) as exc:
        raise CadenceError(f"not a valid cron expression {cron!r}: {exc}") from exc


@dataclass(frozen=True)
class Slot:
    key: str  # local wall-clock time, "YYYY-MM-DDTHH:MM"
    at: datetime  # the instant, aware


def slot_key(instant: datetime, tz: str) -> str:
    return instant.astimezone(zone(tz)).strftime("%Y-%m-%dT%H:%M")


def slots(cron: str, tz: str, after: datetime, until: datetime) -> Iterator[Slot]:
    """Slots with `after < at <= until`, in order, one per local wall-clock time."""
    cron_trigger = trigger(cron, tz)
    previous: datetime | None = None
    # Step in UTC: wall-clock arithmetic would stand still inside a repeated hour.
    cursor = after.astimezone(UTC) + timedelta(microseconds=1)
    last_key = None
    while True:
        fire = cron_trigger.get_next_fire_time(previous, cursor)
        if fire is None or fire > until:
            return
        fire = fire.astimezone(UTC)
        if fire < cursor:  # never step backwards
            return
        key = slot_key(fire, tz)
        if key != last_key:
            yield Slot(key, fire)
            last_key = key
        previous = fire
        cursor = fire + timedelta(microseconds=1)
        if cursor > until:
            return


def next_slot(cron: str, tz: str, after: datetime) -> Slot:
    start = after.astimezone(UTC) + timedelta(microseconds=1)
    fire = trigger(cron, tz).get_next_fire_time(None, start)
    if fire is None:
        raise CadenceError(f"{cron!r} never fires")
    return Slot(slot_key(fire, tz), fire.astimezone(UTC))

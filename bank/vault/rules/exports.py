"""How many exports a resident may ask for: a number per local day, counted from local midnight.

An export reads and decrypts everything a resident holds, so it is not free: one resident once
queued 575 in three minutes. The day is the city's (BANK_LOCAL_TIMEZONE), as for steps, so the
count starts again when the resident's own day does.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from bank.vault.errors import ExportLimitReached


def day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which `now`'s day in `zone` began."""
    local = now.astimezone(zone)
    return datetime.combine(local.date(), time(0), tzinfo=zone).astimezone(UTC)


def next_day_start(now: datetime, zone: ZoneInfo) -> datetime:
    """The instant (UTC) at which the day after `now`'s, in `zone`, begins."""
    local = now.astimezone(zone)
    return datetime.combine(local.date() + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)


ExportStatus = Literal["pending", "ready", "failed"]


def shown_status(stored: str, building: bool) -> ExportStatus:
    """What a resident is told of an export stored as `stored` (pending or ready): `ready` once
    built; `pending` while its build job is queued, waiting to retry or running; `failed` once
    the job has given up (a pending export with no job left to build it), when asking again
    starts a new one."""
    if stored == "ready":
        return "ready"
    return "pending" if building else "failed"


def check_daily_limit(requested_today: int, per_day: int, now: datetime, zone: ZoneInfo) -> None:
    """Raise ExportLimitReached, with the whole seconds until the next local midnight (at least
    one) as its retry delay, when `requested_today` exports already fill the day's `per_day`."""
    if requested_today < per_day:
        return
    wait = max(1, math.ceil((next_day_start(now, zone) - now).total_seconds()))
    raise ExportLimitReached(
        f"You have asked for {requested_today} exports today, the most a day allows; the count "
        f"starts again at midnight ({zone.key}).",
        retry_after_s=wait,
    )

"""Plausibility rules for a day of steps pushed by the resident's app.

Bounds come from the points programmes' practice (shared reference README): healthy adults walk
4,000-18,000 steps a day, programmes flag days above ~50k and hours above ~12k. We refuse only
what is impossible (a sensor glitch or a forged push), not what is merely unusual: 100,000 a day
(an ultramarathon) and 20,000 in one hour (running at full speed) are the outer limits. Flagging
the unusual belongs to the points rules.
"""

from __future__ import annotations

import string
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta

from bank.vault.rules import Refusal

PLATFORMS = frozenset({"healthkit", "health_connect", "tracker"})
METHODS = frozenset({"automatic", "manual"})
MAX_STEPS_PER_DAY = 100_000
MAX_STEPS_PER_HOUR = 20_000
OLDEST_DAY = timedelta(days=5 * 366)  # phones keep about five years of history
MAX_DEVICE_ID = 128
_PRINTABLE = frozenset(string.printable) - frozenset("\t\n\r\x0b\x0c")


@dataclass(frozen=True)
class StepDayIn:
    day: date
    steps: int
    hourly: Sequence[int] | None
    platform: str
    method: str
    device_id: str | None


def validate_step_day(item: StepDayIn, *, today: date, path: str) -> list[Refusal]:
    """`today` is the city's local date: a day after it has not happened yet."""
    refusals: list[Refusal] = []
    if item.day > today:
        refusals.append(Refusal(f"{path}.day", "The day is in the future."))
    elif item.day < today - OLDEST_DAY:
        refusals.append(Refusal(f"{path}.day", "The day is more than five years ago."))
    if not 0 <= item.steps <= MAX_STEPS_PER_DAY:
        refusals.append(
            Refusal(f"{path}.steps", f"Steps must be between 0 and {MAX_STEPS_PER_DAY:,}.")
        )
    if item.hourly is not None:
        refusals.extend(_hourly(item.hourly, item.steps, f"{path}.hourly"))
    if item.platform not in PLATFORMS:
        refusals.append(
            Refusal(f"{path}.platform", f"platform must be one of {', '.join(sorted(PLATFORMS))}.")
        )
    if item.method not in METHODS:
        refusals.append(Refusal(f"{path}.method", "method must be automatic or manual."))
    if item.device_id is not None and (
        not 1 <= len(item.device_id) <= MAX_DEVICE_ID or not set(item.device_id) <= _PRINTABLE
    ):
        refusals.append(
            Refusal(
                f"{path}.device_id",
                f"device_id must be 1 to {MAX_DEVICE_ID} printable ASCII characters.",
            )
        )
    return refusals


def _hourly(hourly: Sequence[int], steps: int, path: str) -> list[Refusal]:
    if len(hourly) != 24:
        return [Refusal(path, "hourly must have exactly 24 counts (00:00-01:00 first).")]
    if any(not 0 <= count <= MAX_STEPS_PER_HOUR for count in hourly):
        return [Refusal(path, f"Each hourly count must be between 0 and {MAX_STEPS_PER_HOUR:,}.")]
    if sum(hourly) != steps:
        return [Refusal(path, "The hourly counts must add up to steps.")]
    return []

"""Plausibility rules for a day of steps pushed by the resident's app.

Bounds come from the points programmes' practice (shared reference README): healthy adults walk
4,000-18,000 steps a day, programmes flag days above ~50k and hours above ~12k. We refuse only
what is impossible (a sensor glitch or a forged push), not what is merely unusual: 100,000 a day
(an ultramarathon) and 20,000 in one hour (running at full speed) are the outer limits. Flagging
the unusual belongs to the points rules.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Protocol

from bank.vault.rules import Refusal

PLATFORMS = frozenset({"healthkit", "health_connect", "tracker"})
METHODS = frozenset({"automatic", "manual"})
MAX_STEPS_PER_DAY = 100_000
MAX_STEPS_PER_HOUR = 20_000
OLDEST_DAY = timedelta(days=5 * 366)  # phones keep about five years of history
MAX_DEVICE_ID = 128


class PushedStepDay(Protocol):
    """What the rules read of a pushed day: the API's request items have it, as has StepDayIn."""

    @property
    def day(self) -> date: ...
    @property
    def steps(self) -> int: ...
    @property
    def hourly(self) -> Sequence[int] | None: ...
    @property
    def platform(self) -> str: ...
    @property
    def method(self) -> str: ...
    @property
    def device_id(self) -> str | None: ...


@dataclass(frozen=True)
class StepDayIn:
    day: date
    steps: int
    hourly: Sequence[int] | None
    platform: str
    method: str
    device_id: str | None


def validate_step_day(item: PushedStepDay, *, today: date, path: str) -> list[Refusal]:
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
    if item.device_id is not None and not _is_device_id(item.device_id):
        refusals.append(
            Refusal(
                f"{path}.device_id",
                f"device_id must be 1 to {MAX_DEVICE_ID} printable ASCII characters.",
            )
        )
    return refusals


def _is_device_id(device_id: str) -> bool:
    # Printable ASCII: U+0020-U+007E (isprintable refuses tabs, newlines and other controls).
    return 1 <= len(device_id) <= MAX_DEVICE_ID and device_id.isascii() and device_id.isprintable()


def _hourly(hourly: Sequence[int], steps: int, path: str) -> list[Refusal]:
    if len(hourly) != 24:
        return [Refusal(path, "hourly must have exactly 24 counts (00:00-01:00 first).")]
    # min/max rather than a per-count test: a year's push checks 8,760 counts on the hot path.
    if min(hourly) < 0 or max(hourly) > MAX_STEPS_PER_HOUR:
        return [Refusal(path, f"Each hourly count must be between 0 and {MAX_STEPS_PER_HOUR:,}.")]
    if sum(hourly) != steps:
        return [Refusal(path, "The hourly counts must add up to steps.")]
    return []

"""When the scheduled KEK rotation is due, which versions it may destroy, and what that leaves
open: pure functions of the settings, each version's start and the time (docs/vault.md, "The
KEK schedule and the backup window").

A version's start is when every data key was wrapped under it or a newer one (the end of its
rotation's re-wrap); None where the provider recorded none. A version stops being needed for
new writes at its successor's start ("superseded"), and a backup taken before that may need it:
it is kept until the backup retention has passed since then. Unknown times never destroy.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

# The job checks once a day (bank.vault.jobs): a due rotation or retirement waits at most this.
CHECK_PERIOD = timedelta(days=1)

# A start is recorded when the re-wrap ends, minutes after the run that made it: the run at the
# same time of day, I days later, must find the version due, not a day later. Rotating early is
# never unsafe; destruction has no such slack.
ROTATION_SLACK = timedelta(hours=1)

Starts = Mapping[int, datetime | None]  # every present version -> its start


@dataclass(frozen=True)
class KekSchedule:
    rotation_interval: timedelta
    backup_retention: timedelta

    def __post_init__(self) -> None:
        if self.rotation_interval <= timedelta(0):
            raise ValueError("the KEK rotation interval must be positive")
        if self.backup_retention < self.rotation_interval:
            raise ValueError("the backup retention must be at least the KEK rotation interval")

    @property
    def window(self) -> timedelta:
        """The longest a backup's records stay open with the provider's keys after the backup
        was taken: interval + retention + two check periods (plus the re-wrap's own duration
        for a backup taken while one ran; docs/vault.md derives it)."""
        return self.rotation_interval + self.backup_retention + 2 * CHECK_PERIOD


def current_version(starts: Starts) -> int:
    return max(starts)


def rotation_due(schedule: KekSchedule, starts: Starts, now: datetime) -> bool:
    """True when the current version is the interval old (less the slack), or has no start (an
    interrupted rotation to finish, or a version made before starts were recorded)."""
    due = next_rotation(schedule, starts)
    return due is None or due <= now


def next_rotation(schedule: KekSchedule, starts: Starts) -> datetime | None:
    started = starts[current_version(starts)]
    return None if started is None else started + schedule.rotation_interval - ROTATION_SLACK


def superseded(starts: Starts, version: int) -> datetime | None:
    """When the next present version above `version` started (None: not yet, or unknown)."""
    later = [other for other in starts if other > version]
    return starts[min(later)] if later else None


def destroy_after(schedule: KekSchedule, starts: Starts, version: int) -> datetime | None:
    """From when `version` may be destroyed: every backup that could need it is past the
    retention. None for the current version and where a time is unknown."""
    end = superseded(starts, version)
    return None if end is None else end + schedule.backup_retention


def keep_from(schedule: KekSchedule, starts: Starts, now: datetime) -> int:
    """The lowest version to keep: every version below it may be destroyed now. Versions go in
    order (a later one is superseded later), so the destroyable ones are a prefix."""
    versions = sorted(starts)
    for version in versions[:-1]:
        after = destroy_after(schedule, starts, version)
        if after is None or now < after:
            return version
    return versions[-1]


def oldest_backup_that_opens(starts: Starts) -> datetime | None:
    """Backups taken from this time on have every data key under a version still present; an
    older one needs a destroyed version (for some or all of its records)."""
    return starts[min(starts)] if starts else None

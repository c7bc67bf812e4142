"""Representations: pure functions over opened records, each with a stable code a consent names.

A partner may be granted "monthly mean steps" or "checkup judgement flags only" rather than the
raw records. Each representation is a pure function (no session, no I/O) from one kind's opened
records to typed results, registered here under a code that never changes meaning: a consent
stores the code, so a new way of deriving something gets a new code. The resident's summaries
are built from the same functions, so what a resident sees and what a partner receives agree.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

from bank.vault.representations import checkups, steps, transit

# The record kinds, as bank.vault.steps, .transit and .checkups store them (KIND); spelt out so
# that these pure modules import none of the modules that read the database.
STEPS = "steps"
TRANSIT_TAP = "transit_tap"
CHECKUP = "checkup"


@dataclass(frozen=True)
class Representation:
    code: str
    kind: str  # the record kind it applies to
    releases: str  # what it releases, in one sentence (docs/vault.md lists the same)
    # Every representation is called the same way: the kind's opened records and the city's zone
    # (used where a time becomes a date: a ride's month). Results come ordered, never None.
    apply: Callable[[Sequence[Any], ZoneInfo], tuple[object, ...]]


def _registry(*representations: Representation) -> Mapping[str, Representation]:
    return MappingProxyType({r.code: r for r in representations})


REPRESENTATIONS: Mapping[str, Representation] = _registry(
    Representation(
        "steps.daily", STEPS,
        "Each source's day: steps, hourly counts, method and device id.",
        lambda records, _zone: steps.daily(records),
    ),
    Representation(
        "steps.daily_total", STEPS,
        "Each day's steps from its highest source.",
        lambda records, _zone: steps.daily_total(records),
    ),
    Representation(
        "steps.weekly_mean", STEPS,
        "Per ISO week: the mean daily total over the days with data, and how many days.",
        lambda records, _zone: steps.weekly_mean(records),
    ),
    Representation(
        "steps.monthly_mean", STEPS,
        "Per month: the mean daily total over the days with data, and how many days.",
        lambda records, _zone: steps.monthly_mean(records),
    ),
    Representation(
        "transit.taps", TRANSIT_TAP,
        "Each tap: operator, tap id, card's last four digits, type, time, station, line, fare.",
        lambda records, _zone: transit.taps(records),
    ),
    Representation(
        "transit.rides", TRANSIT_TAP,
        "Each ride: entry and exit times and stations, lines, fare, and whether complete.",
        lambda records, _zone: transit.rides(records),
    ),
    Representation(
        "transit.monthly_rides", TRANSIT_TAP,
        "Per month: the number of rides and of complete rides.",
        lambda records, zone: transit.monthly_rides(records, zone=zone),
    ),
    Representation(
        "checkups.values", CHECKUP,
        "Each checkup: date, clinic, exam id, sex, fasting, every item's value and unit.",
        lambda records, _zone: checkups.values(records),
    ),
    Representation(
        "checkups.judgement_flags", CHECKUP,
        "Each checkup: date and each item's judgement (normal, guidance, referral), no values.",
        lambda records, _zone: checkups.judgement_flags(records),
    ),
)  # fmt: skip


def for_kind(kind: str) -> tuple[Representation, ...]:
    """The representations of one record kind, in registry order."""
    return tuple(r for r in REPRESENTATIONS.values() if r.kind == kind)

"""A deterministic synthetic city for the demo and the benchmarks: residents and their records."""

from __future__ import annotations

from bank.demo.synth import (
    Checkup,
    CheckupValue,
    Commute,
    ResidentWindow,
    StepDay,
    StepsProfile,
    SyntheticCity,
    SyntheticResident,
    Tap,
    checkups_for,
    make_resident,
    steps_for,
    taps_for,
)

__all__ = [
    "Checkup",
    "CheckupValue",
    "Commute",
    "ResidentWindow",
    "StepDay",
    "StepsProfile",
    "SyntheticCity",
    "SyntheticResident",
    "Tap",
    "checkups_for",
    "make_resident",
    "steps_for",
    "taps_for",
]

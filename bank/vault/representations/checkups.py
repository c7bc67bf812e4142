"""Checkup representations: every value, or each item's judgement flag without its value."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Protocol

from bank.vault.rules.judgement import Judgement, judge


class CheckupItemRecord(Protocol):
    """One opened item, already in the reference unit."""

    @property
    def item(self) -> str: ...
    @property
    def value(self) -> float | str: ...
    @property
    def unit(self) -> str: ...
    @property
    def jlac10(self) -> str: ...
    @property
    def loinc(self) -> str: ...


class CheckupRecord(Protocol):
    """An opened checkup (the insurer number it was routed by is not read)."""

    @property
    def institution_code(self) -> str: ...
    @property
    def exam_id(self) -> str: ...
    @property
    def exam_date(self) -> date: ...
    @property
    def sex(self) -> str: ...
    @property
    def fasting(self) -> bool | None: ...
    @property
    def items(self) -> Sequence[CheckupItemRecord]: ...


@dataclass(frozen=True)
class CheckupValue:
    item: str  # the reference's item code (hba1c, ldl_cholesterol, ...)
    value: float | str
    unit: str
    jlac10: str
    loinc: str


@dataclass(frozen=True)
class CheckupValues:
    """`checkups.values`: a checkup with every value."""

    institution_code: str
    exam_id: str
    exam_date: date
    sex: str
    fasting: bool | None
    items: tuple[CheckupValue, ...]  # in the checkup's own item order


@dataclass(frozen=True)
class ItemFlag:
    item: str
    judgement: Judgement  # normal | guidance | referral | not_judged


@dataclass(frozen=True)
class JudgementFlags:
    """`checkups.judgement_flags`: the exam date and, per item, only its judgement against the
    standard's guidance and referral values; no value, unit, clinic or exam id."""

    exam_date: date
    flags: tuple[ItemFlag, ...]  # in the checkup's own item order


def _ordered(records: Iterable[CheckupRecord]) -> list[CheckupRecord]:
    return sorted(records, key=lambda c: (c.exam_date, c.institution_code, c.exam_id))


def values(records: Iterable[CheckupRecord]) -> tuple[CheckupValues, ...]:
    """Every checkup, ordered by exam date, then institution and exam id."""
    return tuple(
        CheckupValues(
            institution_code=c.institution_code, exam_id=c.exam_id, exam_date=c.exam_date,
            sex=c.sex, fasting=c.fasting,
            items=tuple(
                CheckupValue(item=i.item, value=i.value, unit=i.unit, jlac10=i.jlac10,
                             loinc=i.loinc)
                for i in c.items
            ),
        )
        for c in _ordered(records)
    )  # fmt: skip


def judgement_flags(records: Iterable[CheckupRecord]) -> tuple[JudgementFlags, ...]:
    """Each checkup's flags (`bank.vault.rules.judgement.judge`), in the order of `values`."""
    return tuple(
        JudgementFlags(
            exam_date=c.exam_date,
            flags=tuple(
                ItemFlag(i.item, judge(i.item, i.value, sex=c.sex, fasting=c.fasting))
                for i in c.items
            ),
        )
        for c in _ordered(records)
    )

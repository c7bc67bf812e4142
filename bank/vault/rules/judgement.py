"""Judging a checkup value against the standard's published judgement values.

The reference table writes them as people read them ("85 (men) / 90 (women)", "below 40", "+");
`parse_threshold` reads that small grammar and `judge` applies it: normal, guidance
(保健指導判定値 reached) or referral (受診勧奨判定値 reached). Pure: no I/O beyond the bundled
reference.
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from enum import StrEnum

from bank.reference import CheckupItem, checkup_items

URINE_LEVELS = ("-", "±", "+", "2+", "3+")  # the standard's five ordinal results, lowest first


class Judgement(StrEnum):
    NORMAL = "normal"
    GUIDANCE = "guidance"  # 保健指導判定値 reached
    REFERRAL = "referral"  # 受診勧奨判定値 reached
    NOT_JUDGED = "not_judged"  # no judgement value for the item, sex or value


def judge(item: str, value: float | str, *, sex: str, fasting: bool | None) -> Judgement:
    """Judge a normalised value (reference unit) against the standard's judgement values.

    Direction "high" means the value reaches a threshold when value >= threshold; "low" (the
    reference writes "below 40") when value < threshold. Urine levels compare by rank, so "+"
    means + or more. An unrecorded fasting state is judged as non-fasting: the non-fasting TG
    value (175) is the higher, so nobody is told to seek guidance on an assumption.
    """
    rule = _judgement_rules().get(item)
    if rule is None:
        return Judgement.NOT_JUDGED
    level = _level(value)
    if level is None:
        return Judgement.NOT_JUDGED
    referral, guidance = (
        None if threshold is None else threshold.reached(level, sex=sex, fasting=fasting)
        for threshold in (rule.referral, rule.guidance)
    )
    if referral is None and guidance is None:
        return Judgement.NOT_JUDGED
    if referral:
        return Judgement.REFERRAL
    if guidance:
        return Judgement.GUIDANCE
    return Judgement.NORMAL


# --- the published judgement values ("85 (men) / 90 (women)", "below 40", "+") ---------------

_PAIRS = (frozenset({"men", "women"}), frozenset({"fasting", "non-fasting"}))
_ALTERNATIVE = re.compile(
    r"(?P<value>[0-9]+(?:\.[0-9]+)?|2\+|3\+|[-±+])"
    r"(?: \((?P<when>men|women|fasting|non-fasting)\))?"
)


@dataclass(frozen=True)
class Level:
    """A number, or a urine result as its rank in URINE_LEVELS."""

    value: float
    ordinal: bool


@dataclass(frozen=True)
class Cut:
    level: Level
    when: str | None  # men | women | fasting | non-fasting; None: always


@dataclass(frozen=True)
class Threshold:
    cuts: tuple[Cut, ...]
    below: bool  # "below 40": reached when value < 40; otherwise when value >= the cut

    def at(self, *, sex: str, fasting: bool | None) -> Level | None:
        """The cut that applies; None when none does (a sex outside male/female)."""
        for cut in self.cuts:
            if cut.when is None or _applies(cut.when, sex=sex, fasting=fasting):
                return cut.level
        return None

    def reached(self, level: Level, *, sex: str, fasting: bool | None) -> bool | None:
        cut = self.at(sex=sex, fasting=fasting)
        if cut is None or cut.ordinal != level.ordinal:
            return None
        return level.value < cut.value if self.below else level.value >= cut.value


@dataclass(frozen=True)
class JudgementRule:
    guidance: Threshold | None
    referral: Threshold | None


def parse_threshold(text: str) -> Threshold | None:
    """Parse one published judgement value; "" is None. Raises ValueError on anything else.

    Grammar: ["below "] alternative (" / " alternative)*, an alternative being a number or a urine
    level with an optional "(men)", "(women)", "(fasting)" or "(non-fasting)"; alternatives come
    as a complete pair of conditions (men and women, or fasting and non-fasting).
    """
    text = text.strip()
    if not text:
        return None
    below = text.startswith("below ")
    cuts: list[Cut] = []
    for part in text.removeprefix("below ").split(" / "):
        match = _ALTERNATIVE.fullmatch(part.strip())
        if match is None:
            raise ValueError(f"Unreadable judgement value: {text!r}")
        token = match["value"]
        level = (
            Level(float(URINE_LEVELS.index(token)), ordinal=True)
            if token in URINE_LEVELS
            else Level(float(token), ordinal=False)
        )
        cuts.append(Cut(level, match["when"]))
    conditions = [cut.when for cut in cuts]
    if len(cuts) > 1 and (len(set(conditions)) != len(cuts) or set(conditions) not in _PAIRS):
        raise ValueError(f"Alternatives must be men/women or fasting/non-fasting: {text!r}")
    if len(cuts) == 1 and cuts[0].when is not None:
        raise ValueError(f"A conditional value needs its pair: {text!r}")
    return Threshold(tuple(cuts), below)


def judgement_rule(item: CheckupItem) -> JudgementRule | None:
    """An item's parsed judgement values, checked against its direction; None: not judged."""
    guidance, referral = parse_threshold(item.guidance_at), parse_threshold(item.referral_at)
    if item.direction not in {"", "high", "low"}:
        raise ValueError(f"{item.item}: direction must be high, low or empty.")
    if not item.direction:
        if guidance is not None or referral is not None:
            raise ValueError(f"{item.item}: judgement values without a direction.")
        return None
    for threshold in (guidance, referral):
        if threshold is not None and threshold.below != (item.direction == "low"):
            raise ValueError(f"{item.item}: 'below' must go with direction low, and only with it.")
    return JudgementRule(guidance, referral)


@functools.cache
def _judgement_rules() -> dict[str, JudgementRule]:
    rules = {item.item: judgement_rule(item) for item in checkup_items()}
    return {code: rule for code, rule in rules.items() if rule is not None}


def _applies(when: str, *, sex: str, fasting: bool | None) -> bool:
    return {
        "men": sex == "male",
        "women": sex == "female",
        "fasting": fasting is True,
        "non-fasting": fasting is not True,  # unrecorded counts as non-fasting (see judge)
    }[when]


def _level(value: float | str) -> Level | None:
    if isinstance(value, str):
        return Level(float(URINE_LEVELS.index(value)), True) if value in URINE_LEVELS else None
    number = finite(value)
    return None if number is None else Level(number, ordinal=False)


def finite(value: object) -> float | None:
    """A finite float from an int or float (not a bool); None for NaN, inf and huge ints."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None

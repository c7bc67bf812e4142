"""Checkup rules (pure): every refusal, every unit conversion, every published judgement value."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from datetime import date, timedelta
from typing import cast

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from bank.reference import CheckupItem, checkup_items
from bank.vault.rules import Refusal
from bank.vault.rules.checkups import (
    MEASURES,
    CheckupIn,
    CheckupItemIn,
    accepted_units,
    normalise,
    validate_checkup,
)
from bank.vault.rules.judgement import (
    URINE_LEVELS,
    Judgement,
    Level,
    judge,
    judgement_rule,
    parse_threshold,
)

TODAY = date(2025, 6, 15)
PATH = "$.checkups[0]"
REFERENCE = {item.item: item for item in checkup_items()}
FULL_WIDTH = str.maketrans("0123456789", "".join(chr(0xFF10 + digit) for digit in range(10)))
URINE_ITEMS = ("urine_glucose", "urine_protein")

# One healthy, valid checkup in the reference units, in the reference's item order.
VALUES: dict[str, float | str] = {
    "height": 170.0, "weight": 65.0, "bmi": 22.5, "waist": 80.0, "sbp": 120.0, "dbp": 75.0,
    "tg": 100.0, "hdl": 60.0, "ldl": 110.0, "ast": 20.0, "alt": 18.0, "ggt": 25.0,
    "fpg": 90.0, "hba1c": 5.3, "urine_glucose": "-", "urine_protein": "-",
}  # fmt: skip
INDEX = {item: index for index, item in enumerate(VALUES)}


def _items(**changes: tuple[float | str, str] | None) -> list[CheckupItemIn]:
    """The valid items, each changed to (value, unit) or left out (None)."""
    items = []
    for item, value in VALUES.items():
        change = changes.get(item, (value, REFERENCE[item].unit))
        if change is not None:
            items.append(CheckupItemIn(item, change[0], change[1]))
    return items


def _checkup(**fields: object) -> CheckupIn:
    base = CheckupIn(
        institution_code="0110912345", exam_id="E-2025-0001", exam_date=date(2025, 5, 1),
        member_number="12345678", sex="male", fasting=True, items=_items(),
    )  # fmt: skip
    return dataclasses.replace(base, **fields)  # type: ignore[arg-type]


def _refusals(checkup: CheckupIn) -> list[Refusal]:
    return validate_checkup(checkup, today=TODAY, path=PATH)


def _fields(checkup: CheckupIn) -> list[str]:
    return [refusal.field for refusal in _refusals(checkup)]


def _value_path(item: str) -> str:
    return f"{PATH}.items[{INDEX[item]}].value"


def _normalised(item: str, value: float | str, unit: str) -> float | str:
    checkup = _checkup(items=[CheckupItemIn(item, value, unit)])
    assert _refusals(checkup) == []
    (only,) = normalise(checkup).items
    return only.value


# -- the reference and the tables agree --------------------------------------------------------


def test_every_reference_item_has_units_and_numeric_items_have_a_range() -> None:
    for item in REFERENCE.values():
        if item.item in URINE_ITEMS:
            assert item.item not in MEASURES
            assert item.unit in accepted_units(item.item)
        else:
            assert MEASURES[item.item].units[0].name == item.unit
            assert MEASURES[item.item].low < MEASURES[item.item].high
    assert set(MEASURES) | set(URINE_ITEMS) == set(REFERENCE)
    assert list(VALUES) == list(REFERENCE)


def test_a_complete_checkup_in_reference_units_is_valid() -> None:
    assert _refusals(_checkup()) == []


# -- header fields -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "code", ["011091234", "01109123456", "011091234a", "0110912345".translate(FULL_WIDTH), ""]
)
def test_institution_code_must_be_ten_digits(code: str) -> None:
    assert _refusals(_checkup(institution_code=code)) == [
        Refusal(f"{PATH}.institution_code", "institution_code must be exactly 10 digits.")
    ]


@pytest.mark.parametrize("exam_id", ["", "x" * 65, "E\n1", "検診1", "E\t1"])
def test_exam_id_must_be_1_to_64_printable_characters(exam_id: str) -> None:
    assert _fields(_checkup(exam_id=exam_id)) == [f"{PATH}.exam_id"]


@pytest.mark.parametrize("exam_id", ["E", "x" * 64, "A 1/2-#"])
def test_exam_id_accepts_printable_ascii(exam_id: str) -> None:
    assert _refusals(_checkup(exam_id=exam_id)) == []


def test_exam_date_may_be_today_but_not_tomorrow() -> None:
    assert _refusals(_checkup(exam_date=TODAY)) == []
    assert _refusals(_checkup(exam_date=TODAY + timedelta(days=1))) == [
        Refusal(f"{PATH}.exam_date", "The exam date is in the future.")
    ]


def test_exam_date_may_be_ten_years_ago_but_not_a_day_more() -> None:
    assert _refusals(_checkup(exam_date=date(2015, 6, 15))) == []
    assert _refusals(_checkup(exam_date=date(2015, 6, 14))) == [
        Refusal(f"{PATH}.exam_date", "The exam date is more than 10 years ago.")
    ]


def test_ten_years_before_a_leap_day_is_the_28th_of_february() -> None:
    leap = _checkup(exam_date=date(2014, 2, 28))
    assert validate_checkup(leap, today=date(2024, 2, 29), path=PATH) == []
    older = _checkup(exam_date=date(2014, 2, 27))
    assert [r.field for r in validate_checkup(older, today=date(2024, 2, 29), path=PATH)] == [
        f"{PATH}.exam_date"
    ]


@pytest.mark.parametrize(
    "number", ["", "1" * 33, "12 34", "123".translate(FULL_WIDTH), "12_34", "12345678\n"]
)
def test_member_number_must_be_1_to_32_letters_digits_or_hyphens(number: str) -> None:
    assert _refusals(_checkup(member_number=number)) == [
        Refusal(
            f"{PATH}.member_number", "member_number must be 1 to 32 letters, digits or hyphens."
        )
    ]


@pytest.mark.parametrize("number", ["1", "A" * 32, "AB-0012"])
def test_member_number_accepts_letters_digits_and_hyphens(number: str) -> None:
    assert _refusals(_checkup(member_number=number)) == []


@pytest.mark.parametrize("sex", ["", "M", "Male", "other", "1"])
def test_sex_must_be_male_or_female(sex: str) -> None:
    assert _refusals(_checkup(sex=sex)) == [Refusal(f"{PATH}.sex", "sex must be male or female.")]


def test_a_checkup_of_women_is_valid() -> None:
    assert _refusals(_checkup(sex="female", fasting=None)) == []


# -- the item list -----------------------------------------------------------------------------


def test_a_checkup_needs_at_least_one_item() -> None:
    assert _refusals(_checkup(items=[])) == [
        Refusal(f"{PATH}.items", "items must have 1 to 16 entries, each item once.")
    ]


def test_more_items_than_the_standard_has_are_refused_at_once() -> None:
    items = [CheckupItemIn("height", 170.0, "cm")] * 10_000
    assert _fields(_checkup(items=items)) == [f"{PATH}.items"]


def test_a_single_item_is_a_valid_checkup() -> None:
    assert _refusals(_checkup(items=[CheckupItemIn("hba1c", 5.4, "%")])) == []


@pytest.mark.parametrize("code", ["HEIGHT", "ecg", "", "non_hdl"])
def test_unknown_items_are_refused_with_the_known_list(code: str) -> None:
    items = [*_items(), CheckupItemIn(code, 1.0, "cm")][1:]
    (refusal,) = _refusals(_checkup(items=items))
    assert refusal.field == f"{PATH}.items[15].item"
    assert refusal.reason.startswith("item must be one of height, weight, bmi, waist, sbp")


def test_each_item_may_appear_once() -> None:
    items = [*_items(), CheckupItemIn("sbp", 118.0, "mmHg")][1:]
    assert _refusals(_checkup(items=items)) == [
        Refusal(f"{PATH}.items[15].item", "sbp may appear only once.")
    ]


# -- units -------------------------------------------------------------------------------------

UNKNOWN_UNITS = {
    "height": ("mm", "cm, m"), "weight": ("lb", "kg"), "bmi": ("kg", "kg/m2, kg/m²"),
    "waist": ("m", "cm"), "sbp": ("kPa", "mmHg, mm[Hg]"), "dbp": ("", "mmHg, mm[Hg]"),
    "tg": ("g/L", "mg/dL, mmol/L"), "hdl": ("mmol", "mg/dL, mmol/L"),
    "ldl": ("mg/L", "mg/dL, mmol/L"), "ast": ("U/mL", "U/L, IU/L, µkat/L"),
    "alt": ("nkat/L", "U/L, IU/L, µkat/L"), "ggt": ("%", "U/L, IU/L, µkat/L"),
    "fpg": ("mmol/mol", "mg/dL, mmol/L"), "hba1c": ("mmol/L", "%, mmol/mol"),
}  # fmt: skip


@pytest.mark.parametrize("item", list(UNKNOWN_UNITS))
def test_unknown_units_are_refused_with_the_accepted_list(item: str) -> None:
    unit, accepted = UNKNOWN_UNITS[item]
    checkup = _checkup(items=_items(**{item: (VALUES[item], unit)}))
    assert _refusals(checkup) == [
        Refusal(f"{PATH}.items[{INDEX[item]}].unit", f"unit for {item} must be one of {accepted}.")
    ]


@pytest.mark.parametrize("item", URINE_ITEMS)
@pytest.mark.parametrize("unit", ["mg/dL", "+", "g"])
def test_urine_items_take_no_unit_or_the_ordinal_label(item: str, unit: str) -> None:
    checkup = _checkup(items=_items(**{item: ("-", unit)}))
    assert _refusals(checkup) == [
        Refusal(
            f"{PATH}.items[{INDEX[item]}].unit",
            f"unit for {item} must be empty, ordinal or ordinal (-/±/+/2+/3+).",
        )
    ]


@pytest.mark.parametrize("unit", ["", "ordinal", "Ordinal", "ordinal (-/±/+/2+/3+)"])
def test_urine_units_accepted(unit: str) -> None:
    assert _refusals(_checkup(items=_items(urine_protein=("±", unit)))) == []


@pytest.mark.parametrize("unit", ["MG/DL", "mg/dl", " mg/dL ", "MMOL/L"])
def test_units_compare_case_insensitively(unit: str) -> None:
    value = 5.0 if "mmol" in unit.lower() else 90.0
    assert _refusals(_checkup(items=_items(fpg=(value, unit)))) == []


def test_micro_sign_and_greek_mu_are_the_same_unit() -> None:
    assert _normalised("ast", 0.5, "µkat/L") == 30.0  # U+00B5
    assert _normalised("ast", 0.5, "μkat/L") == 30.0  # U+03BC


# -- conversions (known values) ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "value", "unit", "expected"),
    [
        ("fpg", 5.5, "mmol/L", 99.0),  # 99.09 mg/dL
        ("fpg", 7.0, "mmol/L", 126.0),  # the diabetes cut in both units
        ("hba1c", 48, "mmol/mol", 6.5),  # the diabetes cut in both units
        ("hba1c", 42, "mmol/mol", 6.0),
        ("hba1c", 31, "mmol/mol", 5.0),
        ("tg", 1.7, "mmol/L", 151.0),  # 150.6 mg/dL
        ("tg", 1.0, "mmol/L", 89.0),  # 88.57
        ("hdl", 1.03, "mmol/L", 40.0),  # 39.8
        ("ldl", 3.1, "mmol/L", 120.0),  # 119.9
        ("ldl", 2.6, "mmol/L", 101.0),  # 100.5
        ("height", 1.7, "m", 170.0),
        ("height", 1.655, "m", 165.5),
        ("alt", 0.5, "µkat/L", 30.0),
        ("sbp", 128.4, "mm[Hg]", 128.0),
        ("ast", 25, "IU/L", 25.0),
        ("bmi", 22.46, "kg/m²", 22.5),
        ("weight", 64.96, "kg", 65.0),
        ("hba1c", 5.64, "%", 5.6),
    ],
)
def test_values_convert_to_the_reference_unit_and_round_as_the_standard_reports(
    item: str, value: float, unit: str, expected: float
) -> None:
    assert _normalised(item, value, unit) == expected


@given(st.sampled_from(sorted(MEASURES)), st.data())
def test_every_unit_converts_back_to_the_value_sent(item: str, data: st.DataObject) -> None:
    unit = data.draw(st.sampled_from(MEASURES[item].units))
    value = data.draw(st.floats(min_value=-1e6, max_value=1e6))
    assert math.isclose(unit.from_reference(unit.to_reference(value)), value, abs_tol=1e-6)


def test_normalise_carries_the_reference_codes_and_units_in_reference_order() -> None:
    items = list(reversed(_items(height=(1.7, "m"), fpg=(5.0, "mmol/L"))))
    normalised = normalise(_checkup(items=items))
    assert [i.item for i in normalised.items] == list(REFERENCE)
    for item in normalised.items:
        reference = REFERENCE[item.item]
        assert (item.unit, item.jlac10, item.loinc) == (
            reference.unit,
            reference.jlac10,
            reference.loinc,
        )
    values = {item.item: item.value for item in normalised.items}
    assert values["height"] == 170.0
    assert values["fpg"] == 90.0
    assert normalised.exam_id == "E-2025-0001"
    assert not hasattr(normalised, "member_number")


@pytest.mark.parametrize(
    ("sent", "stored"),
    [("-", "-"), ("\u2212", "-"), ("\uff0d", "-"), ("+-", "±"), ("1+", "+"), ("3+", "3+")],
)
def test_urine_spellings_normalise_to_the_standard_levels(sent: str, stored: str) -> None:
    assert _normalised("urine_glucose", sent, "") == stored


def test_normalise_refuses_an_invalid_checkup() -> None:
    with pytest.raises(ValueError, match="normalise valid checkups only"):
        normalise(_checkup(items=_items(sbp=(float("nan"), "mmHg"))))


# -- values ------------------------------------------------------------------------------------


@pytest.mark.parametrize("item", sorted(MEASURES))
@pytest.mark.parametrize(
    "value", [float("nan"), float("inf"), float("-inf"), 10**400, "120", True, None]
)
def test_numeric_items_need_finite_numbers(item: str, value: object) -> None:
    sent = cast(float, value)  # what a careless client can put in a float field
    checkup = _checkup(items=_items(**{item: (sent, REFERENCE[item].unit)}))
    assert _refusals(checkup) == [Refusal(_value_path(item), f"{item} must be a finite number.")]


@pytest.mark.parametrize("item", URINE_ITEMS)
@pytest.mark.parametrize("value", [1.0, "4+", "positive", "", "++", float("nan")])
def test_urine_items_need_one_of_the_five_levels(item: str, value: float | str) -> None:
    checkup = _checkup(items=_items(**{item: (value, "")}))
    assert _refusals(checkup) == [
        Refusal(_value_path(item), f"{item} must be one of -, ±, +, 2+, 3+.")
    ]


# (item, low, high, reason) in the reference unit; both bounds are accepted.
RANGES = [
    ("height", 100.0, 250.0, "height must be 100.0 to 250.0 cm."),
    ("weight", 20.0, 300.0, "weight must be 20.0 to 300.0 kg."),
    ("bmi", 10.0, 80.0, "bmi must be 10.0 to 80.0 kg/m2."),
    ("waist", 40.0, 200.0, "waist must be 40.0 to 200.0 cm."),
    ("sbp", 60.0, 300.0, "sbp must be 60 to 300 mmHg."),
    ("dbp", 30.0, 200.0, "dbp must be 30 to 200 mmHg."),
    ("tg", 5.0, 10_000.0, "tg must be 5 to 10000 mg/dL."),
    ("hdl", 1.0, 250.0, "hdl must be 1 to 250 mg/dL."),
    ("ldl", 1.0, 1000.0, "ldl must be 1 to 1000 mg/dL."),
    ("ast", 1.0, 5000.0, "ast must be 1 to 5000 U/L."),
    ("alt", 1.0, 5000.0, "alt must be 1 to 5000 U/L."),
    ("ggt", 1.0, 5000.0, "ggt must be 1 to 5000 U/L."),
    ("fpg", 20.0, 1000.0, "fpg must be 20 to 1000 mg/dL."),
    ("hba1c", 3.0, 20.0, "hba1c must be 3.0 to 20.0 %."),
]


@pytest.mark.parametrize(("item", "low", "high", "reason"), RANGES)
def test_plausible_ranges_include_their_bounds_and_refuse_beyond(
    item: str, low: float, high: float, reason: str
) -> None:
    unit = REFERENCE[item].unit
    # Alone, so that the BMI and blood-pressure consistency checks stay out of the way.
    for value in (low, high):
        assert _refusals(_checkup(items=[CheckupItemIn(item, value, unit)])) == []
    step = 0.01
    for value in (low - step, high + step, 0.0, -low):
        assert _refusals(_checkup(items=[CheckupItemIn(item, value, unit)])) == [
            Refusal(f"{PATH}.items[0].value", reason)
        ]


CONVERTED_RANGES = {
    ("fpg", "mmol/L"): "fpg must be 1.111 to 55.5 mmol/L (20 to 1000 mg/dL).",
    ("hba1c", "mmol/mol"): "hba1c must be 9.27 to 195.1 mmol/mol (3.0 to 20.0 %).",
    ("height", "m"): "height must be 1 to 2.5 m (100.0 to 250.0 cm).",
    ("tg", "mmol/L"): "tg must be 0.05646 to 112.9 mmol/L (5 to 10000 mg/dL).",
    ("hdl", "mmol/L"): "hdl must be 0.02586 to 6.464 mmol/L (1 to 250 mg/dL).",
    ("ast", "µkat/L"): "ast must be 0.01667 to 83.33 µkat/L (1 to 5000 U/L).",
}


@pytest.mark.parametrize(
    ("item", "unit", "inside", "outside"),
    [
        ("fpg", "mmol/L", 1.111, 1.11), ("fpg", "mmol/L", 55.5, 55.51),
        ("hba1c", "mmol/mol", 9.27, 9.26), ("hba1c", "mmol/mol", 195.1, 195.2),
        ("height", "m", 1.0, 0.999), ("height", "m", 2.5, 2.501),
        ("tg", "mmol/L", 0.05646, 0.05645), ("tg", "mmol/L", 112.9, 113.0),
        ("hdl", "mmol/L", 0.02586, 0.02585), ("hdl", "mmol/L", 6.464, 6.466),
        ("ast", "µkat/L", 0.01667, 0.01666), ("ast", "µkat/L", 83.33, 83.34),
    ],
)  # fmt: skip
def test_ranges_apply_after_conversion_and_are_stated_inwards_in_the_unit_sent(
    item: str, unit: str, inside: float, outside: float
) -> None:
    assert _refusals(_checkup(items=[CheckupItemIn(item, inside, unit)])) == []
    assert _refusals(_checkup(items=[CheckupItemIn(item, outside, unit)])) == [
        Refusal(f"{PATH}.items[0].value", CONVERTED_RANGES[item, unit])
    ]


def test_diastolic_must_be_below_systolic() -> None:
    assert _refusals(_checkup(items=_items(sbp=(120.0, "mmHg"), dbp=(119.0, "mmHg")))) == []
    for dbp in (120.0, 150.0):
        assert _refusals(_checkup(items=_items(sbp=(120.0, "mmHg"), dbp=(dbp, "mmHg")))) == [
            Refusal(_value_path("dbp"), "dbp must be lower than sbp.")
        ]


def test_blood_pressure_consistency_waits_for_both_values_to_be_valid() -> None:
    checkup = _checkup(items=_items(sbp=(400.0, "mmHg"), dbp=(150.0, "mmHg")))
    assert _fields(checkup) == [_value_path("sbp")]


BMI_REASON = "bmi must be within 1.0 kg/m2 of weight / height² (kg and metres)."


@pytest.mark.parametrize(
    ("bmi", "valid"), [(21.5, True), (23.4, True), (21.4, False), (23.5, False)]
)
def test_bmi_must_agree_with_height_and_weight_within_one(bmi: float, valid: bool) -> None:
    # 65.0 kg at 1.70 m is 22.49 kg/m2; height in metres converts first.
    items = _items(height=(1.7, "m"), weight=(65.0, "kg"), bmi=(bmi, "kg/m2"))
    expected = [] if valid else [Refusal(_value_path("bmi"), BMI_REASON)]
    assert _refusals(_checkup(items=items)) == expected


def test_bmi_alone_or_with_height_only_is_not_checked_for_consistency() -> None:
    assert _refusals(_checkup(items=_items(weight=None, bmi=(35.0, "kg/m2")))) == []


def test_refusals_name_each_items_own_path() -> None:
    items = _items(height=(1.0, "in"), tg=(-5.0, "mg/dL"), urine_glucose=("4+", ""))
    assert _fields(_checkup(items=items)) == [
        f"{PATH}.items[0].unit",
        f"{PATH}.items[{INDEX['tg']}].value",
        f"{PATH}.items[{INDEX['urine_glucose']}].value",
    ]


def test_several_header_refusals_come_together() -> None:
    checkup = _checkup(institution_code="1", exam_id="", member_number="", sex="", items=[])
    assert _fields(checkup) == [
        f"{PATH}.institution_code",
        f"{PATH}.exam_id",
        f"{PATH}.member_number",
        f"{PATH}.sex",
        f"{PATH}.items",
    ]


def test_personal_fields_do_not_appear_in_repr() -> None:
    checkup = _checkup(member_number="SECRET-4711", items=[CheckupItemIn("hba1c", 9.87, "%")])
    assert "SECRET-4711" not in repr(checkup)
    assert "9.87" not in repr(checkup)
    assert "9.9" not in repr(normalise(checkup))


# -- the published judgement values ------------------------------------------------------------

# Every row of the reference, read independently of the parser: (guidance, referral) as
# {condition: value}, with the comparison the row's direction asks for.
PUBLISHED: dict[str, tuple[dict[str | None, float], dict[str | None, float], str]] = {
    "height": ({}, {}, ""),
    "weight": ({}, {}, ""),
    "bmi": ({None: 25}, {}, "high"),
    "waist": ({"men": 85, "women": 90}, {}, "high"),
    "sbp": ({None: 130}, {None: 140}, "high"),
    "dbp": ({None: 85}, {None: 90}, "high"),
    "tg": ({"fasting": 150, "non-fasting": 175}, {None: 300}, "high"),
    "hdl": ({None: 40}, {}, "low"),
    "ldl": ({None: 120}, {None: 140}, "high"),
    "ast": ({None: 31}, {None: 51}, "high"),
    "alt": ({None: 31}, {None: 51}, "high"),
    "ggt": ({None: 51}, {None: 101}, "high"),
    "fpg": ({None: 100}, {None: 126}, "high"),
    "hba1c": ({None: 5.6}, {None: 6.5}, "high"),
    "urine_glucose": ({None: URINE_LEVELS.index("+")}, {}, "high"),
    "urine_protein": ({None: URINE_LEVELS.index("+")}, {}, "high"),
}


def _cuts(text: str) -> dict[str | None, float]:
    threshold = parse_threshold(text)
    return {} if threshold is None else {cut.when: cut.level.value for cut in threshold.cuts}


@pytest.mark.parametrize("item", list(REFERENCE))
def test_the_parser_reads_every_reference_row(item: str) -> None:
    row = REFERENCE[item]
    guidance, referral, direction = PUBLISHED[item]
    assert (_cuts(row.guidance_at), _cuts(row.referral_at), row.direction) == (
        guidance,
        referral,
        direction,
    )
    rule = judgement_rule(row)
    if not direction:
        assert rule is None
        return
    assert rule is not None
    for threshold in (rule.guidance, rule.referral):
        if threshold is not None:
            assert threshold.below == (direction == "low")
            assert all(cut.level.ordinal == (item in URINE_ITEMS) for cut in threshold.cuts)


def test_the_published_table_covers_the_reference() -> None:
    assert set(PUBLISHED) == set(REFERENCE)


@pytest.mark.parametrize("item", [i for i, (g, _, _) in PUBLISHED.items() if g])
@pytest.mark.parametrize("sex", ["male", "female"])
@pytest.mark.parametrize("fasting", [True, False, None])
def test_referral_values_are_beyond_guidance_values(
    item: str, sex: str, fasting: bool | None
) -> None:
    rule = judgement_rule(REFERENCE[item])
    assert rule is not None
    assert rule.guidance is not None
    if rule.referral is None:
        return
    guidance, referral = (
        rule.guidance.at(sex=sex, fasting=fasting),
        rule.referral.at(sex=sex, fasting=fasting),
    )
    assert guidance is not None
    assert referral is not None
    assert referral.value > guidance.value


@pytest.mark.parametrize(
    ("text", "cuts", "below"),
    [
        ("", None, False),
        ("  ", None, False),
        ("25", {None: 25.0}, False),
        ("5.6", {None: 5.6}, False),
        ("85 (men) / 90 (women)", {"men": 85.0, "women": 90.0}, False),
        ("90 (women) / 85 (men)", {"men": 85.0, "women": 90.0}, False),
        ("150 (fasting) / 175 (non-fasting)", {"fasting": 150.0, "non-fasting": 175.0}, False),
        ("below 40", {None: 40.0}, True),
        ("+", {None: 2.0}, False),
        ("2+", {None: 3.0}, False),
        ("±", {None: 1.0}, False),
    ],
)
def test_parse_threshold_reads_the_published_forms(
    text: str, cuts: dict[str | None, float] | None, below: bool
) -> None:
    threshold = parse_threshold(text)
    if cuts is None:
        assert threshold is None
        return
    assert threshold is not None
    assert {cut.when: cut.level.value for cut in threshold.cuts} == cuts
    assert threshold.below is below


@pytest.mark.parametrize(
    "text",
    [
        "abc", "below", "below forty", "4+", "85 (men)", "85 (men) / 90 (men)", "85 / 90",
        "85 (men) / 150 (fasting)", "85 (kids) / 90 (adults)", "85(men)/90(women)", "≥ 85",
        "85 (men) / 90 (women) / 88 (men)", "-5", "1e3",
    ],
)  # fmt: skip
def test_parse_threshold_refuses_what_it_cannot_read(text: str) -> None:
    with pytest.raises(ValueError, match=r"judgement value|Alternatives|pair"):
        parse_threshold(text)


def _row(**fields: str) -> CheckupItem:
    return dataclasses.replace(REFERENCE["ldl"], **fields)


@pytest.mark.parametrize(
    "row",
    [
        _row(direction="sideways"),
        _row(direction=""),  # values without a direction
        _row(direction="low"),  # "120" is not "below 120"
        _row(guidance_at="below 40", direction="high"),
    ],
)
def test_a_row_whose_values_contradict_its_direction_is_refused(row: CheckupItem) -> None:
    with pytest.raises(ValueError, match=row.item):
        judgement_rule(row)


G, N, R, X = Judgement.GUIDANCE, Judgement.NORMAL, Judgement.REFERRAL, Judgement.NOT_JUDGED


@pytest.mark.parametrize(
    ("item", "value", "sex", "fasting", "expected"),
    [
        ("bmi", 24.9, "male", True, N), ("bmi", 25.0, "male", True, G),
        ("bmi", 79.0, "female", None, G),
        ("waist", 84.9, "male", True, N), ("waist", 85.0, "male", True, G),
        ("waist", 89.9, "female", True, N), ("waist", 90.0, "female", True, G),
        ("waist", 87.0, "male", None, G), ("waist", 87.0, "female", None, N),
        ("sbp", 129.0, "male", True, N), ("sbp", 130.0, "male", True, G),
        ("sbp", 139.0, "male", True, G), ("sbp", 140.0, "male", True, R),
        ("dbp", 84.0, "female", True, N), ("dbp", 85.0, "female", True, G),
        ("dbp", 89.0, "female", True, G), ("dbp", 90.0, "female", True, R),
        ("tg", 149.0, "male", True, N), ("tg", 150.0, "male", True, G),
        ("tg", 174.0, "male", False, N), ("tg", 175.0, "male", False, G),
        ("tg", 150.0, "male", None, N), ("tg", 174.0, "male", None, N),
        ("tg", 175.0, "female", None, G),
        ("tg", 299.0, "male", True, G), ("tg", 300.0, "male", True, R),
        ("tg", 299.0, "male", False, G), ("tg", 300.0, "male", False, R),
        ("tg", 300.0, "female", None, R),
        ("hdl", 40.0, "male", True, N), ("hdl", 39.0, "male", True, G),
        ("hdl", 39.9, "female", True, G), ("hdl", 120.0, "female", True, N),
        ("ldl", 119.0, "male", True, N), ("ldl", 120.0, "male", True, G),
        ("ldl", 139.0, "male", True, G), ("ldl", 140.0, "male", True, R),
        ("ast", 30.0, "male", True, N), ("ast", 31.0, "male", True, G),
        ("ast", 50.0, "male", True, G), ("ast", 51.0, "male", True, R),
        ("alt", 30.0, "female", True, N), ("alt", 31.0, "female", True, G),
        ("alt", 50.0, "female", True, G), ("alt", 51.0, "female", True, R),
        ("ggt", 50.0, "male", True, N), ("ggt", 51.0, "male", True, G),
        ("ggt", 100.0, "male", True, G), ("ggt", 101.0, "male", True, R),
        ("fpg", 99.0, "male", True, N), ("fpg", 100.0, "male", True, G),
        ("fpg", 125.0, "male", True, G), ("fpg", 126.0, "male", True, R),
        ("hba1c", 5.5, "male", True, N), ("hba1c", 5.6, "male", True, G),
        ("hba1c", 6.4, "male", True, G), ("hba1c", 6.5, "male", True, R),
        ("urine_glucose", "-", "male", True, N), ("urine_glucose", "±", "male", True, N),
        ("urine_glucose", "+", "male", True, G), ("urine_glucose", "2+", "male", True, G),
        ("urine_glucose", "3+", "male", True, G),
        ("urine_protein", "±", "female", None, N), ("urine_protein", "+", "female", None, G),
        ("height", 170.0, "male", True, X), ("weight", 300.0, "male", True, X),
        ("ecg", 1.0, "male", True, X),
        ("waist", 120.0, "unknown", True, X),  # no value for a sex outside the table
        ("sbp", float("nan"), "male", True, X), ("sbp", "140", "male", True, X),
        ("urine_protein", 2.0, "male", True, X), ("urine_protein", "4+", "male", True, X),
        ("bmi", "+", "male", True, X),
    ],
)  # fmt: skip
def test_judge_at_every_published_value(
    item: str, value: float | str, sex: str, fasting: bool | None, expected: Judgement
) -> None:
    assert judge(item, value, sex=sex, fasting=fasting) is expected


def test_judgements_read_as_their_names() -> None:
    assert [str(j) for j in Judgement] == ["normal", "guidance", "referral", "not_judged"]


def _sent(level: float, cut: Level) -> float | str:
    return URINE_LEVELS[int(level)] if cut.ordinal else round(level, 1)


@pytest.mark.parametrize("item", [i for i, (_, _, d) in PUBLISHED.items() if d])
@pytest.mark.parametrize("sex", ["male", "female"])
@pytest.mark.parametrize("fasting", [True, False, None])
def test_judge_switches_exactly_at_each_parsed_value(
    item: str, sex: str, fasting: bool | None
) -> None:
    rule = judgement_rule(REFERENCE[item])
    assert rule is not None
    for threshold, reached in ((rule.guidance, G), (rule.referral, R)):
        if threshold is None:
            continue
        cut = threshold.at(sex=sex, fasting=fasting)
        assert cut is not None
        step = 1.0 if cut.ordinal else 0.1
        below, at = cut.value - step, cut.value
        inside, outside = (below, at) if threshold.below else (at, below)
        assert judge(item, _sent(inside, cut), sex=sex, fasting=fasting) is reached
        assert judge(item, _sent(outside, cut), sex=sex, fasting=fasting) is not reached


# -- properties --------------------------------------------------------------------------------

texts = st.text(max_size=80)
weird_numbers = st.one_of(
    st.floats(allow_nan=True, allow_infinity=True),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.booleans(),
)
item_codes = st.one_of(st.sampled_from(list(REFERENCE)), texts)
units = st.one_of(
    st.sampled_from(sorted({u for item in REFERENCE for u in accepted_units(item)})), texts
)
values = st.one_of(weird_numbers, st.sampled_from(URINE_LEVELS), texts)
any_items = st.builds(CheckupItemIn, item=item_codes, value=values, unit=units)
any_checkups = st.builds(
    CheckupIn,
    institution_code=st.one_of(texts, st.from_regex(r"[0-9]{10}", fullmatch=True)),
    exam_id=texts,
    exam_date=st.dates(),
    member_number=texts,
    sex=st.one_of(st.sampled_from(["male", "female"]), texts),
    fasting=st.one_of(st.none(), st.booleans()),
    items=st.lists(any_items, max_size=20),
)


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(any_checkups)
def test_validate_never_raises_and_refuses_under_the_path(checkup: CheckupIn) -> None:
    refusals = validate_checkup(checkup, today=TODAY, path=PATH)
    assert all(isinstance(r, Refusal) and r.field.startswith(PATH) for r in refusals)
    if not refusals:
        normalise(checkup)


@given(
    st.sampled_from(sorted(MEASURES)),
    st.sampled_from([float("nan"), float("inf"), float("-inf")]),
)
def test_nan_and_infinity_are_always_refused(item: str, value: float) -> None:
    for unit in MEASURES[item].units:
        checkup = _checkup(items=_items(**{item: (value, unit.name)}))
        assert _value_path(item) in _fields(checkup)


def _echoes(text: str, refusals: list[Refusal]) -> bool:
    return any(text in refusal.reason for refusal in refusals)


@given(st.text(min_size=6, max_size=40))
def test_refusals_never_echo_the_member_number(number: str) -> None:
    assume(number.strip() == number)
    assert not _echoes(number, _refusals(_checkup(member_number=number)))


@given(
    st.sampled_from(sorted(MEASURES)),
    st.floats(allow_nan=False, allow_infinity=False),
    st.data(),
)
def test_refusals_never_echo_a_numeric_value(item: str, value: float, data: st.DataObject) -> None:
    unit = data.draw(st.sampled_from([u.name for u in MEASURES[item].units] + ["furlong"]))
    refusals = _refusals(_checkup(items=_items(**{item: (value, unit)})))
    for text in {repr(value), str(value), f"{value:g}"}:
        if len(text) >= 7:  # shorter texts (12.5, 100) can coincide with a stated bound
            assert not _echoes(text, refusals)


@st.composite
def valid_checkups(draw: st.DrawFn) -> CheckupIn:
    """Checkups valid by construction: values within the ranges, in any accepted unit."""
    chosen = draw(st.lists(st.sampled_from(list(REFERENCE)), min_size=1, unique=True))
    reference: dict[str, float] = {}
    for item in chosen:
        if item in MEASURES:
            measure = MEASURES[item]
            reference[item] = draw(st.floats(min_value=measure.low, max_value=measure.high))
    if {"height", "weight", "bmi"} <= reference.keys():
        bmi = reference["weight"] / (reference["height"] / 100) ** 2
        assume(MEASURES["bmi"].low + 1 <= bmi <= MEASURES["bmi"].high - 1)
        reference["bmi"] = bmi
    if {"sbp", "dbp"} <= reference.keys():
        assume(reference["dbp"] + 2 <= reference["sbp"])
    items: list[CheckupItemIn] = []
    for item in chosen:
        if item in MEASURES:
            unit = draw(st.sampled_from(MEASURES[item].units))
            sent = unit.from_reference(reference[item])
            assume(MEASURES[item].low <= unit.to_reference(sent) <= MEASURES[item].high)
            items.append(CheckupItemIn(item, sent, unit.name))
        else:
            level = draw(st.sampled_from([*URINE_LEVELS, "\u2212", "1+", "+-"]))
            items.append(CheckupItemIn(item, level, draw(st.sampled_from(accepted_units(item)))))
    return _checkup(
        items=items,
        sex=draw(st.sampled_from(["male", "female"])),
        fasting=draw(st.one_of(st.none(), st.booleans())),
    )


def _within(value: float | str, item: str, ranges: Mapping[str, tuple[float, float]]) -> bool:
    if isinstance(value, str):
        return item in URINE_ITEMS and value in URINE_LEVELS
    low, high = ranges[item]
    return low <= value <= high


@settings(
    max_examples=300, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much]
)
@given(valid_checkups())
def test_every_valid_checkup_normalises_to_values_inside_the_ranges(checkup: CheckupIn) -> None:
    assert _refusals(checkup) == []
    normalised = normalise(checkup)
    ranges = {item: (m.low, m.high) for item, m in MEASURES.items()}
    assert len(normalised.items) == len(checkup.items)
    for item in normalised.items:
        assert _within(item.value, item.item, ranges)
        measure = MEASURES.get(item.item)
        if measure is not None:
            assert isinstance(item.value, float)
            assert round(item.value, measure.decimals) == item.value
        assert judge(item.item, item.value, sex=checkup.sex, fasting=checkup.fasting) in Judgement

"""Synthetic yearly health checkups (特定健診) with plausibly correlated values.

A resident's physiology is a set of latent scores drawn once (stream "health"); each year's
exam adds measurement and year-to-year noise, so one resident's checkups resemble each other.
"""

from __future__ import annotations

import calendar
import functools
import hashlib
import itertools
import math
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from bank.demo.synth_days import CLOSED
from bank.demo.synth_people import REFERENCE_YEAR, SyntheticResident, rng
from bank.reference import checkup_items, wards

# Checkup season: most exams from June to November, few in April and March.
MONTHS = (5, 6, 4, 4, 6, 10, 10, 8, 10, 12, 12, 8)  # weights for January..December
CLINICS_PER_WARD = 3
URINE = ("-", "±", "+", "2+", "3+")


@dataclass(frozen=True)
class CheckupValue:
    item: str  # as in the reference, e.g. "hba1c"
    value: float | str  # a number, or for urine one of - ± + 2+ 3+
    unit: str  # the reference unit


@dataclass(frozen=True)
class Checkup:
    institution_code: str  # 10 digits (機関番号), a fictional clinic
    exam_id: str
    exam_date: date
    insurer_number: str
    member_number: str
    sex: str
    fasting: bool
    items: tuple[CheckupValue, ...]  # every reference item, in the reference order


@dataclass(frozen=True)
class _Health:
    height: float
    bmi: float
    waist: float
    sbp: float
    dbp: float
    tg: float
    hdl: float
    ldl: float
    liver: float
    ggt: float
    glycaemia: float
    drinker: bool
    diabetic: bool
    propensity: float  # below this year's attendance share: a regular attender
    month: int
    day: int
    clinic: str


@functools.cache
def clinics(ward_code: str) -> tuple[str, ...]:
    """Fictional institution numbers: 01 (Hokkaido), 1 (medical), the ward, a 9xxxx block that
    no real clinic uses."""
    ward = int(ward_code[-2:])
    return tuple(f"011{ward:02d}9{n:04d}" for n in range(1, CLINICS_PER_WARD + 1))


def all_clinics() -> frozenset[str]:
    return frozenset(code for ward in wards() for code in clinics(ward.code))


def _health(resident: SyntheticResident) -> _Health:
    r = rng(resident.seed, resident.index, "health")
    g = r.gauss
    male = resident.sex == "male"
    age = REFERENCE_YEAR - resident.birth_year
    diabetic_share = (0.13 if male else 0.08) if age >= 75 else (0.10 if male else 0.05)
    if age < 40:
        diabetic_share = 0.01
    return _Health(
        height=g(0, 1), bmi=g(0, 1), waist=g(0, 1), sbp=g(0, 1), dbp=g(0, 1), tg=g(0, 1),
        hdl=g(0, 1), ldl=g(0, 1),
        # 3 % with a liver condition (fatty liver, hepatitis): the enzymes' long tail
        liver=g(0, 1) + (r.uniform(1.5, 3.5) if r.random() < 0.03 else 0.0),
        ggt=g(0, 1), glycaemia=g(0, 1),
        drinker=r.random() < (0.25 if male else 0.06),
        diabetic=r.random() < diabetic_share,
        propensity=r.random(),
        month=r.choices(range(1, 13), weights=MONTHS)[0],
        day=r.randint(1, 28),
        clinic=r.choice(clinics(resident.ward_code)),
    )  # fmt: skip


def attendance(resident: SyntheticResident, year: int) -> float:
    """Share attending a checkup in a year: ~55 % at 40-74 (the 特定健診 ages, more among the
    employed), fewer younger and older."""
    age = resident.age_in(year)
    if 40 <= age <= 74:
        return 0.65 if resident.employed else 0.45
    if age < 40:
        return 0.40 if resident.employed else 0.15
    return 0.25


def checkups_for(resident: SyntheticResident, start: date, days: int) -> Iterator[Checkup]:
    """At most one checkup a year, on the resident's usual month, if it falls in the window."""
    end = start + timedelta(days=days)
    health = _health(resident)
    for year in range(start.year, end.year + 1):
        r = rng(resident.seed, resident.index, "checkup", year)
        regular = health.propensity < attendance(resident, year)
        if r.random() >= (0.92 if regular else 0.05):
            continue
        exam_date = _open_day(year, health.month, health.day + r.randint(-5, 5))
        if start <= exam_date < end:
            yield _checkup(resident, health, exam_date, r)


def _open_day(year: int, month: int, day: int) -> date:
    """The nearest day in the month on which clinics open (not Sunday nor New Year's days), so
    that a year's exam stays in its year whatever window asks for it."""
    last = calendar.monthrange(year, month)[1]
    wanted = min(last, max(1, day))
    for candidate in sorted(range(1, last + 1), key=lambda d: (abs(d - wanted), -d)):
        exam_date = date(year, month, candidate)
        if exam_date.weekday() != 6 and (month, candidate) not in CLOSED:
            return exam_date
    raise AssertionError("every month has a day when clinics open")


def exam_id(resident: SyntheticResident, exam_date: date) -> str:
    label = f"{resident.seed}|{resident.index}|{exam_date.isoformat()}"
    return "E" + hashlib.blake2b(label.encode(), digest_size=10).hexdigest().upper()


def _median(table: tuple[tuple[int, float], ...], age: int) -> float:
    """Piecewise linear in age between the table's points."""
    if age <= table[0][0]:
        return table[0][1]
    for (a0, v0), (a1, v1) in itertools.pairwise(table):
        if age <= a1:
            return v0 + (v1 - v0) * (age - a0) / (a1 - a0)
    return table[-1][1]


# Median BMI by age (Japan's national nutrition survey shape): men put weight on in their 30s-60s.
BMI_MEN = ((20, 22.2), (40, 23.5), (65, 23.6), (80, 23.0))
BMI_WOMEN = ((20, 20.7), (40, 21.4), (60, 22.4), (80, 22.4))
HEIGHT_MEN = ((20, 171.5), (40, 171.5), (85, 162.5))  # by age in REFERENCE_YEAR (cohort)
HEIGHT_WOMEN = ((20, 158.3), (40, 158.3), (85, 149.0))


def _clamp(value: float, low: float, high: float) -> float:
    return min(high, max(low, value))


def _checkup(resident: SyntheticResident, h: _Health, exam_date: date, r: random.Random) -> Checkup:
    male = resident.sex == "male"
    age = resident.age_in(exam_date.year)
    fasting = r.random() < 0.9
    cohort = REFERENCE_YEAR - resident.birth_year
    height = _median(HEIGHT_MEN if male else HEIGHT_WOMEN, cohort)
    height += (5.7 if male else 5.3) * h.height + r.gauss(0, 0.3)  # measurement noise
    height = round(_clamp(height, 130.0, 205.0), 1)
    bmi_true = _median(BMI_MEN if male else BMI_WOMEN, age) * math.exp(
        (0.13 if male else 0.15) * h.bmi + r.gauss(0, 0.025)
    )
    bmi_true = _clamp(bmi_true, 14.0, 48.0)
    weight = round(bmi_true * (height / 100) ** 2, 1)
    bmi = round(weight / (height / 100) ** 2, 1)
    if male:
        waist = 85 + 2.6 * (bmi - 24) + 3.5 * h.waist
    else:
        waist = 80 + 2.5 * (bmi - 22) + 0.12 * (age - 50) + 4.5 * h.waist
    waist = round(_clamp(waist + r.gauss(0, 1.0), 50.0, 160.0), 1)
    sbp = 108 + 0.45 * (age - 20) + 1.2 * (bmi - 22) + (5 if male else 0) + 11 * h.sbp
    sbp = round(_clamp(sbp + r.gauss(0, 6), 85, 230))
    dbp = 0.45 * sbp + 18 + (3 if male else 0) - 0.15 * max(0, age - 60) + 5 * h.dbp
    dbp = round(_clamp(dbp + r.gauss(0, 3), 40, sbp - 15))
    tg = (100 if male else 72) * math.exp(0.06 * (bmi - 22) + 0.42 * h.tg + r.gauss(0, 0.15))
    tg = round(_clamp(tg * (1.1 if h.drinker else 1.0) * (1.0 if fasting else 1.3), 20, 2000))
    hdl = (58 if male else 70) - 1.3 * (bmi - 22) - 6 * math.log(tg / 100) + 11 * h.hdl
    hdl = round(_clamp(hdl + (5 if h.drinker else 0) + r.gauss(0, 3), 20, 150))
    ldl = 120.0 if male else 112 + 0.7 * _clamp(age - 40, 0, 20)  # rises after menopause
    ldl = round(_clamp(ldl + 1.5 * (bmi - 22) + 28 * h.ldl + r.gauss(0, 8), 30, 350))
    fatty = 0.02 * (bmi - 22)
    ast = (22 if male else 19) * math.exp(fatty + 0.25 * h.liver + r.gauss(0, 0.1))
    alt = (20 if male else 14) * math.exp(4 * fatty + 0.4 * h.liver + r.gauss(0, 0.15))
    ggt = (28 if male else 16) * math.exp(2 * fatty + 0.5 * h.ggt + r.gauss(0, 0.1))
    ggt *= 2.2 if h.drinker else 1.0
    hba1c = 5.3 + 0.012 * (age - 40) + 0.04 * (bmi - 22) + 0.3 * h.glycaemia + r.gauss(0, 0.08)
    if h.diabetic:
        hba1c += 1.0 + 0.8 * abs(h.glycaemia)
    hba1c = round(_clamp(hba1c, 4.0, 14.0), 1)
    fpg = 88 + 25 * (hba1c - 5.3) + r.gauss(0, 6) + (0 if fasting else 15)
    if hba1c >= 7.0:
        glucose = r.choices(URINE, weights=(40, 10, 20, 20, 10))[0]
    else:
        glucose = "±" if r.random() < 0.015 else "-"
    draw, positive = r.random(), 0.03 + 0.003 * max(0, sbp - 130)  # kidneys suffer with BP
    if draw < 0.07:
        protein = "±"
    elif draw < 0.07 + positive:
        protein = r.choice(URINE[2:4])
    else:
        protein = "-"
    values: dict[str, float | str] = {
        "height": height, "weight": weight, "bmi": bmi, "waist": waist,
        "sbp": float(sbp), "dbp": float(dbp), "tg": float(tg), "hdl": float(hdl),
        "ldl": float(ldl), "ast": float(round(_clamp(ast, 5, 1000))),
        "alt": float(round(_clamp(alt, 3, 1000))), "ggt": float(round(_clamp(ggt, 5, 1500))),
        "fpg": float(round(_clamp(fpg, 60, 500))), "hba1c": hba1c,
        "urine_glucose": glucose, "urine_protein": protein,
    }  # fmt: skip
    return Checkup(
        institution_code=h.clinic,
        exam_id=exam_id(resident, exam_date),
        exam_date=exam_date,
        insurer_number=resident.insurer_number,
        member_number=resident.member_number,
        sex=resident.sex,
        fasting=fasting,
        items=tuple(CheckupValue(i.item, values[i.item], i.unit) for i in checkup_items()),
    )

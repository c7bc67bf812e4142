"""Synthetic residents: age, sex, ward, stations, commuting habits, card and member numbers.

Each resident is drawn from a random stream of its own, derived from (city seed, index), so
resident i is the same in a city of 100 or of 10,000 and residents can be made one at a time.
The distributions are documented in bank/demo/synth.py.
"""

from __future__ import annotations

import base64
import bisect
import functools
import hashlib
import itertools
import random
from dataclasses import dataclass, field

from bank.reference import stations, wards

REFERENCE_YEAR = 2025  # ages are drawn as of this year; birth_year = REFERENCE_YEAR - age
MAX_RESIDENTS = 10_000_000  # card and member numbers stay unique below this
EMAIL_DOMAIN = "demo.city-bank.example"

# Adults 20-89 in 5-year bands, weights in thousands of people: the rounded shape of Sapporo's
# 2020 census pyramid (a bulge at 45-49 and at 65-74, thinning after 75). Demo weights only.
AGE_BANDS: tuple[tuple[int, int], ...] = (
    (20, 100), (25, 95), (30, 105), (35, 120), (40, 135), (45, 155), (50, 140),
    (55, 125), (60, 120), (65, 140), (70, 145), (75, 110), (80, 85), (85, 55),
)  # fmt: skip
# Share of women by age: Sapporo has about 53 % women overall, more among the old.
FEMALE_SHARE: tuple[tuple[int, float], ...] = ((20, 0.51), (40, 0.53), (65, 0.56), (80, 0.63))

# Wards without a subway station ride from the nearest ones (by bus or on foot).
NEAREST_STATIONS: dict[str, tuple[str, ...]] = {
    "01109": ("T01", "T02"),  # Teine: buses to Miyanosawa and Hassamu-minami
    "01110": ("H14", "H13", "T17"),  # Kiyota: buses to Fukuzumi, Tsukisamu-chuo and Oyachi
}
# Workplaces cluster downtown (Chuo ward and Sapporo station); any other station weighs 1.
WORK_WEIGHTS: dict[str, int] = {
    "N06": 14, "H07": 6, "N07": 8, "T09": 6, "H08": 4, "N08": 5, "H09": 2,
    "T10": 3, "T08": 4, "T07": 2, "N09": 2,
}  # fmt: skip

# Employment by age and sex (work or study outside home), rounded from national labour survey
# shapes; and the share of those who get there by subway at all.
EMPLOYED: tuple[tuple[int, float, float], ...] = (
    (20, 0.80, 0.80), (25, 0.90, 0.78), (60, 0.78, 0.58), (65, 0.55, 0.37),
    (70, 0.35, 0.20), (75, 0.12, 0.06),
)  # fmt: skip
SUBWAY_COMMUTE = 0.55
COMMUTER_PASS = 0.85
PLATFORMS: tuple[tuple[str, float], ...] = (
    ("healthkit", 0.55),
    ("health_connect", 0.35),
    ("tracker", 0.10),
)
INSURERS = {  # fictional numbers in the real formats (01 = Hokkaido)
    "nhi": "019998",  # municipal national health insurance: 6 digits
    "employees": "06019998",  # a health insurance society: 8 digits starting 06
    "elderly": "39019998",  # late-stage elderly scheme (75+): 8 digits starting 39
}


@dataclass(frozen=True)
class StepsProfile:
    mean_steps: int  # this resident's typical weekday total in a mild month
    variability: float  # sigma of log daily steps around the mean
    weekend_factor: float
    wake_shift: int  # hours later (+) or earlier (-) than the population's day
    platform: str  # healthkit | health_connect | tracker
    device_id: str


@dataclass(frozen=True)
class Commute:
    work_days: int  # days a week at the workplace: 3, 4 or 5
    leave_home: int  # minutes after midnight, the usual time of the morning ride
    leave_work: int  # minutes after midnight, the usual time of the evening ride
    commuter_pass: bool


@dataclass(frozen=True)
class SyntheticResident:
    index: int
    seed: int  # the city's seed: every record stream of this resident derives from it
    email: str
    password: str = field(repr=False)
    birth_year: int
    sex: str  # male | female
    ward_code: str
    employed: bool
    home_station: str
    work_station: str | None  # None: does not ride the subway to work
    commute: Commute | None  # set exactly when work_station is
    card_number: str  # 17 digits, the transit IC card
    insurer_number: str
    member_number: str  # insurer member number (被保険者番号), 8 digits
    steps_profile: StepsProfile

    def age_in(self, year: int) -> int:
        return year - self.birth_year


def rng(*parts: object) -> random.Random:
    """A generator for one stream: demo data, not secrets, so a fast PRNG is right."""
    digest = hashlib.blake2b("|".join(map(str, parts)).encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))  # noqa: S311


def _keyed(seed: int, label: str, modulus: int) -> int:
    digest = hashlib.blake2b(f"{seed}|{label}".encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") % modulus


def card_number(seed: int, index: int) -> str:
    """17 digits; an affine bijection of the index (the multiplier is prime to 10) keeps them
    unique within a city while looking random."""
    scrambled = (index * 3_141_592_653 + _keyed(seed, "card", 10**10)) % 10**10
    return f"31{_keyed(seed, 'card-issuer', 10**5):05d}{scrambled:010d}"


def member_number(seed: int, index: int) -> str:
    return f"{(index * 27_182_817 + _keyed(seed, 'member', 10**8)) % 10**8:08d}"


def password(seed: int, index: int) -> str:
    """Deterministic, hence public: for demo accounts only. 19 characters of base32 groups."""
    digest = hashlib.sha256(f"demo-password|{seed}|{index}".encode()).digest()
    text = base64.b32encode(digest).decode().lower()
    return "-".join(text[i : i + 4] for i in range(0, 16, 4))


def _by_age(table: tuple[tuple[int, float], ...], age: int) -> float:
    value = table[0][1]
    for start, share in table:
        if age >= start:
            value = share
    return value


@functools.cache
def _age_cumulative() -> list[float]:
    return list(itertools.accumulate(weight for _, weight in AGE_BANDS))


@functools.cache
def _ward_cumulative() -> list[float]:
    return list(itertools.accumulate(ward.population for ward in wards()))


def _pick(r: random.Random, cumulative: list[float]) -> int:
    return bisect.bisect_right(cumulative, r.random() * cumulative[-1])


@functools.cache
def home_stations(ward_code: str) -> tuple[str, ...]:
    own = tuple(s.code for s in stations() if s.ward_code == ward_code)
    return own or NEAREST_STATIONS[ward_code]


@functools.cache
def _work_table() -> tuple[tuple[str, ...], list[float]]:
    codes = tuple(s.code for s in stations())
    return codes, list(itertools.accumulate(WORK_WEIGHTS.get(code, 1) for code in codes))


def _work_station(r: random.Random, home: str) -> str:
    codes, cumulative = _work_table()
    home_name = next(s.name_en for s in stations() if s.code == home)
    while True:
        code = codes[_pick(r, cumulative)]
        if next(s.name_en for s in stations() if s.code == code) != home_name:
            return code


def _employed_share(age: int, sex: str) -> float:
    share = EMPLOYED[0]
    for row in EMPLOYED:
        if age >= row[0]:
            share = row
    return share[1] if sex == "male" else share[2]


def _insurer(age: int, employed: bool) -> str:
    if age >= 75:
        return INSURERS["elderly"]
    return INSURERS["employees"] if employed and age < 65 else INSURERS["nhi"]


def _steps_mean(age: int, sex: str) -> float:
    """Typical daily steps: about 8,000 for men under 50, slowly fewer to 65, then ~130 fewer a
    year of age; women walk ~14 % less (shape of Japan's national nutrition survey)."""
    if age < 50:
        men = 8_000.0
    elif age < 65:
        men = 8_000.0 - 50.0 * (age - 50)
    else:
        men = 7_300.0 - 130.0 * (age - 64)
    return men if sex == "male" else men * 0.86


def _clock(r: random.Random, mean: float, sd: float, low: int, high: int) -> int:
    return int(min(high, max(low, r.gauss(mean, sd))))


def make_resident(seed: int, index: int) -> SyntheticResident:
    if not 0 <= index < MAX_RESIDENTS:
        raise ValueError(f"A resident index is between 0 and {MAX_RESIDENTS - 1:,}.")
    r = rng(seed, index, "person")
    start, _ = AGE_BANDS[_pick(r, _age_cumulative())]
    age = start + r.randrange(5)
    sex = "female" if r.random() < _by_age(FEMALE_SHARE, age) else "male"
    ward = wards()[_pick(r, _ward_cumulative())].code
    home = r.choice(home_stations(ward))
    employed = r.random() < _employed_share(age, sex)
    work: str | None = None
    commute: Commute | None = None
    if employed and r.random() < SUBWAY_COMMUTE:
        work = _work_station(r, home)
        commute = Commute(
            work_days=r.choices((5, 4, 3), weights=(80, 10, 10))[0],
            leave_home=_clock(r, 7 * 60 + 45, 22, 7 * 60, 8 * 60 + 50),
            leave_work=_clock(r, 18 * 60 + 15, 40, 17 * 60, 20 * 60 + 45),
            commuter_pass=r.random() < COMMUTER_PASS,
        )
    platform = r.choices([p for p, _ in PLATFORMS], weights=[w for _, w in PLATFORMS])[0]
    profile = StepsProfile(
        mean_steps=round(_steps_mean(age, sex) * r.lognormvariate(0.0, 0.27)),
        variability=r.uniform(0.20, 0.34),
        weekend_factor=r.uniform(0.70, 1.05) if work else r.uniform(0.85, 1.10),
        wake_shift=r.choices((-1, 0, 1), weights=(25, 55, 20))[0],
        platform=platform,
        device_id=f"{platform}-{r.getrandbits(64):016x}",
    )
    return SyntheticResident(
        index=index,
        seed=seed,
        email=f"resident{index:06d}@{EMAIL_DOMAIN}",
        password=password(seed, index),
        birth_year=REFERENCE_YEAR - age,
        sex=sex,
        ward_code=ward,
        employed=employed,
        home_station=home,
        work_station=work,
        commute=commute,
        card_number=card_number(seed, index),
        insurer_number=_insurer(age, employed),
        member_number=member_number(seed, index),
        steps_profile=profile,
    )

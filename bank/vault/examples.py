"""Realistic examples of the vault's request and response bodies, for the OpenAPI document.

One resident of Sapporo over a few days of November 2026: steps from their phone, a SAPICA card
on the Namboku line, a checkup from their insurer. The request examples are sent to the API as
they are by tests/bank/test_openapi_examples.py (with the world they describe: the card and the
membership linked, a source registered for the subway and the insurer), which expects success.
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta, timezone

from bank.http.openapi import example
from bank.vault.schemas import (
    BatchResult,
    CheckupBatch,
    CheckupBody,
    CheckupItemBody,
    CheckupItemView,
    CheckupPage,
    CheckupView,
    DailyTotal,
    ErasureRequest,
    ErasureView,
    ExportView,
    InsurerMemberLink,
    ItemOutcome,
    JudgedItem,
    LatestCheckup,
    LinkView,
    MonthSummary,
    RefusalView,
    RideMonth,
    RideView,
    StepBatch,
    StepBatchResult,
    StepDayBody,
    StepDayView,
    StepItemResult,
    StepPage,
    TapBatch,
    TapBody,
    TapPage,
    TapView,
    TransitCardLink,
    UnreadableStepDay,
)

JST = timezone(timedelta(hours=9))
CARD_NUMBER = "3086012345678901"  # a SAPICA-like 16 digits
INSURER_NUMBER = "67011017"  # 札幌市国民健康保険 style: 8 digits
MEMBER_NUMBER = "1234-5678"
SUBWAY = "sapporo-subway"
INSTITUTION_CODE = "0112345678"
EXAMPLE_PASSWORD = "Lilac Festival in Odori 2026"  # the resident's, in the account examples


def _hourly(total: int) -> list[int]:
    """A plausible day: nothing at night, a commute, lunch, an evening walk."""
    weights = [0, 0, 0, 0, 0, 0, 1, 6, 9, 3, 2, 3, 7, 3, 2, 2, 3, 5, 8, 4, 2, 1, 0, 0]
    hours = [total * w // sum(weights) for w in weights]
    hours[8] += total - sum(hours)
    return hours


example(
    StepBatch,
    "phone",
    "Three days from the resident's phone (HealthKit), one with hourly counts",
    StepBatch(
        days=[
            StepDayBody(
                day=date(2026, 11, 28),
                steps=8412,
                platform="healthkit",
                hourly=_hourly(8412),
                device_id="iPhone15,2",
            ),
            StepDayBody(day=date(2026, 11, 29), steps=11050, platform="healthkit"),
            StepDayBody(day=date(2026, 11, 30), steps=6230, platform="healthkit"),
        ]
    ),
)
example(
    StepBatchResult,
    "stored",
    "Two days stored, one replaced, none refused",
    StepBatchResult(
        results=[
            StepItemResult(0, date(2026, 11, 28), "healthkit", "stored", []),
            StepItemResult(1, date(2026, 11, 29), "healthkit", "stored", []),
            StepItemResult(2, date(2026, 11, 30), "healthkit", "replaced", []),
        ],
        stored=2,
        replaced=1,
        unchanged=0,
        refused=0,
    ),
)
example(
    StepBatchResult,
    "refused",
    "A day in the future is refused; the others are stored",
    StepBatchResult(
        results=[
            StepItemResult(0, date(2026, 11, 30), "healthkit", "stored", []),
            StepItemResult(
                1,
                date(2027, 1, 1),
                "healthkit",
                "refused",
                [RefusalView("$.days[1].day", "The day is in the future.")],
            ),
        ],
        stored=1,
        replaced=0,
        unchanged=0,
        refused=1,
    ),
)
example(
    StepPage,
    "page",
    "A page of days, the last one unreadable",
    StepPage(
        items=[
            StepDayView(
                day=date(2026, 11, 28),
                platform="healthkit",
                steps=8412,
                hourly=_hourly(8412),
                method="automatic",
                device_id="iPhone15,2",
                revision=1,
            ),
            StepDayView(
                day=date(2026, 11, 29),
                platform="health_connect",
                steps=10980,
                hourly=None,
                method="automatic",
                device_id=None,
                revision=2,
            ),
            UnreadableStepDay(day=date(2026, 11, 30), platform="healthkit", revision=1),
        ],
        next_cursor="MjAyNi0xMS0zMHxoZWFsdGhraXQ",
    ),
)
example(
    MonthSummary,
    "november",
    "November 2026",
    MonthSummary(
        month="2026-11",
        days_recorded=3,
        total_steps=25692,
        mean_steps=8564,
        days=[
            DailyTotal(date(2026, 11, 28), 8412),
            DailyTotal(date(2026, 11, 29), 11050),
            DailyTotal(date(2026, 11, 30), 6230),
        ],
        unreadable_left_out=0,
    ),
)
example(
    ErasureRequest,
    "erase",
    "The password again, to erase everything",
    ErasureRequest(password=EXAMPLE_PASSWORD),
)
example(
    ErasureView,
    "receipt",
    "The erasure receipt",
    ErasureView(
        receipt_id=uuid.UUID("0b7c9e4a-2f1d-4c8b-9a6e-5d3f2e1c0b9a"),
        erased_at=datetime(2026, 12, 1, 9, 30, 12, tzinfo=UTC),
        records_deleted=412,
    ),
)
example(
    TransitCardLink,
    "card",
    "A transit IC card",
    TransitCardLink(card_number=CARD_NUMBER),
)
example(
    InsurerMemberLink,
    "membership",
    "A health insurance membership",
    InsurerMemberLink(insurer_number=INSURER_NUMBER, member_number=MEMBER_NUMBER),
)
_CARD_VIEW = LinkView(
    id=uuid.UUID("5e2a7c10-9b3d-4f61-8a2e-7c4d1b0e9f35"),
    kind="transit_card",
    masked="••••8901",
    created_at=datetime(2026, 11, 2, 10, 4, 55, tzinfo=UTC),
)
example(LinkView, "card", "The linked card, masked", _CARD_VIEW)

_TAPS = [
    TapBody(
        operator=SUBWAY,
        tap_id="N-20261130-081500-0042",
        card_number=CARD_NUMBER,
        tap_type="entry",
        tapped_at=datetime(2026, 11, 30, 8, 15, tzinfo=JST),
        station="N07",
        line="N",
        fare_product="stored_value",
    ),
    TapBody(
        operator=SUBWAY,
        tap_id="N-20261130-083100-0311",
        card_number=CARD_NUMBER,
        tap_type="exit",
        tapped_at=datetime(2026, 11, 30, 8, 31, tzinfo=JST),
        station="N01",
        line="N",
        fare_product="stored_value",
        fare_yen=250,
    ),
]
example(
    TapBatch,
    "ride",
    "Entry at Odori (N07), exit at Asabu (N01), Namboku line",
    TapBatch(taps=_TAPS),
)
example(
    BatchResult,
    "stored",
    "Both taps stored",
    BatchResult(
        results=[ItemOutcome(0, "stored", []), ItemOutcome(1, "stored", [])],
        stored=2,
        replaced=0,
        unchanged=0,
        refused=0,
    ),
)
example(
    BatchResult,
    "unlinked",
    "A tap for a card nobody linked is refused, not stored",
    BatchResult(
        results=[
            ItemOutcome(0, "stored", []),
            ItemOutcome(
                1,
                "refused",
                [RefusalView("$.taps[1].card_number", "No resident has linked this card.")],
            ),
        ],
        stored=1,
        replaced=0,
        unchanged=0,
        refused=1,
    ),
)
example(
    TapPage,
    "page",
    "A page of taps",
    TapPage(
        items=[
            TapView(
                operator=tap.operator,
                tap_id=tap.tap_id,
                card_last4=CARD_NUMBER[-4:],
                tap_type=tap.tap_type,
                tapped_at=tap.tapped_at,
                station=tap.station,
                line=tap.line,
                fare_yen=tap.fare_yen,
                fare_product=tap.fare_product,
            )
            for tap in _TAPS
        ],
        next_cursor=None,
    ),
)
example(
    RideMonth,
    "november",
    "November 2026: one ride",
    RideMonth(
        month="2026-11",
        rides=1,
        complete_rides=1,
        fares_yen=250,
        items=[
            RideView(
                operator=SUBWAY,
                entered_at=_TAPS[0].tapped_at,
                exited_at=_TAPS[1].tapped_at,
                from_station="N07",
                to_station="N01",
                fare_yen=250,
                fare_product="stored_value",
                complete=True,
            )
        ],
        unreadable_left_out=0,
    ),
)

_EXAM_DATE = date(2026, 10, 14)
_ITEMS = [
    ("height", 168.2, "cm"),
    ("weight", 66.5, "kg"),
    ("bmi", 23.5, "kg/m2"),
    ("waist", 84.0, "cm"),
    ("sbp", 128.0, "mmHg"),
    ("dbp", 82.0, "mmHg"),
    ("tg", 142.0, "mg/dL"),
    ("hdl", 58.0, "mg/dL"),
    ("ldl", 131.0, "mg/dL"),
    ("hba1c", 5.7, "%"),
]
example(
    CheckupBatch,
    "annual",
    "An annual 特定健診 from the insurer",
    CheckupBatch(
        checkups=[
            CheckupBody(
                institution_code=INSTITUTION_CODE,
                exam_id="KS-2026-104417",
                exam_date=_EXAM_DATE,
                insurer_number=INSURER_NUMBER,
                member_number=MEMBER_NUMBER,
                sex="male",
                fasting=True,
                items=[CheckupItemBody(item, value, unit) for item, value, unit in _ITEMS]
                + [CheckupItemBody("urine_protein", "-", "")],
            )
        ]
    ),
)
example(
    CheckupPage,
    "page",
    "A page of checkups",
    CheckupPage(
        items=[
            CheckupView(
                institution_code=INSTITUTION_CODE,
                exam_id="KS-2026-104417",
                exam_date=_EXAM_DATE,
                sex="male",
                fasting=True,
                items=[
                    CheckupItemView("sbp", 128.0, "mmHg", "9A751000000000001", "8480-6"),
                    CheckupItemView("hba1c", 5.7, "%", "3D046000001906202", "4548-4"),
                ],
            )
        ],
        next_cursor=None,
    ),
)
example(
    LatestCheckup,
    "latest",
    "The latest checkup, judged",
    LatestCheckup(
        exam_date=_EXAM_DATE,
        institution_code=INSTITUTION_CODE,
        items=[
            JudgedItem("sbp", "収縮期血圧", "Systolic blood pressure", 128.0, "mmHg", "normal"),
            JudgedItem("ldl", "LDLコレステロール", "LDL cholesterol", 131.0, "mg/dL", "guidance"),
            JudgedItem("hba1c", "HbA1c(NGSP)", "HbA1c (NGSP)", 5.7, "%", "guidance"),
        ],
    ),
)
_EXPORT_ID = uuid.UUID("5f0c6a2e-8a1b-4c3d-9e2f-0a1b2c3d4e5f")
_ASKED = datetime(2026, 12, 1, 9, 0, 3, tzinfo=UTC)
example(
    ExportView,
    "pending",
    "Asked for, being built",
    ExportView(
        id=_EXPORT_ID,
        status="pending",
        requested_at=_ASKED,
        ready_at=None,
        expires_at=_ASKED + timedelta(days=1),
        size_bytes=None,
        download=None,
    ),
)
example(
    ExportView,
    "ready",
    "Ready to download for a day",
    ExportView(
        id=_EXPORT_ID,
        status="ready",
        requested_at=_ASKED,
        ready_at=_ASKED + timedelta(seconds=4),
        expires_at=_ASKED + timedelta(days=1, seconds=4),
        size_bytes=48213,
        download=f"/v1/me/exports/{_EXPORT_ID}/download",
    ),
)

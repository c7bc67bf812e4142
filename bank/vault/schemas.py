"""The vault's request and response types (msgspec): unknown fields refused, documented for
OpenAPI. Controllers map between these and the services' own types."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from bank.vault import checkups, steps, transit


class RefusalView(msgspec.Struct):
    path: str
    reason: str


class StepDayBody(msgspec.Struct, forbid_unknown_fields=True):
    day: date
    steps: int
    platform: str
    method: str = "automatic"
    hourly: list[int] | None = None
    device_id: str | None = None


class StepBatch(msgspec.Struct, forbid_unknown_fields=True):
    days: Annotated[list[StepDayBody], msgspec.Meta(min_length=1, max_length=steps.MAX_BATCH)]


class StepItemResult(msgspec.Struct):
    index: int
    day: date
    platform: str
    outcome: str
    refusals: list[RefusalView]


class StepBatchResult(msgspec.Struct):
    results: list[StepItemResult]
    stored: int
    replaced: int
    unchanged: int
    refused: int


# A record that does not open where it is stored (tampered, copied from another row, day,
# resident or revision) is listed in its place by its natural key alone, never with a value. A
# list's items are tagged by `status` ("opened" or "unreadable"): msgspec encodes a union of
# Structs only when tagged, and the tag lets a client tell the two apart before reading fields.
_UNREADABLE = msgspec.Meta(
    description="Always true: this record is stored but does not open (tampered, moved or an "
    "older revision copied over it), so only its natural key is shown. The other records of the "
    "page are unaffected."
)
_LEFT_OUT = msgspec.Meta(
    ge=0,
    description="Stored records of the period that do not open and were left out of the "
    "figures above.",
)


class StepDayView(msgspec.Struct, tag_field="status", tag="opened"):
    day: date
    platform: str
    steps: int
    hourly: list[int] | None
    method: str
    device_id: str | None
    revision: int


class UnreadableStepDay(msgspec.Struct, tag_field="status", tag="unreadable"):
    """A stored day of steps that does not open: its day and platform only."""

    day: date
    platform: str
    revision: int
    unreadable: Annotated[Literal[True], _UNREADABLE] = True


class StepPage(msgspec.Struct):
    items: list[StepDayView | UnreadableStepDay]
    next_cursor: str | None


class DailyTotal(msgspec.Struct):
    day: date
    steps: int


class MonthSummary(msgspec.Struct):
    month: str
    days_recorded: int
    total_steps: int
    mean_steps: int
    days: list[DailyTotal]
    unreadable_left_out: Annotated[int, _LEFT_OUT]


class ErasureRequest(msgspec.Struct, forbid_unknown_fields=True):
    password: str


class ErasureView(msgspec.Struct):
    receipt_id: uuid.UUID
    erased_at: datetime
    records_deleted: int


class LinkBody(msgspec.Struct, forbid_unknown_fields=True):
    kind: Literal["transit_card", "insurer_member"]
    card_number: str | None = None
    insurer_number: str | None = None
    member_number: str | None = None


class LinkView(msgspec.Struct):
    id: uuid.UUID
    kind: str
    masked: Annotated[
        str | None,
        msgspec.Meta(description="The number's last digits; null when `unreadable`."),
    ]
    created_at: datetime
    unreadable: Annotated[
        bool,
        msgspec.Meta(
            description="True when the link's stored label does not open (tampered or moved): "
            "the link still routes records to you, but its number cannot be shown."
        ),
    ] = False


class TapView(msgspec.Struct, tag_field="status", tag="opened"):
    operator: str
    tap_id: str
    card_last4: str
    tap_type: str
    tapped_at: datetime
    station: str
    line: str
    fare_yen: int | None
    fare_product: str


class UnreadableTap(msgspec.Struct, tag_field="status", tag="unreadable"):
    """A stored tap that does not open: its operator and tap id only."""

    operator: str
    tap_id: str
    day: date
    unreadable: Annotated[Literal[True], _UNREADABLE] = True


class TapPage(msgspec.Struct):
    items: list[TapView | UnreadableTap]
    next_cursor: str | None


class RideView(msgspec.Struct):
    operator: str
    entered_at: datetime | None
    exited_at: datetime | None
    from_station: str | None
    to_station: str | None
    fare_yen: int | None
    fare_product: str | None
    complete: bool


class RideMonth(msgspec.Struct):
    month: str
    rides: int
    complete_rides: int
    fares_yen: int
    items: list[RideView]
    unreadable_left_out: Annotated[int, _LEFT_OUT]


class CheckupItemView(msgspec.Struct):
    item: str
    value: float | str
    unit: str
    jlac10: str
    loinc: str


class CheckupView(msgspec.Struct, tag_field="status", tag="opened"):
    institution_code: str
    exam_id: str
    exam_date: date
    sex: str
    fasting: bool | None
    items: list[CheckupItemView]


class UnreadableCheckup(msgspec.Struct, tag_field="status", tag="unreadable"):
    """A stored checkup that does not open: its institution, exam id and date only."""

    institution_code: str
    exam_id: str
    exam_date: date
    unreadable: Annotated[Literal[True], _UNREADABLE] = True


class CheckupPage(msgspec.Struct):
    items: list[CheckupView | UnreadableCheckup]
    next_cursor: str | None


class JudgedItem(msgspec.Struct):
    item: str
    name_ja: str
    name_en: str
    value: float | str
    unit: str
    judgement: str  # normal | guidance (保健指導判定値) | referral (受診勧奨判定値) | not_judged


class LatestCheckup(msgspec.Struct):
    exam_date: date
    institution_code: str
    items: list[JudgedItem]


class TapBody(msgspec.Struct, forbid_unknown_fields=True):
    operator: str
    tap_id: str
    card_number: str
    tap_type: str
    tapped_at: datetime
    station: str
    line: str
    fare_product: str
    fare_yen: int | None = None


class TapBatch(msgspec.Struct, forbid_unknown_fields=True):
    taps: Annotated[list[TapBody], msgspec.Meta(min_length=1, max_length=transit.MAX_BATCH)]


class ItemOutcome(msgspec.Struct):
    index: int
    outcome: str
    refusals: list[RefusalView]


class BatchResult(msgspec.Struct):
    results: list[ItemOutcome]
    stored: int
    replaced: int
    unchanged: int
    refused: int


class CheckupItemBody(msgspec.Struct, forbid_unknown_fields=True):
    item: str
    value: float | str
    unit: str


class CheckupBody(msgspec.Struct, forbid_unknown_fields=True):
    institution_code: str
    exam_id: str
    exam_date: date
    insurer_number: str
    member_number: str
    sex: str
    items: list[CheckupItemBody]
    fasting: bool | None = None


class CheckupBatch(msgspec.Struct, forbid_unknown_fields=True):
    checkups: Annotated[
        list[CheckupBody], msgspec.Meta(min_length=1, max_length=checkups.MAX_BATCH)
    ]


class ExportView(msgspec.Struct):
    id: uuid.UUID
    status: str  # pending | ready
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime
    size_bytes: int | None
    download: str | None

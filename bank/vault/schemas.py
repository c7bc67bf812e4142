"""The vault's request and response types (msgspec): unknown fields refused, documented for
OpenAPI. Controllers map between these and the services' own types."""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Literal

import msgspec

from bank.reference import checkup_items
from bank.vault import checkups, steps, transit
from bank.vault.rules import steps as step_rules
from bank.vault.rules import transit as transit_rules
from bank.vault.rules.checkups import MAX_EXAM_ID, SEXES
from bank.vault.rules.exports import ExportStatus
from bank.vault.rules.judgement import URINE_LEVELS


def _states(description: str | None = None, **schema: object) -> msgspec.Meta:
    """What the schema states about a field without the decoder enforcing it: the per-item
    rules of a push (bank.vault.rules) answer an item that breaks them in its own outcome, so
    one bad item never refuses the batch; a generated client can still check before sending."""
    return msgspec.Meta(description=description, extra_json_schema={"extra": schema})


_DIGITS_16_17 = r"^[0-9]{16,17}$"
_INSURER = r"^([0-9]{6}|[0-9]{8})$"
_MEMBER = r"^[0-9A-Za-z-]*[0-9A-Za-z][0-9A-Za-z-]*$"
_OPERATOR = r"^[a-z][a-z0-9-]{1,39}$"
_STOP = r"^[0-9A-Za-z_.:-]{1,64}$"
_PRINTABLE_ASCII = r"^[ -~]+$"


class RefusalView(msgspec.Struct):
    path: str
    reason: str


class StepDayBody(msgspec.Struct, forbid_unknown_fields=True):
    day: Annotated[
        date,
        _states("The local day (city time): not in the future, at most five years ago."),
    ]
    steps: Annotated[int, _states(minimum=0, maximum=step_rules.MAX_STEPS_PER_DAY)]
    platform: Annotated[
        str,
        _states(
            "Where the count comes from; one day per platform is kept.",
            enum=sorted(step_rules.PLATFORMS),
        ),
    ]
    method: Annotated[str, _states(enum=sorted(step_rules.METHODS))] = "automatic"
    hourly: (
        Annotated[
            list[Annotated[int, _states(minimum=0, maximum=step_rules.MAX_STEPS_PER_HOUR)]],
            _states(
                "24 hourly counts (local hours 0-23) adding up to `steps`.",
                min_items=24,
                max_items=24,
            ),
        ]
        | None
    ) = None
    device_id: (
        Annotated[
            str,
            _states(
                "1 to 128 printable ASCII characters.",
                min_length=1,
                max_length=step_rules.MAX_DEVICE_ID,
                pattern=_PRINTABLE_ASCII,
            ),
        ]
        | None
    ) = None


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


class TransitCardLink(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="transit_card"
):
    """A transit IC card (SAPICA, Kitaca, Suica, ...)."""

    card_number: Annotated[
        str,
        _states(
            "The card's 16 or 17 digits (spaces and hyphens a person types are removed first).",
            pattern=_DIGITS_16_17,
        ),
    ]


class InsurerMemberLink(
    msgspec.Struct, forbid_unknown_fields=True, tag_field="kind", tag="insurer_member"
):
    """A membership of a health insurer, as on the insurance card (保険証)."""

    insurer_number: Annotated[
        str, _states("保険者番号: 6 digits (国保) or 8 digits.", pattern=_INSURER)
    ]
    member_number: Annotated[
        str,
        _states(
            "記号・番号: letters, digits and hyphens, at most 32 (spaces are removed first).",
            pattern=_MEMBER,
            max_length=32,
        ),
    ]


LinkBody = TransitCardLink | InsurerMemberLink


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
    operator: Annotated[
        str,
        _states(
            "The operator's slug, one of the feeds the source is registered for.",
            pattern=_OPERATOR,
        ),
    ]
    tap_id: Annotated[
        str,
        _states(
            "The operator's own id of the tap; the same id again replaces it.",
            min_length=1,
            max_length=transit_rules.MAX_TAP_ID,
            pattern=_PRINTABLE_ASCII,
        ),
    ]
    card_number: Annotated[
        str, _states("The card's 16 or 17 digits, as linked.", pattern=_DIGITS_16_17)
    ]
    tap_type: Annotated[str, _states(enum=sorted(transit_rules.TAP_TYPES))]
    tapped_at: Annotated[
        datetime,
        _states("With its offset; at most 5 minutes ahead of the bank's clock, 400 days back."),
    ]
    station: Annotated[
        str, _states("The station's code (the subway's N07) or GTFS stop_id.", pattern=_STOP)
    ]
    line: Annotated[str, _states("The line's code or GTFS route_id.", pattern=_STOP)]
    fare_product: Annotated[str, _states(enum=sorted(transit_rules.FARE_PRODUCTS))]
    fare_yen: Annotated[int, _states(minimum=0, maximum=transit_rules.MAX_FARE_YEN)] | None = None


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
    item: Annotated[
        str,
        _states(
            "The item's code in the bundled reference of 特定健診 items; each item once.",
            enum=[item.item for item in checkup_items()],
        ),
    ]
    value: Annotated[
        float | str,
        msgspec.Meta(
            description="A number in `unit`, or for a urine item one of "
            + ", ".join(URINE_LEVELS)
            + "."
        ),
    ]
    unit: Annotated[str, _states("As the clinic measured it (mg/dL, mmol/L, ...).", max_length=16)]


class CheckupBody(msgspec.Struct, forbid_unknown_fields=True):
    institution_code: Annotated[
        str, _states("医療機関コード: exactly 10 digits.", pattern=r"^[0-9]{10}$")
    ]
    exam_id: Annotated[
        str,
        _states(
            "The institution's own id of the exam; the same id again replaces it.",
            min_length=1,
            max_length=MAX_EXAM_ID,
            pattern=_PRINTABLE_ASCII,
        ),
    ]
    exam_date: Annotated[date, _states("Not in the future, at most ten years ago.")]
    insurer_number: Annotated[
        str, _states("保険者番号: 6 or 8 digits, one the source pushes for.", pattern=_INSURER)
    ]
    member_number: Annotated[str, _states("記号・番号, as linked.", pattern=_MEMBER, max_length=32)]
    sex: Annotated[str, _states(enum=sorted(SEXES))]
    items: Annotated[list[CheckupItemBody], _states(min_items=1, max_items=len(checkup_items()))]
    fasting: bool | None = None


class CheckupBatch(msgspec.Struct, forbid_unknown_fields=True):
    checkups: Annotated[
        list[CheckupBody], msgspec.Meta(min_length=1, max_length=checkups.MAX_BATCH)
    ]


class ExportView(msgspec.Struct):
    """`pending` while it is built (queued, waiting to retry or running), `ready` to download
    (`download` is its URL), `failed` when the build gave up: ask for a new one."""

    id: uuid.UUID
    status: ExportStatus
    requested_at: datetime
    ready_at: datetime | None
    expires_at: datetime
    size_bytes: int | None
    download: str | None

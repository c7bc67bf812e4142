"""Transit taps from operators: routed to residents by card blind index, sealed, idempotent.

A tap is accepted only when the pushing client feeds for the tap's operator and a resident has
linked the card; otherwise it is refused (per item, with the reason) and not stored. The card
number is sealed as its last four digits only: the resident knows their card, and the full
number is what the blind index exists to keep out of the database.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore
from bank.vault.errors import InvalidLink
from bank.vault.kinds import Opened, RecordKind, Table
from bank.vault.links import LinkKind, Links, normalise_card_number
from bank.vault.records import (
    Incoming,
    ItemResult,
    store_records,
    superseded,
)
from bank.vault.rules import Refusal
from bank.vault.rules.transit import TapIn, validate_tap

MAX_BATCH = 1000


class TapPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    operator: str
    tap_id: str
    card_last4: str
    tap_type: str
    tapped_at: datetime
    station: str
    line: str
    fare_yen: int | None
    fare_product: str


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(TapPayload)


def _opened(natural_key: str, day: date, revision: int, plaintext: bytes) -> Opened[TapPayload]:
    return Opened(natural_key, day, revision, _DECODER.decode(plaintext))


TAPS = RecordKind[Opened[TapPayload]](
    code="transit_tap", schema_version=1, table=Table.RECORDS, opened=_opened
)


def natural_key(operator: str, tap_id: str) -> str:
    return f"{operator}/{tap_id}"  # operator slugs have no "/"


def natural_key_parts(key: str) -> tuple[str, str]:
    """(operator, tap_id) of a `natural_key`: the first "/" separates them."""
    operator, tap_id = key.split("/", 1)
    return operator, tap_id


def _payload(tap: TapIn, card: str) -> TapPayload:
    return TapPayload(
        operator=tap.operator,
        tap_id=tap.tap_id,
        card_last4=card[-4:],
        tap_type=tap.tap_type,
        tapped_at=tap.tapped_at,
        station=tap.station,
        line=tap.line,
        fare_yen=tap.fare_yen,
        fare_product=tap.fare_product,
    )


def _card(tap: TapIn) -> str | None:
    try:
        return normalise_card_number(tap.card_number)
    except InvalidLink:
        return None


async def ingest_taps(
    session: AsyncSession,
    keys: KeyStore,
    *,
    client_id: str,
    feeds: Sequence[str],
    taps: Sequence[TapIn],
    now: datetime,
    zone: ZoneInfo,
) -> list[ItemResult]:
    results: dict[int, ItemResult] = {}
    cards = {index: _card(tap) for index, tap in enumerate(taps)}
    owners = await Links(session, keys).residents_of(
        LinkKind.TRANSIT_CARD, [card for card in cards.values() if card is not None]
    )
    later = superseded([natural_key(tap.operator, tap.tap_id) for tap in taps])
    valid: list[Incoming] = []
    for index, tap in enumerate(taps):
        path = f"$.taps[{index}]"
        refusals = validate_tap(tap, now=now, path=path)
        if not refusals and tap.operator not in feeds:
            refusals.append(
                Refusal(f"{path}.operator", "This client does not push taps for this operator.")
            )
        card = cards[index]
        if not refusals and (card is None or card not in owners):
            refusals.append(
                Refusal(
                    f"{path}.card_number",
                    "No resident has linked this card; the tap was not stored.",
                )
            )
        if not refusals and index in later:
            refusals.append(
                Refusal(path, "A later item in this batch has the same operator and tap_id.")
            )
        if refusals or card is None:
            results[index] = ItemResult(index, "refused", tuple(refusals))
            continue
        valid.append(
            Incoming(
                index=index,
                resident_id=owners[card],
                natural_key=natural_key(tap.operator, tap.tap_id),
                day=tap.tapped_at.astimezone(zone).date(),
                payload=_ENCODER.encode(_payload(tap, card)),
            )
        )
    outcomes = await store_records(
        session, keys, kind=TAPS.code, schema_version=TAPS.schema_version,
        source_client=client_id,
        items=valid,
    )  # fmt: skip
    results |= outcomes
    return [results[index] for index in range(len(taps))]

"""Health checkups (特定健診) from clinics and insurers: routed by insurer membership, sealed.

A checkup is accepted only when the pushing client feeds for the member's insurer and the
resident has linked that membership; values are validated and converted to the standard units
(bank.vault.rules.checkups) before sealing, so every stored checkup reads the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore
from bank.vault.errors import InvalidLink
from bank.vault.kinds import Opened, RecordKind, Table
from bank.vault.links import INSURER_NUMBER, LinkKind, Links, member_key
from bank.vault.records import (
    Incoming,
    ItemResult,
    store_records,
    superseded,
)
from bank.vault.rules import Refusal
from bank.vault.rules.checkups import CheckupIn, normalise, validate_checkup

MAX_BATCH = 100


class ItemPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    item: str
    value: float | str
    unit: str
    jlac10: str
    loinc: str


class CheckupPayload(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    institution_code: str
    exam_id: str
    exam_date: date
    insurer_number: str
    sex: str
    fasting: bool | None
    items: tuple[ItemPayload, ...]


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(CheckupPayload)


def _opened(natural_key: str, day: date, revision: int, plaintext: bytes) -> Opened[CheckupPayload]:
    return Opened(natural_key, day, revision, _DECODER.decode(plaintext))


CHECKUPS = RecordKind[Opened[CheckupPayload]](
    code="checkup", schema_version=1, table=Table.RECORDS, opened=_opened
)


def natural_key(institution_code: str, exam_id: str) -> str:
    return f"{institution_code}/{exam_id}"  # institution codes are digits only


def natural_key_parts(key: str) -> tuple[str, str]:
    """(institution_code, exam_id) of a `natural_key`: the first "/" separates them."""
    institution_code, exam_id = key.split("/", 1)
    return institution_code, exam_id


def _payload(checkup: CheckupIn, insurer_number: str) -> CheckupPayload:
    normalised = normalise(checkup)
    return CheckupPayload(
        institution_code=checkup.institution_code,
        exam_id=checkup.exam_id,
        exam_date=checkup.exam_date,
        insurer_number=insurer_number,
        sex=checkup.sex,
        fasting=checkup.fasting,
        items=tuple(
            ItemPayload(item=i.item, value=i.value, unit=i.unit, jlac10=i.jlac10, loinc=i.loinc)
            for i in normalised.items
        ),
    )


def _member(insurer_number: str, checkup: CheckupIn) -> str | None:
    try:
        return member_key(insurer_number, checkup.member_number)
    except InvalidLink:
        return None


async def ingest_checkups(
    session: AsyncSession,
    keys: KeyStore,
    *,
    client_id: str,
    feeds: Sequence[str],
    checkups: Sequence[tuple[str, CheckupIn]],
    today: date,
) -> list[ItemResult]:
    """`checkups` pairs each checkup with the insurer number (保険者番号) of its member."""
    results: dict[int, ItemResult] = {}
    members = {i: _member(insurer, checkup) for i, (insurer, checkup) in enumerate(checkups)}
    owners = await Links(session, keys).residents_of(
        LinkKind.INSURER_MEMBER, [member for member in members.values() if member is not None]
    )
    later = superseded([natural_key(c.institution_code, c.exam_id) for _, c in checkups])
    valid: list[Incoming] = []
    for index, (insurer, checkup) in enumerate(checkups):
        path = f"$.checkups[{index}]"
        refusals = validate_checkup(checkup, today=today, path=path)
        member = members[index]
        if not INSURER_NUMBER.fullmatch(insurer):
            refusals.append(
                Refusal(f"{path}.insurer_number", "insurer_number (保険者番号) has 6 or 8 digits.")
            )
        elif member is None and all(r.field != f"{path}.member_number" for r in refusals):
            refusals.append(
                Refusal(f"{path}.member_number", "member_number needs a letter or a digit.")
            )
        elif insurer not in feeds:
            refusals.append(
                Refusal(f"{path}.insurer_number", "This client does not push for this insurer.")
            )
        elif not refusals and member not in owners:
            refusals.append(
                Refusal(
                    f"{path}.member_number",
                    "No resident has linked this membership; the checkup was not stored.",
                )
            )
        if not refusals and index in later:
            refusals.append(
                Refusal(path, "A later item in this batch has the same institution and exam_id.")
            )
        if refusals or member is None:
            results[index] = ItemResult(index, "refused", tuple(refusals))
            continue
        valid.append(
            Incoming(
                index=index,
                resident_id=owners[member],
                natural_key=natural_key(checkup.institution_code, checkup.exam_id),
                day=checkup.exam_date,
                payload=_ENCODER.encode(_payload(checkup, insurer)),
            )
        )
    outcomes = await store_records(
        session, keys, kind=CHECKUPS.code, schema_version=CHECKUPS.schema_version,
        source_client=client_id,
        items=valid,
    )  # fmt: skip
    results |= outcomes
    return [results[index] for index in range(len(checkups))]

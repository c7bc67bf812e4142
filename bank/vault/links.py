"""Residents' transit cards and insurer memberships, found by blind index only.

A data source knows a card number or an insurer member number, never our resident id. The
resident links the number in the app; we keep an HMAC of it (the blind index, under the
KeyProvider's own key) to route incoming taps and checkups, and a sealed masked form to show the
resident. The number itself is stored nowhere. A number can belong to one resident at a time:
linking a number someone else has linked is refused without saying whose it is.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import msgspec
from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyErased, KeyStore
from bank.crypto.sealing import Binding, OpeningKeys, RecordDoesNotOpen, open_sealed, seal
from bank.vault.errors import InvalidLink, LinkNotFound, LinkTaken
from bank.vault.models import Link
from bank.vault.repository import LinkRows
from bank.vault.unreadable import Unreadable, note_unreadable


class LinkKind(StrEnum):
    TRANSIT_CARD = "transit_card"
    INSURER_MEMBER = "insurer_member"


_CARD = re.compile(r"^[0-9]{16,17}$")
INSURER_NUMBER = re.compile(r"^(?:[0-9]{6}|[0-9]{8})$")  # 保険者番号: 6 (国保) or 8 digits
_MEMBER = re.compile(r"^[0-9A-Za-z-]{1,32}$")
_SEPARATORS = re.compile(r"[\s\u3000・-]+")


def normalise_card_number(number: str) -> str:
    """Digits only: people type card numbers with spaces or hyphens."""
    digits = _SEPARATORS.sub("", number)
    if not _CARD.match(digits):
        raise InvalidLink("A transit IC card number has 16 or 17 digits.")
    return digits


def member_key(insurer_number: str, member_number: str) -> str:
    """What the member blind index is computed over: the insurer and the member within it."""
    insurer = insurer_number.strip()
    member = _SEPARATORS.sub("", member_number)
    if not INSURER_NUMBER.match(insurer):
        raise InvalidLink("An insurer number (保険者番号) has 6 or 8 digits.")
    if not _MEMBER.match(member):
        raise InvalidLink("A member number has 1 to 32 letters, digits or hyphens.")
    return f"{insurer}|{member}"


class _Shown(msgspec.Struct, frozen=True):
    label: str  # masked: the last digits only


@dataclass(frozen=True)
class LinkView:
    id: uuid.UUID
    kind: LinkKind
    masked: str | None  # None: the sealed label does not open (the link itself still routes)
    created_at: datetime


_ENCODER = msgspec.json.Encoder()
_DECODER = msgspec.json.Decoder(_Shown)


def _binding(resident_id: uuid.UUID) -> Binding:
    # A link is never revised: it is removed and added again (revision 1 always).
    return Binding(resident_id, "link", 1)


def _masked(kind: LinkKind, key: str) -> str:
    if kind is LinkKind.TRANSIT_CARD:
        return f"**** {key[-4:]}"
    insurer, member = key.split("|", 1)
    return f"{insurer} / ***{member[-2:]}"


def _label(opened: OpeningKeys, binding: Binding, row: Link) -> str | None:
    try:
        return _DECODER.decode(open_sealed(opened, binding, str(row.id), 1, row.sealed)).label
    except RecordDoesNotOpen:
        marker = Unreadable("link", row.created_at.date(), str(row.id), 1)
        note_unreadable("link", binding.owner, [marker])
        return None


class Links:
    def __init__(self, session: AsyncSession, keys: KeyStore) -> None:
        self._session = session
        self._rows = LinkRows(session)
        self._keys = keys

    async def blind_index(self, kind: LinkKind, key: str) -> bytes:
        return await self._keys.blind_index(kind.value, key)

    async def add(self, resident_id: uuid.UUID, kind: LinkKind, key: str) -> LinkView:
        """Link a normalised number (normalise_card_number / member_key) to the resident."""
        link_id = uuid.uuid4()
        sealing = await self._keys.for_sealing(self._session, resident_id, 1)
        shown = _Shown(label=_masked(kind, key))
        index = await self.blind_index(kind, key)
        sealed = seal(sealing, _binding(resident_id), str(link_id), 1, _ENCODER.encode(shown))
        created_at = await self._rows.add(resident_id, link_id, kind.value, index, sealed)
        if created_at is None:
            if await self._rows.owner(kind.value, index) == resident_id:
                raise LinkTaken("You have already linked this number.")
            raise LinkTaken("This number is linked to another account.")
        return LinkView(link_id, kind, shown.label, created_at)

    async def list(self, resident_id: uuid.UUID, kind: LinkKind | None = None) -> list[LinkView]:
        rows = await self._rows.of(resident_id, kind.value if kind is not None else None)
        if not rows:
            return []
        try:
            opened = await self._keys.for_opening(self._session, resident_id)
        except KeyErased:
            return []
        binding = _binding(resident_id)
        return [
            LinkView(row.id, LinkKind(row.kind), _label(opened, binding, row), row.created_at)
            for row in rows
        ]

    async def remove(self, resident_id: uuid.UUID, link_id: uuid.UUID) -> None:
        if not await self._rows.remove(resident_id, link_id):
            raise LinkNotFound("No such link.")

    async def residents_of(self, kind: LinkKind, keys: Iterable[str]) -> dict[str, uuid.UUID]:
        """The resident linked to each number, for the numbers that are linked at all."""
        numbers = sorted(set(keys))
        # One provider round for the whole set (a feed batch): one thread hop for an HSM.
        computed = await self._keys.blind_indexes(kind.value, numbers)
        indexes = dict(zip(computed, numbers, strict=True))
        if not indexes:
            return {}
        owners = await self._rows.owners(kind.value, list(indexes))
        return {indexes[index]: resident for index, resident in owners.items()}

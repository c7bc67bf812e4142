"""The vault's part of the demo city (`PACKAGE.seed`): a synthetic resident's card and membership
links, step days, subway taps and checkups, through the same ingest code as a phone or a data
source, so a second run stores nothing new (every item `unchanged`).

The synthetic city sits in the composition root (`bank.demo`), above the vault, which may not
import it: the Protocols below are what this hook reads of the context the demo hands every
package's seed hook (`bank.demo.seed.SeedContext`), and the demo's frozen dataclasses satisfy
them as they are.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore
from bank.vault.checkups import ingest_checkups
from bank.vault.errors import LinkTaken
from bank.vault.links import LinkKind, Links, member_key, normalise_card_number
from bank.vault.rules.checkups import CheckupIn, CheckupItemIn
from bank.vault.rules.steps import PushedStepDay
from bank.vault.rules.transit import SUBWAY, TapIn
from bank.vault.steps import ingest_step_days
from bank.vault.transit import ingest_taps

SEED_CLIENT = "demo-seed"  # recorded as the source of the seeded taps and checkups


class DemoResident(Protocol):
    """The numbers the resident's records are routed by: linked before anything is pushed."""

    @property
    def card_number(self) -> str: ...
    @property
    def insurer_number(self) -> str: ...
    @property
    def member_number(self) -> str: ...


class DemoTap(Protocol):
    """A tap as the transit operator's feed would push it (the fields of `TapIn`)."""

    @property
    def operator(self) -> str: ...
    @property
    def tap_id(self) -> str: ...
    @property
    def card_number(self) -> str: ...
    @property
    def tap_type(self) -> str: ...
    @property
    def tapped_at(self) -> datetime: ...
    @property
    def station(self) -> str: ...
    @property
    def line(self) -> str: ...
    @property
    def fare_yen(self) -> int | None: ...
    @property
    def fare_product(self) -> str: ...


class DemoCheckupItem(Protocol):
    @property
    def item(self) -> str: ...
    @property
    def value(self) -> float | str: ...
    @property
    def unit(self) -> str: ...


class DemoCheckup(Protocol):
    """A checkup as the member's insurer would push it, with the insurer number it is sent under."""

    @property
    def institution_code(self) -> str: ...
    @property
    def exam_id(self) -> str: ...
    @property
    def exam_date(self) -> date: ...
    @property
    def insurer_number(self) -> str: ...
    @property
    def member_number(self) -> str: ...
    @property
    def sex(self) -> str: ...
    @property
    def fasting(self) -> bool | None: ...
    @property
    def items(self) -> Sequence[DemoCheckupItem]: ...


class DemoWindow(Protocol):
    """One resident's synthetic records over the seeded days (`bank.demo.synth.ResidentWindow`)."""

    @property
    def resident(self) -> DemoResident: ...
    @property
    def steps(self) -> Sequence[PushedStepDay]: ...
    @property
    def taps(self) -> Sequence[DemoTap]: ...
    @property
    def checkups(self) -> Sequence[DemoCheckup]: ...


class DemoContext(Protocol):
    """What the vault reads of the demo's seed context."""

    @property
    def window(self) -> DemoWindow: ...
    @property
    def end(self) -> date: ...  # the last day seeded: the ingest's "today"
    @property
    def zone(self) -> ZoneInfo: ...  # the city's zone, for the local day of a tap


async def seed_demo_records(
    session: AsyncSession, keys: KeyStore, resident_id: uuid.UUID, context: DemoContext
) -> list[str]:
    """Link the resident's card and membership, then push their step days (as their phone),
    taps (as the subway's feed) and checkups (as their insurer); the items' outcomes in order.
    The links come first: taps and checkups reach a resident only through them."""
    window, end = context.window, context.end
    resident = window.resident
    links = Links(session, keys)
    await _link(
        links, resident_id, LinkKind.TRANSIT_CARD, normalise_card_number(resident.card_number)
    )
    await _link(
        links, resident_id, LinkKind.INSURER_MEMBER,
        member_key(resident.insurer_number, resident.member_number),
    )  # fmt: skip
    results = await ingest_step_days(session, keys, resident_id, window.steps, today=end)
    if window.taps:
        taps = [
            TapIn(operator=t.operator, tap_id=t.tap_id, card_number=t.card_number,
                  tap_type=t.tap_type, tapped_at=t.tapped_at, station=t.station, line=t.line,
                  fare_yen=t.fare_yen, fare_product=t.fare_product)
            for t in window.taps
        ]  # fmt: skip
        # As if the feed pushed them at the start of the day after the last one seeded.
        now = datetime.combine(end + timedelta(days=1), datetime.min.time(), context.zone)
        results += await ingest_taps(
            session, keys, client_id=SEED_CLIENT, feeds=[SUBWAY], taps=taps, now=now,
            zone=context.zone,
        )  # fmt: skip
    if window.checkups:
        pushed = [
            (c.insurer_number,
             CheckupIn(institution_code=c.institution_code, exam_id=c.exam_id,
                       exam_date=c.exam_date, member_number=c.member_number, sex=c.sex,
                       fasting=c.fasting,
                       items=[CheckupItemIn(item=v.item, value=v.value, unit=v.unit)
                              for v in c.items]))
            for c in window.checkups
        ]  # fmt: skip
        results += await ingest_checkups(
            session, keys, client_id=SEED_CLIENT, feeds=[resident.insurer_number],
            checkups=pushed, today=end,
        )  # fmt: skip
    return [result.outcome for result in results]


async def _link(links: Links, resident_id: uuid.UUID, kind: LinkKind, key: str) -> None:
    with contextlib.suppress(LinkTaken):  # linked by an earlier run
        await links.add(resident_id, kind, key)

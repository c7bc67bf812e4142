"""Links on an HSM: a feed batch's card numbers are blind-indexed off the event loop."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from bank.vault.keystore import KeyStore
from bank.vault.links import LinkKind, Links
from tests.bank.crypto import softhsm as softhsm_fixtures
from tests.bank.crypto.softhsm import SoftHsm
from tests.bank.crypto.test_provider_calls import ticking
from tests.bank.vault.conftest import Residents

softhsm = softhsm_fixtures.softhsm  # the SoftHSM2 token


async def test_a_feed_batch_of_card_numbers_is_indexed_without_stalling_the_loop(
    db_session: AsyncSession, softhsm: SoftHsm, residents: Residents
) -> None:
    provider = softhsm.provider()
    links = Links(db_session, KeyStore(provider))
    resident = (await residents.new()).id
    await links.add(resident, LinkKind.TRANSIT_CARD, "JE80000000000007")
    numbers = [f"JE80{index:012d}" for index in range(2000)]

    found, longest, elapsed = await ticking(
        lambda: links.residents_of(LinkKind.TRANSIT_CARD, numbers)
    )

    assert found == {"JE80000000000007": resident}
    # The 2,000 HMACs take one thread hop; on the loop they were one step of `elapsed`.
    assert longest < elapsed / 4, (longest, elapsed)

"""Links on an HSM: a feed batch's card numbers are blind-indexed off the event loop."""

from __future__ import annotations

import threading

from sqlalchemy.ext.asyncio import AsyncSession

from bank.crypto.keystore import KeyStore
from bank.vault.links import LinkKind, Links
from tests.bank.crypto import softhsm as softhsm_fixtures
from tests.bank.crypto.softhsm import SoftHsm
from tests.bank.crypto.test_provider_calls import threads_of_calls
from tests.bank.vault.conftest import Residents

softhsm = softhsm_fixtures.softhsm  # the SoftHSM2 token


async def test_a_feed_batch_of_card_numbers_is_indexed_off_the_event_loop(
    db_session: AsyncSession, softhsm: SoftHsm, residents: Residents
) -> None:
    provider = softhsm.provider()
    links = Links(db_session, KeyStore(provider))
    resident = (await residents.new()).id
    await links.add(resident, LinkKind.TRANSIT_CARD, "JE80000000000007")
    numbers = [f"JE80{index:012d}" for index in range(2000)]

    threads = threads_of_calls(provider)
    found = await links.residents_of(LinkKind.TRANSIT_CARD, numbers)

    assert found == {"JE80000000000007": resident}
    # The 2,000 HMACs ran on a worker thread, not on the event loop's.
    assert threads
    assert threading.get_ident() not in threads

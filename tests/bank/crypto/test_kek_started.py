"""Each KEK version's start time, kept by the provider beside the key (local files, a SoftHSM2
token): what the scheduled rotation and retirement count from (bank.vault.kek_schedule)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bank.crypto.local_provider import LocalKeyProvider
from bank.crypto.provider import KeyProvider, KeyProviderError
from tests.bank.crypto import softhsm as softhsm_fixtures

softhsm = softhsm_fixtures.softhsm

Opener = Callable[[], KeyProvider]  # a new instance on the same key store (another process)


@pytest.fixture(params=["local", "pkcs11"])
def open_provider(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    if request.param == "local":
        return lambda: LocalKeyProvider(tmp_path / "vault")
    hsm = request.getfixturevalue("softhsm")
    return hsm.provider  # type: ignore[no-any-return]


def test_the_first_version_starts_when_made_and_a_new_one_has_no_start_yet(
    open_provider: Opener,
) -> None:
    provider = open_provider()
    before = datetime.now(UTC)
    assert provider.current_kek_version() == 1
    started = provider.kek_started()[1]
    assert started is not None
    assert before - timedelta(seconds=1) <= started
    assert started <= datetime.now(UTC)
    assert provider.new_kek_version() == 2
    # Made, not yet started: the rotation marks it once every data key is wrapped under it.
    assert open_provider().kek_started() == {1: started, 2: None}


def test_a_start_is_recorded_replaced_seen_by_another_instance_and_goes_with_its_version(
    open_provider: Opener,
) -> None:
    provider = open_provider()
    provider.current_kek_version()
    provider.new_kek_version()
    first, second = datetime(2026, 1, 1, 3, tzinfo=UTC), datetime(2026, 2, 1, 4, 5, 6, tzinfo=UTC)
    provider.mark_kek_started(2, first)
    provider.mark_kek_started(2, second)
    assert open_provider().kek_started()[2] == second
    provider.retire_kek_version(1)
    assert open_provider().kek_started() == {2: second}
    with pytest.raises(KeyProviderError, match="version 1 is not available"):
        provider.mark_kek_started(1, first)
    with pytest.raises(ValueError, match="timezone-aware"):
        provider.mark_kek_started(2, datetime(2026, 1, 1))


@settings(max_examples=25, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    at=st.datetimes(
        min_value=datetime(2000, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.timezones(),
        allow_imaginary=False,  # a wall time a DST jump skips names no instant
    )
)
def test_any_aware_time_reads_back_as_the_same_instant(open_provider: Opener, at: datetime) -> None:
    provider = open_provider()
    version = provider.current_kek_version()
    provider.mark_kek_started(version, at)
    # As UTC: PEP 495 makes `==` false across zones for a wall time a DST fold repeats.
    assert open_provider().kek_started()[version] == at.astimezone(UTC)

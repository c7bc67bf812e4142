"""The vault's residents, data sources and export worker (tests/bank/vault/conftest.py), for the
pages' tests: a resident made by the fixtures signs in on the sign-in pages like anyone else;
and the bank in development (tests/bank/welcome/conftest.py), for a resident's walk from sign-up."""

from __future__ import annotations

from datetime import date, datetime
from zoneinfo import ZoneInfo

import pytest

from bank.settings import Settings
from tests.bank.vault.conftest import (  # noqa: F401 - fixtures, found by name
    _committing_registrar,
    _registrar,
    committing_residents,
    committing_sources,
    residents,
    sources,
    worker,
)
from tests.bank.welcome.conftest import dev_bank  # noqa: F401 - a fixture, found by name


@pytest.fixture
def today(settings: Settings) -> date:
    """The city's local date, as the pages and the API compute it."""
    return datetime.now(ZoneInfo(settings.local_timezone)).date()

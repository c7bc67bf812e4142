"""A Python client generated from the checked-in OpenAPI document works against the real app.

openapi-python-client (a dev dependency) generates the client into a temporary directory, as a
partner developer would from `openapi/openapi.json`; the test imports it and walks one resident
flow through its typed functions and models only: link a card, push a few days of steps, read
them back a page at a time and as the month's summary, and read a problem as the typed `Problem`.
"""

from __future__ import annotations

import importlib
import shutil
import subprocess
import sys
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import httpx
import pytest
from litestar import Litestar

from tests.bank.vault.conftest import Resident, Residents, _minter, _Registrar

DOCUMENT = Path(__file__).parents[2] / "openapi" / "openapi.json"
PACKAGE = "city_bank_client"
# The download's ZIP is bytes to the generator (it knows application/octet-stream only); no
# formatter is run over the generated code (the test reads it, nobody edits it).
CONFIG = f"""
package_name_override: {PACKAGE}
content_type_overrides:
  application/zip: application/octet-stream
post_hooks: []
"""


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ModuleType]:
    """The client package, generated once for the module and importable as PACKAGE."""
    where = tmp_path_factory.mktemp("client")
    (where / "config.yaml").write_text(CONFIG, encoding="utf-8")
    tool = shutil.which("openapi-python-client", path=str(Path(sys.executable).parent))
    assert tool is not None, "openapi-python-client is a dev dependency: make install"
    result = subprocess.run(  # our own tool on our own document
        [
            tool, "generate", "--path", str(DOCUMENT), "--meta", "none",
            "--config", str(where / "config.yaml"), "--output-path", str(where / PACKAGE),
        ],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr, result.stdout + result.stderr
    sys.path.insert(0, str(where))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == PACKAGE or n.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]


def _module(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.{name}")


async def _resident(app: Litestar, db_session: Any) -> Resident:
    async def write(work: Any) -> Any:
        result = await work(db_session)
        await db_session.commit()  # releases the savepoint: the app's requests see it
        return result

    registrar = _Registrar(write, await _minter(app, write))
    return await Residents(registrar, app.state.account_secrets).new()


async def test_a_generated_client_links_a_card_pushes_steps_and_reads_the_month(
    generated: ModuleType, client: httpx.AsyncClient, app: Litestar, db_session: Any
) -> None:
    resident = await _resident(app, db_session)
    token = resident.headers()["Authorization"].removeprefix("Bearer ")
    models = _module("models")
    api = generated.AuthenticatedClient(
        base_url="http://testserver",
        token=token,
        httpx_args={"transport": httpx.ASGITransport(app=cast("Any", app))},  # in this loop
    )

    linked = await _module("api.records.link_card_or_membership").asyncio(
        client=api, body=models.TransitCardLink(card_number="3086012345678901", kind="transit_card")
    )
    assert isinstance(linked, models.LinkView), linked
    assert linked.masked.endswith("8901")

    today = date.today()
    first = (today.replace(day=1) - timedelta(days=1)).replace(day=1)  # last month: all past
    days = [
        models.StepDayBody(
            day=first + timedelta(days=n),
            steps=steps,
            platform=models.StepDayBodyPlatform.HEALTHKIT,
        )
        for n, steps in enumerate([8412, 11050, 6230])
    ]
    pushed = await _module("api.records.push_steps").asyncio(
        client=api, body=models.StepBatch(days=days)
    )
    assert isinstance(pushed, models.StepBatchResult), pushed
    assert (pushed.stored, pushed.refused) == (3, 0)

    page = await _module("api.records.list_steps").asyncio(
        client=api, from_=first, to=first + timedelta(days=2), limit=2
    )
    assert isinstance(page, models.StepPage), page
    assert [item.steps for item in page.items] == [8412, 11050]
    rest = await _module("api.records.list_steps").asyncio(
        client=api, from_=first, to=first + timedelta(days=2), limit=2, cursor=page.next_cursor
    )
    assert [item.steps for item in rest.items] == [6230]

    summary = await _module("api.records.month_of_steps").asyncio(
        client=api, month=f"{first:%Y-%m}"
    )
    assert isinstance(summary, models.MonthSummary), summary
    assert (summary.days_recorded, summary.total_steps) == (3, 25692)
    assert [(d.day, d.steps) for d in summary.days] == [
        (first + timedelta(days=n), s) for n, s in enumerate([8412, 11050, 6230])
    ]

    # A refusal arrives as the typed problem, with its stable code.
    missing = await _module("api.records.unlink").asyncio_detailed(
        client=api, link_id="00000000-0000-4000-8000-000000000000"
    )
    assert missing.status_code == 404
    assert isinstance(missing.parsed, models.Problem)
    assert missing.parsed.code == "link-not-found"
    assert missing.parsed.type_ == "/problems/link-not-found"

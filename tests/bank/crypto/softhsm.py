"""A fresh SoftHSM2 token per test, for the PKCS#11 provider: its own token directory and config.

SoftHSM reads SOFTHSM2_CONF and scans its token directory in C_Initialize, so the fixture
re-initialises the (process-wide) module after creating the tokens. Where SoftHSM2 is missing,
`tests.system_deps` decides: skipped (and counted at the end of the run), or failed under CI.
"""

from __future__ import annotations

import contextlib
import secrets
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pkcs11
import pytest
from pydantic import SecretStr

from bank.crypto.pkcs11_provider import Pkcs11KeyProvider
from tests.system_deps import require_softhsm


@dataclass
class SoftHsm:
    module: Path
    conf: Path
    labels: tuple[str, ...]  # initialised tokens; the first is the bank's
    pin: SecretStr
    opened: list[Pkcs11KeyProvider] = field(default_factory=list)

    @property
    def label(self) -> str:
        return self.labels[0]

    def provider(self, label: str | None = None, pin: str | None = None) -> Pkcs11KeyProvider:
        provider = Pkcs11KeyProvider(
            self.module, label or self.label, SecretStr(pin) if pin else self.pin
        )
        self.opened.append(provider)
        return provider

    @contextlib.contextmanager
    def session(self, provider: Pkcs11KeyProvider) -> Iterator[pkcs11.Session]:
        """A session of the test's own on the bank's token, sharing `provider`'s login (so
        closing it logs nobody out): for reading attributes and planting keys of known value."""
        provider.kek_versions()  # logs the provider in
        token = pkcs11.lib(str(self.module)).get_token(token_label=self.label)
        session = token.open(rw=True)
        try:
            yield session
        finally:
            session.close()


@pytest.fixture
def softhsm(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[SoftHsm]:
    util, module = require_softhsm()
    tokens = tmp_path / "softhsm-tokens"
    tokens.mkdir()
    conf = tmp_path / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SOFTHSM2_CONF", str(conf))
    pin = secrets.token_hex(8)
    labels = (f"bank-{uuid.uuid4().hex[:8]}", f"other-{uuid.uuid4().hex[:8]}")
    for label in labels:
        subprocess.run(
            [util, "--init-token", "--free", "--label", label, "--pin", pin,
             "--so-pin", secrets.token_hex(8)],
            check=True, capture_output=True,
        )  # fmt: skip
    pkcs11.lib(str(module)).reinitialize()
    hsm = SoftHsm(module=module, conf=conf, labels=labels, pin=SecretStr(pin))
    yield hsm
    for provider in hsm.opened:
        provider.close()

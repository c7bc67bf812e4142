"""The system packages some tests need (Debian's chromium and softhsm2), decided in one place.

A missing one skips its tests on a developer's machine and fails them under CI (`CI=true`),
which never skips them. Skips are never silent: the run's last lines count them and name the
packages (`make test` installs them first where it may: scripts/test-system-deps.sh).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Generator
from pathlib import Path
from typing import NoReturn

import pytest

SKIP_MARK = "system package missing:"
CHROMIUM = "chromium"
SOFTHSM = "softhsm2"
USES = {CHROMIUM: "browser", SOFTHSM: "HSM (PKCS#11)"}
SOFTHSM_MODULES = (
    "/usr/lib/softhsm/libsofthsm2.so",
    "/usr/lib/x86_64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib/aarch64-linux-gnu/softhsm/libsofthsm2.so",
    "/usr/lib64/pkcs11/libsofthsm2.so",
    "/usr/lib/pkcs11/libsofthsm2.so",
    "/usr/local/lib/softhsm/libsofthsm2.so",
    "/opt/homebrew/lib/softhsm/libsofthsm2.so",
)


def on_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in {"", "0", "false", "no"}


def missing(package: str) -> NoReturn:
    """Skip the calling test, or fail it under CI."""
    message = (
        f"{SKIP_MARK} Debian's {package} is not installed "
        f"(`sudo apt-get install {package}`; `make test` installs it where it may)"
    )
    if on_ci():
        pytest.fail(f"{message}; CI never skips the {USES[package]} tests", pytrace=False)
    pytest.skip(message)


def require_chromium() -> Path:
    """The Chromium binary the browser tests drive (BANK_CHROMIUM, else Debian's)."""
    path = Path(os.environ.get("BANK_CHROMIUM", "/usr/bin/chromium"))
    if not os.access(path, os.X_OK):
        missing(CHROMIUM)
    return path


def require_softhsm() -> tuple[Path, Path]:
    """SoftHSM2's token tool and its PKCS#11 module."""
    util = shutil.which("softhsm2-util")
    module = next((Path(path) for path in SOFTHSM_MODULES if Path(path).is_file()), None)
    if util is None or module is None:
        missing(SOFTHSM)
    return Path(util), module


def _skipped_for(report: pytest.TestReport) -> str | None:
    text = str(report.longrepr)
    if SKIP_MARK not in text:
        return None
    return next((package for package in USES if f"Debian's {package} " in text), None)


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> Generator[None]:
    # Outermost wrapper, so this prints after every other summary, just above the final counts.
    yield
    counts: dict[str, int] = {}
    for report in terminalreporter.stats.get("skipped", []):
        package = _skipped_for(report)
        if package is not None:
            counts[package] = counts.get(package, 0) + 1
    if not counts:
        return
    total = sum(counts.values())
    terminalreporter.write_sep("!", f"{total} browser/HSM tests SKIPPED", red=True, bold=True)
    for package, count in sorted(counts.items()):
        terminalreporter.write_line(
            f"{count} {USES[package]} tests skipped: Debian's {package} is not installed",
            red=True,
        )
    packages = " ".join(sorted(counts))
    terminalreporter.write_line(
        f"this run did NOT test everything: `sudo apt-get install {packages}` and run again",
        red=True,
    )

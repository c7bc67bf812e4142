"""`make test` on a fresh machine: scripts/test-system-deps.sh installs Debian's chromium and
softhsm2 where it may, else stops with one message; skipped browser/HSM tests are never silent."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.system_deps import require_chromium, require_softhsm

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "test-system-deps.sh"
BASH = shutil.which("bash") or "/bin/bash"


def _bare_path(tmp_path: Path) -> str:
    """A PATH with only what the script needs besides bash: no apt-get, no sudo, no SoftHSM2."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("id", "tr"):
        found = shutil.which(tool)
        assert found is not None
        (bin_dir / tool).symlink_to(found)
    return str(bin_dir)


def _run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [BASH, str(SCRIPT)], env=env, capture_output=True, text=True, timeout=600, check=False
    )


def _environment(**changes: str) -> dict[str, str]:
    kept = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CI", "BANK_TEST_SKIP_SYSTEM", "BANK_SYSTEM_DEPS_CHECK_ONLY"}
    }
    return {**kept, **changes}


def test_with_both_packages_present_it_does_nothing() -> None:
    require_chromium()
    require_softhsm()
    done = _run(_environment())
    assert (done.returncode, done.stdout, done.stderr) == (0, "", "")


def test_where_it_cannot_install_it_stops_naming_exactly_what_to_install(tmp_path: Path) -> None:
    # No apt-get and no sudo on PATH: an unprivileged newcomer's machine, as far as the script
    # can tell (the same branch a user without passwordless sudo takes).
    env = {"PATH": _bare_path(tmp_path), "BANK_CHROMIUM": str(tmp_path / "no-chromium")}
    done = _run(env)
    assert done.returncode == 1
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "make test needs Debian's chromium softhsm2: run `sudo apt-get install chromium "
        f"softhsm2` (or point BANK_CHROMIUM, now {tmp_path / 'no-chromium'}, at a Chromium), "
        "or set BANK_TEST_SKIP_SYSTEM=1 to run without the browser and HSM tests"
    ]


def test_check_only_never_installs_and_names_only_what_is_missing(tmp_path: Path) -> None:
    require_softhsm()
    env = _environment(BANK_SYSTEM_DEPS_CHECK_ONLY="1", BANK_CHROMIUM=str(tmp_path / "none"))
    done = _run(env)
    assert done.returncode == 1
    assert "make test needs Debian's chromium: run `sudo apt-get install chromium`" in done.stderr
    assert "softhsm2" not in done.stderr
    assert "installing" not in done.stdout


@pytest.mark.parametrize(("ci", "code"), [("", 0), ("true", 1)])
def test_skipping_the_system_tests_is_allowed_off_ci_only(
    tmp_path: Path, ci: str, code: int
) -> None:
    env = {"PATH": _bare_path(tmp_path), "BANK_TEST_SKIP_SYSTEM": "1", "CI": ci}
    done = _run(env)
    assert done.returncode == code, done.stderr
    assert "softhsm2" in done.stderr
    if ci:
        assert "CI=true never skips the browser and HSM tests" in done.stderr


PROBE = """
from tests.system_deps import require_chromium, require_softhsm

def test_in_a_browser():
    require_chromium()

def test_with_an_hsm():
    require_softhsm()

def test_plain():
    pass
"""


def _pytest_probe(tmp_path: Path, ci: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {
        **_environment(CI=ci, PYTHONPATH=str(ROOT)),
        "PATH": _bare_path(tmp_path),  # no softhsm2-util
        "BANK_CHROMIUM": str(tmp_path / "no-chromium"),
    }
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "tests.system_deps", "-p", "no:cacheprovider",
         "-q", "-rs", str(tmp_path / "test_probe.py")],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False,
    )  # fmt: skip


def test_a_run_that_skipped_browser_or_hsm_tests_says_so_in_its_last_lines(
    tmp_path: Path,
) -> None:
    done = _pytest_probe(tmp_path, ci="")
    assert done.returncode == 0, done.stdout
    last = done.stdout.splitlines()[-5:]
    assert "2 browser/HSM tests SKIPPED" in last[0]
    assert last[1:4] == [
        "1 browser tests skipped: Debian's chromium is not installed",
        "1 HSM (PKCS#11) tests skipped: Debian's softhsm2 is not installed",
        "this run did NOT test everything: `sudo apt-get install chromium softhsm2` and run again",
    ]
    assert "1 passed, 2 skipped" in last[4]


def test_under_ci_a_missing_package_fails_its_tests_instead_of_skipping(tmp_path: Path) -> None:
    done = _pytest_probe(tmp_path, ci="true")
    assert done.returncode == 1
    assert "2 failed, 1 passed" in done.stdout.splitlines()[-1]
    assert "CI never skips the browser tests" in done.stdout
    assert "CI never skips the HSM (PKCS#11) tests" in done.stdout
    assert "SKIPPED" not in done.stdout

"""The README's run command on a machine with no database server: `bank serve --demo`."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _wait_ready(url: str, process: subprocess.Popen[bytes], timeout_s: float) -> httpx.Response:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"bank serve exited early with {process.returncode}")
        try:
            response = httpx.get(url, timeout=2)
            if response.status_code == 200:
                return response
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    pytest.fail("bank serve did not become ready in time")


def test_serve_demo_starts_embedded_postgres_and_stops_it(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("BANK_")}
    env["BANK_DATA_DIR"] = str(tmp_path / "data")
    env["BANK_DEMO_RESIDENTS"], env["BANK_DEMO_DAYS"] = "4", "7"  # a small city, quickly
    output = tmp_path / "stdout.txt"
    with output.open("wb") as stdout:
        process = subprocess.Popen(
            [sys.executable, "-m", "bank.cli", "serve", "--demo", "--port", str(port)],
            env=env,
            stdout=stdout,
            stderr=subprocess.DEVNULL,
        )
    try:
        ready = _wait_ready(f"http://127.0.0.1:{port}/health/ready", process, timeout_s=90)
        assert ready.json() == {"status": "ok", "database": "ok", "migrations": "head"}
        docs = httpx.get(f"http://127.0.0.1:{port}/docs", timeout=5)
        assert docs.status_code == 200
        assert "swagger-ui-bundle.js" in docs.text
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=60)
    assert exit_code == 0
    printed = output.read_text()
    assert "seeded 4 residents; demo sign-ins:" in printed
    assert printed.count("@demo.city-bank.example") == 4  # the first five would get passwords
    assert "demo residents' app: client_id resident-app-" in printed
    # The embedded server was stopped cleanly: PostgreSQL removes its pid file on shutdown.
    assert not (tmp_path / "data" / "postgres" / "postmaster.pid").exists()

"""Start-up work that must finish before the app serves anyone: requests wait for it.

The erasure journal's reapply (bank.vault.reapply) runs when the process starts, in the
background so that /health/ready can say why the process is not ready yet. A restored backup
must never serve an erased resident, even for a moment, so every other request waits at this
gate until the work is done, and answers 503 `service-unavailable` (with Retry-After) if it is
still not done after `WAIT_S`. Health probes and metrics pass the gate.
"""

from __future__ import annotations

import asyncio

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Receive, Scope, Send

from bank.errors import ServiceUnavailable

WAIT_S = 10.0
_PASS = ("/health/", "/metrics")

PENDING = "reapplying"
RETRYING = "retrying"  # the last attempt failed (database or key provider down); trying again
DONE = "reapplied"


class StartupGate:
    """Open once the start-up work is done; `status` is what /health/ready reports meanwhile."""

    def __init__(self) -> None:
        self.status = PENDING
        self._open = asyncio.Event()

    @property
    def is_open(self) -> bool:
        return self._open.is_set()

    def open(self) -> None:
        self.status = DONE
        self._open.set()

    async def wait(self, timeout_s: float) -> bool:
        """True once the gate is open; False if it is still closed after `timeout_s`."""
        if self._open.is_set():
            return True
        try:
            async with asyncio.timeout(timeout_s):
                await self._open.wait()
        except TimeoutError:
            return False
        return True


def startup_gate_middleware(app: ASGIApp) -> ASGIApp:
    """Hold requests (other than probes) until `app.state.startup_gate` is open."""

    async def middleware(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == ScopeType.HTTP and not scope["path"].startswith(_PASS):
            gate: StartupGate | None = scope["litestar_app"].state.get("startup_gate")
            if gate is not None and not await gate.wait(WAIT_S):
                raise ServiceUnavailable("The service is starting; retry shortly.")
        await app(scope, receive, send)

    return middleware

"""Identity's jobs: delivering a queued mail (`identity:send_mail`, one job per mail, enqueued in
the transaction that queued it: bank.identity.outbox).

A delivery that fails (the server refuses or does not answer) raises, and the worker runs the
job again later (`MAIL_RETRY`: 10 runs over about half an hour); after the last one the job stays
`failed` (`bank jobs list --status failed`, `bank jobs retry ID`) and the mail unsent.
"""

from __future__ import annotations

import uuid
from typing import Any, Protocol

from procrastinate import Blueprint, JobContext, RetryStrategy
from pydantic_settings import BaseSettings

from bank.crypto.keystore import KeyStore
from bank.db import Database
from bank.settings import Settings

MAIL_QUEUE = "mail"
# 2 s after the first failure, doubling: the tenth run comes about 34 minutes after the first.
MAIL_RETRY = RetryStrategy(max_attempts=10, exponential_wait=2)

identity_tasks = Blueprint()


class MailResources(Protocol):
    """What the mail job reads of its worker's resources (bank.vault.resources.WorkerResources,
    which identity may not import)."""

    @property
    def settings(self) -> Settings: ...
    @property
    def database(self) -> Database: ...
    @property
    def keystore(self) -> KeyStore: ...
    def section(self, package: str) -> BaseSettings: ...


def _resources(context: JobContext) -> MailResources:
    resources: Any = context.additional_context.get("resources")
    if resources is None:
        raise RuntimeError("This job needs a worker started by `bank worker` or the app.")
    return resources  # type: ignore[no-any-return]


@identity_tasks.task(name="send_mail", queue=MAIL_QUEUE, pass_context=True, retry=MAIL_RETRY)
async def send_mail_job(context: JobContext, mail_id: str) -> None:
    # The sender opens mail through the outbox, whose enqueue_mail enqueues this task.
    from bank.identity.mailer import deliver_queued

    resources = _resources(context)
    await deliver_queued(
        resources.settings, resources.section("identity"), resources.database,
        resources.keystore, uuid.UUID(mail_id),
    )  # fmt: skip

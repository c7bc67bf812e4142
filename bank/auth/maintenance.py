"""Nightly clean-up of what the authorization server keeps only until it expires.

Each row below is kept exactly as long as it can matter: a client assertion's `jti` until the
assertion expires, a revoked access token until it would have expired, a code or one-time code
a day past expiry (so a late replay is still recognised and logged), a token family (with its
codes and refresh tokens) a day past its end, sent mail a week.
"""

from __future__ import annotations

from procrastinate import Blueprint, JobContext

PURGE_STATEMENTS = (
    "DELETE FROM used_client_assertions WHERE expires_at < now()",
    "DELETE FROM revoked_access_tokens WHERE expires_at < now()",
    "DELETE FROM authorization_codes WHERE expires_at < now() - interval '1 day'",
    "DELETE FROM refresh_tokens WHERE expires_at < now() - interval '1 day'",
    "DELETE FROM token_families WHERE expires_at < now() - interval '1 day'",
    "DELETE FROM one_time_codes WHERE expires_at < now() - interval '1 day'",
    "DELETE FROM browser_sessions WHERE expires_at < now() - interval '1 day'",
    "DELETE FROM sign_in_throttles WHERE window_started_at < now() - interval '1 day'"
    " AND (locked_until IS NULL OR locked_until < now())",
    "DELETE FROM email_outbox WHERE sent_at < now() - interval '7 days'",
)

auth_tasks = Blueprint()


@auth_tasks.periodic(cron="37 3 * * *", periodic_id="purge-expired-auth-rows")
@auth_tasks.task(name="purge_expired", queue="maintenance", pass_context=True)
async def purge_expired(context: JobContext, timestamp: int) -> None:
    del timestamp  # the periodic scheduler's; expiry times decide what goes
    for statement in PURGE_STATEMENTS:
        await context.app.connector.execute_query_async(statement)

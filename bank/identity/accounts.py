"""Resident and operator accounts: sign-up, verification, sign-in, password change and reset.

Rules that keep account existence secret: sign-up and reset requests answer the same whether
or not the address is registered (the mail differs, the response does not); sign-in failures
all get one message and take one argon2 verification's time. One-time codes are six digits,
peppered hashes, valid 15 minutes for at most 5 attempts, and a new code replaces older ones.
Rounds of "ask for a code, guess five times" are capped: at most 5 codes per account and purpose
in any 24 hours (so at most 25 guesses a day at one account's 10^6 codes), and one client address
may ask for or mistype codes 30 times in 15 minutes (then it waits 15 minutes).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from bank.auth.models import TokenFamily

# Every hash and verification runs in the bounded thread pool of `bank.auth.passwords`.
from bank.auth.passwords import (
    check_new_password,
    dummy_verify_async,
    hash_password_async,
    needs_rehash,
    verify_password_async,
)
from bank.crypto.keystore import ResidentGone
from bank.errors import DomainError, ProblemType
from bank.identity.browser import end_other_sessions
from bank.identity.models import Account, OneTimeCode
from bank.identity.outbox import enqueue_mail
from bank.identity.protect import (
    AccountSecrets,
    AddressDoesNotOpen,
    new_numeric_code,
    normalise_email,
)
from bank.identity.throttle import Throttles, must_lock_account
from bank.identity.totp import verify_totp
from bank.logs import get_logger

log = get_logger("bank.identity")

CODE_LIFETIME = timedelta(minutes=15)
CODE_ATTEMPTS = 5
# A rolling window, not a lock: an attacker who spends an account's codes denies its owner a
# reset for at most a day after stopping. (The nightly purge keeps a code's row for a day after
# it expires, so the window's codes are all still there to count.)
CODES_PER_WINDOW = 5
CODE_WINDOW = timedelta(hours=24)
VERIFY_EMAIL = "verify_email"
RESET_PASSWORD = "reset_password"
LANGUAGES = ("ja", "en")


class SignInFailed(DomainError):
    problem = ProblemType(
        code="sign-in-failed",
        status=401,
        title="Sign-in failed",
        description=(
            "The email address or password is wrong, or sign-in is paused for this account "
            "or network after repeated failures. Try again later or reset the password."
        ),
        title_ja="サインインできませんでした",
        description_ja=(
            "メールアドレスまたはパスワードが正しくないか、失敗が続いたためこのアカウントまたは"
            "ネットワークからのサインインを一時停止しています。時間をおくか、パスワードを"
            "再設定してください。"
        ),
    )


class EmailNotVerified(DomainError):
    problem = ProblemType(
        code="email-not-verified",
        status=403,
        title="Email address not verified",
        description="Enter the code we mailed to the address before signing in.",
        title_ja="メールアドレスの確認が済んでいません",
        description_ja="サインインの前に、そのアドレスに送った確認コードを入力してください。",
    )


class InvalidCode(DomainError):
    problem = ProblemType(
        code="invalid-code",
        status=400,
        title="Invalid or expired code",
        description="The code is wrong, used, expired or tried too often; ask for a new one.",
        title_ja="コードが無効か期限切れです",
        description_ja="コードが違うか、使用済みか、期限切れか、試行回数を超えました。"
        "新しいコードを依頼してください。",
    )


class AccountExists(DomainError):
    problem = ProblemType(
        code="account-exists",
        status=409,
        title="Account exists",
        description="An account with that email address exists.",
        title_ja="アカウントがあります",
        description_ja="そのメールアドレスのアカウントがすでにあります。",
    )


@dataclass(frozen=True)
class Clock:
    """Injected time, so tests can age codes and throttles without sleeping."""

    offset: timedelta = timedelta()

    def now(self) -> datetime:
        return datetime.now(UTC) + self.offset


# Not an argon2 hash: verify_password never accepts anything against it.
NO_PASSWORD = "!"


async def create_account(
    session: AsyncSession,
    secrets: AccountSecrets,
    *,
    kind: str,
    email: str,
    password: str | None,
    language: str = "ja",
    roles: tuple[str, ...] = (),
    totp_secret_sealed: bytes | None = None,
    verified_at: datetime | None = None,
    account_id: uuid.UUID | None = None,
) -> Account:
    """Insert an account; AccountExists if the address is taken (callers decide what to reveal).

    `password=None` makes an account that cannot sign in with a password until it is reset by
    email (demo residents beyond the few the seed prints: hashing costs ~0.1 s each).
    """
    normalised = normalise_email(email)
    if password is not None:
        check_new_password(password, email=normalised)
    index = secrets.email_index(normalised)
    if await session.scalar(select(Account.id).where(Account.email_index == index)):
        raise AccountExists("An account with that email address exists.")
    account_id = account_id or uuid.uuid4()
    # A resident's first data key is made here, with the address it seals.
    sealed = await secrets.seal_email(session, account_id, kind, normalised, has_key=False)
    account = Account(
        id=account_id,
        kind=kind,
        email_index=index,
        email_sealed=sealed.sealed,
        email_sealed_under=sealed.under.value,
        password_hash=await hash_password_async(password) if password is not None else NO_PASSWORD,
        email_verified_at=verified_at,
        totp_secret_sealed=totp_secret_sealed,
        roles=list(roles),
        status="active",
        language=language if language in LANGUAGES else "ja",
    )
    session.add(account)
    await session.flush()
    log.info("identity.account_created", account_id=str(account_id), kind=kind)
    return account


class Accounts:
    def __init__(
        self,
        session: AsyncSession,
        secrets: AccountSecrets,
        throttles: Throttles,
        clock: Clock | None = None,
    ) -> None:
        self._session = session
        self._secrets = secrets
        self._throttles = throttles
        self._clock = clock or Clock()

    async def find(self, email: str) -> Account | None:
        index = self._secrets.email_index(normalise_email(email))
        account: Account | None = await self._session.scalar(
            select(Account).where(Account.email_index == index)
        )
        return account

    async def get(self, account_id: uuid.UUID) -> Account | None:
        return await self._session.get(Account, account_id)

    # -- sign-up and verification ------------------------------------------------------------

    async def sign_up(self, email: str, password: str, language: str) -> None:
        """Register a resident and mail a verification code; an existing address gets a notice."""
        normalised = normalise_email(email)
        check_new_password(password, email=normalised)  # policy errors reveal nothing
        existing = await self.find(normalised)
        if existing is not None:
            await dummy_verify_async(password)  # same cost as creating an account
            await self._mail(existing, "account_exists", {})
            return
        account = await create_account(
            self._session, self._secrets, kind="resident", email=normalised,
            password=password, language=language,
        )  # fmt: skip
        await self.send_code(account, VERIFY_EMAIL)

    async def resend_verification(self, email: str) -> None:
        account = await self.find(email)
        if account is not None and account.email_verified_at is None:
            await self.send_code(account, VERIFY_EMAIL)

    async def verify_email(self, email: str, code: str, client_address: str) -> Account:
        account = await self.find(email)
        await self._redeem_code(account, VERIFY_EMAIL, code, client_address)
        assert account is not None  # _redeem_code refused a missing account
        if account.email_verified_at is None:
            account.email_verified_at = self._clock.now()
        log.info("identity.email_verified", account_id=str(account.id))
        return account

    # -- sign-in -----------------------------------------------------------------------------

    async def authenticate(self, email: str, password: str, client_address: str) -> Account:
        """The account for these credentials, or SignInFailed (one answer for every cause)."""
        now = self._clock.now()
        try:
            normalised = normalise_email(email)
        except DomainError:
            await dummy_verify_async(password)
            raise SignInFailed("The email address or password is wrong.") from None
        account_key = f"account:{self._secrets.email_index(normalised)}"
        address_key = f"address:{self._secrets.address_index(client_address)}"
        if await self._throttles.blocked([account_key, address_key], now):
            await dummy_verify_async(password)
            log.info("identity.sign_in_throttled")
            raise SignInFailed("The email address or password is wrong.")
        account = await self.find(normalised)
        usable = account is not None and account.status == "active"
        if account is None:
            await dummy_verify_async(password)
            valid = False
        else:
            valid = await verify_password_async(account.password_hash, password) and usable
        if not valid:
            state = await self._throttles.record_failure(
                account_key=account_key, address_key=address_key, now=now
            )
            if account is not None and must_lock_account(state) and account.status == "active":
                await self._lock(account.id)
            log.info(
                "identity.sign_in_failed",
                account_id=str(account.id) if account else None,
                failures=state.failures,
            )
            raise SignInFailed("The email address or password is wrong.")
        assert account is not None
        if account.email_verified_at is None:
            raise EmailNotVerified("Enter the code we mailed to you first.")
        if needs_rehash(account.password_hash):
            account.password_hash = await hash_password_async(password)
        await self._throttles.clear(self._session, account_key)
        log.info("identity.signed_in", account_id=str(account.id), kind=account.kind)
        return account

    async def second_factor(self, account: Account, code: str, client_address: str) -> bool:
        """Check an operator's TOTP code, throttled like passwords (a 6-digit code falls to
        guessing otherwise); the accepted step is stored on the account."""
        now = self._clock.now()
        account_key = f"totp:{account.id}"
        address_key = f"address:{self._secrets.address_index(client_address)}"
        if not await self._throttles.blocked([account_key, address_key], now) and verify_totp(
            account, code, self._secrets, now=now
        ):
            await self._throttles.clear(self._session, account_key)
            log.info("identity.second_factor_passed", account_id=str(account.id))
            return True
        state = await self._throttles.record_failure(
            account_key=account_key, address_key=address_key, now=now
        )
        if must_lock_account(state):
            await self._lock(account.id)
        log.info("identity.second_factor_failed", account_id=str(account.id))
        return False

    async def _lock(self, account_id: uuid.UUID) -> None:
        # Its own transaction: the failed request rolls back, the lock must stay.
        async with self._throttles.database.side_commit() as session:
            await session.execute(
                update(Account).where(Account.id == account_id).values(status="locked")
            )
        log.warning("identity.account_locked", account_id=str(account_id))

    # -- passwords ---------------------------------------------------------------------------

    async def confirm_password(self, account: Account, password: str, client_address: str) -> None:
        """Check a signed-in account's password again before a grave action (a new password,
        erasing everything). Throttled and locking like sign-in, so a stolen access token is no
        free password oracle. SignInFailed when wrong or while blocked."""
        now = self._clock.now()
        account_key = f"confirm:{account.id}"
        address_key = f"address:{self._secrets.address_index(client_address)}"
        if not await self._throttles.blocked(
            [account_key, address_key], now
        ) and await verify_password_async(account.password_hash, password):
            await self._throttles.clear(self._session, account_key)
            return
        state = await self._throttles.record_failure(
            account_key=account_key, address_key=address_key, now=now
        )
        if must_lock_account(state):
            await self._lock(account.id)
        log.info("identity.password_confirmation_failed", account_id=str(account.id))
        raise SignInFailed("The password is wrong.")

    async def change_password(
        self,
        account: Account,
        current: str,
        new: str,
        *,
        client_address: str,
        keep_session: str | None = None,
        keep_browser: str | None = None,
    ) -> None:
        """`keep_session`: the app session (token family) asking, `keep_browser`: the signed-in
        browser asking (its session hash); every other session and browser ends."""
        await self.confirm_password(account, current, client_address)
        await self._set_password(account, new, keep_session=keep_session, keep_browser=keep_browser)
        log.info("identity.password_changed", account_id=str(account.id))

    async def request_password_reset(self, email: str, client_address: str) -> None:
        """Mail a reset code, unless the address asked too often (the answer is the same)."""
        account = await self.find(email)
        now = self._clock.now()
        address_key = self._code_address_key(client_address)
        if await self._throttles.blocked([address_key], now):
            log.info("identity.reset_request_throttled")
            return
        await self._throttles.record(address_key, now)
        if account is not None and account.status != "erased":
            await self.send_code(account, RESET_PASSWORD)

    async def reset_password(
        self, email: str, code: str, new: str, *, client_address: str
    ) -> Account:
        """Set a new password by code; unlocks a locked account and clears its throttle."""
        normalised = normalise_email(email)
        check_new_password(new, email=normalised)
        account = await self.find(normalised)
        await self._redeem_code(account, RESET_PASSWORD, code, client_address)
        assert account is not None
        # The address the code was mailed to, as typed: nothing to open.
        await self._set_password(account, new, email=normalised)
        if account.status == "locked":
            account.status = "active"
        # Receiving the code proves control of the mailbox.
        account.email_verified_at = account.email_verified_at or self._clock.now()
        await self._throttles.clear(
            self._session, f"account:{self._secrets.email_index(normalised)}"
        )
        log.info("identity.password_reset", account_id=str(account.id))
        return account

    async def _set_password(
        self,
        account: Account,
        new: str,
        *,
        email: str | None = None,
        keep_session: str | None = None,
        keep_browser: str | None = None,
    ) -> None:
        """`email`: the account's normalised address if the caller has it (else it is opened:
        ResidentGone if it does not open, which only an erased resident's does)."""
        if email is None:
            try:
                email = await self._secrets.open_email(self._session, account)
            except AddressDoesNotOpen:
                raise ResidentGone("The account's address does not open.") from None
        check_new_password(new, email=email)
        account.password_hash = await hash_password_async(new)
        account.password_changed_at = self._clock.now()
        # Every other session signed in with the old password ends: apps' and browsers'.
        await revoke_families(
            self._session, account.id, reason="password_changed", keep=keep_session
        )
        await end_other_sessions(self._session, account.id, keep_hash=keep_browser)

    # -- one-time codes ----------------------------------------------------------------------

    async def send_code(self, account: Account, purpose: str) -> None:
        """Mail a new code that replaces the older ones, unless the account had its
        CODES_PER_WINDOW codes for `purpose` already: then nothing changes (the live code stays
        live, and the caller's answer is the same)."""
        now = self._clock.now()
        # Concurrent requests for one account count one after the other.
        await self._session.execute(
            select(Account.id).where(Account.id == account.id).with_for_update()
        )
        sent = await self._session.scalar(
            select(func.count())
            .select_from(OneTimeCode)
            .where(
                OneTimeCode.account_id == account.id,
                OneTimeCode.purpose == purpose,
                # expires_at is the injected clock's creation time plus CODE_LIFETIME.
                OneTimeCode.expires_at > now - CODE_WINDOW + CODE_LIFETIME,
            )
        )
        if (sent or 0) >= CODES_PER_WINDOW:
            log.info("identity.code_cap_reached", account_id=str(account.id), purpose=purpose)
            return
        await self._session.execute(
            update(OneTimeCode)
            .where(
                OneTimeCode.account_id == account.id,
                OneTimeCode.purpose == purpose,
                OneTimeCode.used_at.is_(None),
            )
            .values(used_at=now)  # a new code replaces the old ones
        )
        code = new_numeric_code()
        self._session.add(
            OneTimeCode(
                account_id=account.id,
                purpose=purpose,
                code_hash=self._secrets.code_hash(account.id, purpose, code),
                expires_at=now + CODE_LIFETIME,
            )
        )
        await self._mail(account, purpose, {"code": code})

    def _code_address_key(self, client_address: str) -> str:
        return f"code:{self._secrets.address_index(client_address)}"

    async def _redeem_code(
        self, account: Account | None, purpose: str, code: str, client_address: str
    ) -> None:
        now = self._clock.now()
        address_key = self._code_address_key(client_address)
        if await self._throttles.blocked([address_key], now):
            # Refused unchecked: a blocked address's guesses spend none of the code's attempts.
            log.info("identity.code_throttled", purpose=purpose)
            raise InvalidCode("The code is wrong or expired.")
        try:
            await self._check_code(account, purpose, code, now)
        except InvalidCode:
            await self._throttles.record(address_key, now)
            raise

    async def _check_code(
        self, account: Account | None, purpose: str, code: str, now: datetime
    ) -> None:
        row = None
        if account is not None:
            row = await self._session.scalar(
                select(OneTimeCode)
                .where(
                    OneTimeCode.account_id == account.id,
                    OneTimeCode.purpose == purpose,
                    OneTimeCode.used_at.is_(None),
                    OneTimeCode.expires_at > now,
                )
                .order_by(OneTimeCode.created_at.desc())
                .limit(1)
            )
        if row is None or row.attempts >= CODE_ATTEMPTS:
            raise InvalidCode("The code is wrong or expired.")
        if row.code_hash != self._secrets.code_hash(row.account_id, purpose, code.strip()):
            await self._count_attempt(row.id)
            raise InvalidCode("The code is wrong or expired.")
        # Claimed with a conditional update: of two concurrent redemptions only one succeeds.
        claimed = await self._session.scalar(
            update(OneTimeCode)
            .where(OneTimeCode.id == row.id, OneTimeCode.used_at.is_(None))
            .values(used_at=now)
            .returning(OneTimeCode.id)
        )
        if claimed is None:
            raise InvalidCode("The code is wrong or expired.")

    async def _count_attempt(self, code_id: uuid.UUID) -> None:
        # Counted in its own transaction: the failing request rolls back.
        async with self._throttles.database.side_commit() as session:
            await session.execute(
                update(OneTimeCode)
                .where(OneTimeCode.id == code_id)
                .values(attempts=OneTimeCode.attempts + 1)
            )

    async def _mail(self, account: Account, template: str, payload: dict[str, str]) -> None:
        """Queue a mail to the account's address. An address that does not open (its resident's
        key is gone: an erased resident a restored copy still holds) gets none, and the caller's
        answer stays the same: it must not tell whether the address is registered."""
        try:
            recipient = await self._secrets.open_email(self._session, account)
            await enqueue_mail(
                self._session, self._secrets, account=account, template=template,
                recipient=recipient, payload=payload,
            )  # fmt: skip
        except (AddressDoesNotOpen, ResidentGone) as exc:
            log.warning(
                "identity.mail_not_queued",
                account_id=str(account.id),
                template=template,
                reason=type(exc).__name__,
            )


async def revoke_families(
    session: AsyncSession,
    account_id: uuid.UUID,
    *,
    reason: str,
    family_id: str | None = None,
    keep: str | None = None,
) -> None:
    """End a resident's app sessions (all, or one): refresh tokens at once, access tokens at
    their next use."""
    statement = (
        update(TokenFamily)
        .where(TokenFamily.account_id == account_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC), revoked_reason=reason)
    )
    if family_id is not None:
        statement = statement.where(TokenFamily.id == family_id)
    if keep is not None:
        statement = statement.where(TokenFamily.id != keep)
    await session.execute(statement)

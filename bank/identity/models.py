"""Account tables. Email addresses are personal data: stored sealed, found by a blind index.

A resident's address (and their mail in the outbox) is sealed under the resident's data key, an
operator's under the master keyring; `email_sealed_under` and `sealed_under` say which
(bank.identity.protect). Both default to `keyring` in the database: what every row written
before they existed holds, and what a process of the previous release still writes during an
upgrade."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from bank.db.base import Base


class Account(Base):
    """A resident or an operator. Operators also have a TOTP secret and roles."""

    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("kind IN ('resident', 'operator')", name="kind"),
        CheckConstraint("status IN ('active', 'locked', 'erased')", name="status"),
        CheckConstraint(
            "kind = 'resident' OR totp_secret_sealed IS NOT NULL", name="operator_totp"
        ),
        CheckConstraint("email_sealed_under IN ('keyring', 'data-key')", name="email_sealed_under"),
        # Operators have no data key: their addresses stay under the master keyring.
        CheckConstraint(
            "kind = 'resident' OR email_sealed_under = 'keyring'", name="operator_email_keyring"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text)
    # HMAC-SHA256 of the normalised address under its own key: lookups without plaintext.
    email_index: Mapped[str] = mapped_column(Text, unique=True)
    email_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # Which key sealed email_sealed: 'data-key' (the resident's) or 'keyring' (the master key).
    email_sealed_under: Mapped[str] = mapped_column(Text, server_default="keyring")
    password_hash: Mapped[str] = mapped_column(Text)
    email_verified_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_secret_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    # The last TOTP time step accepted: a code is never accepted twice (RFC 6238 §5.2).
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)
    language: Mapped[str] = mapped_column(Text, server_default="ja")  # for the mail we send
    roles: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    status: Mapped[str] = mapped_column(Text, default="active")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    password_changed_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class OneTimeCode(Base):
    """Email verification and password reset codes, stored as hashes, few attempts, short life."""

    __tablename__ = "one_time_codes"
    __table_args__ = (
        CheckConstraint("purpose IN ('verify_email', 'reset_password')", name="purpose"),
        Index("ix_one_time_codes_account_purpose", "account_id", "purpose"),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    purpose: Mapped[str] = mapped_column(Text)
    code_hash: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class OutboxEmail(Base):
    """Mail waiting for the sender worker; recipient and body are sealed (they hold codes)."""

    __tablename__ = "email_outbox"
    __table_args__ = (
        CheckConstraint("sealed_under IN ('keyring', 'data-key')", name="sealed_under"),
        CheckConstraint(
            "sealed_under = 'keyring' OR account_id IS NOT NULL", name="data_key_has_account"
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    # Erasing the account deletes its unsent mail (the address and codes are personal data).
    account_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    template: Mapped[str] = mapped_column(Text)
    language: Mapped[str] = mapped_column(Text)
    recipient_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    payload_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # Which key sealed recipient and payload: 'data-key' (the account's resident's) or 'keyring'.
    sealed_under: Mapped[str] = mapped_column(Text, server_default="keyring")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), index=True)


class BrowserSession(Base):
    """A signed-in browser (the sign-in pages' cookie); the cookie holds the id, we its hash."""

    __tablename__ = "browser_sessions"

    id_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    second_factor_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SignInThrottle(Base):
    """Failed sign-ins per account and per client address, shared by every worker process."""

    __tablename__ = "sign_in_throttles"

    key: Mapped[str] = mapped_column(Text, primary_key=True)  # "account:<index>" / "address:<hash>"
    failures: Mapped[int] = mapped_column(Integer, default=0)
    window_started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

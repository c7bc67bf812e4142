"""Tables of the authorization server. Secrets are stored only as hashes or sealed values."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    DateTime,
    ForeignKey,
    LargeBinary,
    PrimaryKeyConstraint,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from bank.db.base import Base


class ClientKind(StrEnum):
    RESIDENT_APP = "resident_app"  # the residents' mobile app: public client, PKCE
    PARTNER = "partner"  # a company receiving data: private_key_jwt
    SOURCE = "source"  # transit operator, clinic, insurer: private_key_jwt
    OPERATOR_CONSOLE = "operator_console"  # bank staff's console: public client, PKCE + TOTP


class ClientStatus(StrEnum):
    PENDING = "pending"
    ACTIVE = "active"
    SUSPENDED = "suspended"


class OAuthClient(Base):
    __tablename__ = "oauth_clients"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('resident_app', 'partner', 'source', 'operator_console')", name="kind"
        ),
        CheckConstraint("status IN ('pending', 'active', 'suspended')", name="status"),
        # Confidential clients authenticate with their registered keys, never a shared secret.
        CheckConstraint(
            "kind NOT IN ('partner', 'source') OR jwks IS NOT NULL OR jwks_uri IS NOT NULL",
            name="confidential_has_keys",
        ),
        CheckConstraint(
            "corporate_number IS NULL OR corporate_number ~ '^[0-9]{13}$'",
            name="corporate_number",
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    client_id: Mapped[str] = mapped_column(Text, unique=True)
    kind: Mapped[str] = mapped_column(Text)
    name: Mapped[str] = mapped_column(Text)
    corporate_number: Mapped[str | None] = mapped_column(Text)  # 法人番号, 13 digits
    contact_email: Mapped[str | None] = mapped_column(Text)  # the company's desk, not a person
    certifications: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    redirect_uris: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    jwks: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    jwks_uri: Mapped[str | None] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list)
    # A data source's feeds: the transit operators (slugs) or insurers (保険者番号) whose records
    # it may push. Empty for other kinds.
    feeds: Mapped[list[str]] = mapped_column(ARRAY(Text), default=list, server_default="{}")
    status: Mapped[str] = mapped_column(Text, default=ClientStatus.PENDING.value)
    # Tokens issued before this instant are refused (set when the client is suspended).
    tokens_not_before: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), onupdate=func.now()
    )


class SigningKey(Base):
    """A token-signing key pair; the private half is sealed by the bank's keyring."""

    __tablename__ = "signing_keys"

    kid: Mapped[str] = mapped_column(Text, primary_key=True)
    alg: Mapped[str] = mapped_column(Text)
    public_jwk: Mapped[dict[str, Any]] = mapped_column(JSONB)
    private_jwk_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # When a newer key took over signing; still published until its last token expired.
    retired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UsedAssertion(Base):
    """`jti`s of client assertions already presented, kept until the assertion expires."""

    __tablename__ = "used_client_assertions"
    __table_args__ = (PrimaryKeyConstraint("client_id", "jti"),)

    client_id: Mapped[str] = mapped_column(Text)
    jti: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class RevokedAccessToken(Base):
    """Access tokens revoked before their expiry (RFC 7009); kept until they would expire."""

    __tablename__ = "revoked_access_tokens"

    jti: Mapped[str] = mapped_column(Text, primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)


class TokenFamily(Base):
    """Tokens descending from one authorization code: a resident's session in one app.

    Revoking the family (sign-out, refresh-token reuse, code replay) ends its refresh tokens at
    once and its access tokens at their next use (they carry the family id as `sid`).
    """

    __tablename__ = "token_families"

    id: Mapped[str] = mapped_column(Text, primary_key=True)
    account_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), index=True
    )
    client_id: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class AuthorizationCode(Base):
    __tablename__ = "authorization_codes"

    code_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    family_id: Mapped[str] = mapped_column(ForeignKey("token_families.id", ondelete="CASCADE"))
    client_id: Mapped[str] = mapped_column(Text)
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("accounts.id", ondelete="CASCADE"))
    redirect_uri: Mapped[str] = mapped_column(Text)
    scope: Mapped[str] = mapped_column(Text)
    code_challenge: Mapped[str] = mapped_column(Text)
    code_challenge_method: Mapped[str] = mapped_column(Text)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RefreshToken(Base):
    """Opaque refresh tokens, stored as SHA-256 hashes; each is used once (rotation)."""

    __tablename__ = "refresh_tokens"

    token_hash: Mapped[str] = mapped_column(Text, primary_key=True)
    family_id: Mapped[str] = mapped_column(
        ForeignKey("token_families.id", ondelete="CASCADE"), index=True
    )
    scope: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

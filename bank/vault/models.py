"""Record tables. Only what queries need is in clear (resident, kind, date, natural key); the
rest of every record is one sealed payload (bank.vault.sealing).

Every table leads with `resident_id` so the schema can be distributed by resident (Citus).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    Text,
    func,
)
from sqlalchemy.orm import Mapped, mapped_column

from bank.db.base import Base


class StepDay(Base):
    """A resident's steps for one local date from one source platform (the natural key)."""

    __tablename__ = "step_days"

    resident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)  # healthkit | health_connect | …
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class StepDayRevision(Base):
    """Values a later push replaced, kept so points can be corrected (and audited)."""

    __tablename__ = "step_day_revisions"

    resident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    day: Mapped[date] = mapped_column(Date, primary_key=True)
    source: Mapped[str] = mapped_column(Text, primary_key=True)
    revision: Mapped[int] = mapped_column(Integer, primary_key=True)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    replaced_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


class ErasureReceipt(Base):
    """What remains of an erased resident: when, and how much was destroyed (no personal data;
    the id is the bank's own pseudonymous account id, kept to answer "was I erased?")."""

    __tablename__ = "erasure_receipts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    resident_id: Mapped[uuid.UUID] = mapped_column(index=True)
    erased_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    records_deleted: Mapped[int] = mapped_column(Integer)
    keys_destroyed: Mapped[int] = mapped_column(Integer)


class Record(Base):
    """A sealed record pushed by a data source: a transit tap or a health checkup.

    `natural_key` is the source's own key (operator/tap id, institution/exam id): a second push
    of it is the same record (unchanged or replaced), never a new one. `day` is the only clear
    attribute: the local date of the tap or the exam, for range queries.
    """

    __tablename__ = "records"
    __table_args__ = (
        CheckConstraint("kind IN ('transit_tap', 'checkup')", name="kind"),
        Index("ix_records_resident_kind_day", "resident_id", "kind", "day"),
    )

    resident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(Text, primary_key=True)
    natural_key: Mapped[str] = mapped_column(Text, primary_key=True)
    day: Mapped[date] = mapped_column(Date)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # Which source client pushed it (its client_id): sources see only their own pushes.
    source_client: Mapped[str] = mapped_column(Text)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Link(Base):
    """A resident's transit card or insurer membership, findable only through its blind index.

    The number itself is never stored in clear: `blind_index` (HMAC under the KeyProvider's
    blind-index key) lets an incoming tap or checkup find its resident; `sealed` holds the
    masked number the resident sees. One card or membership belongs to one resident at a time.
    """

    __tablename__ = "links"
    __table_args__ = (
        CheckConstraint("kind IN ('transit_card', 'insurer_member')", name="kind"),
        Index("uq_links_kind_blind_index", "kind", "blind_index", unique=True),
    )

    resident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    kind: Mapped[str] = mapped_column(Text)
    blind_index: Mapped[bytes] = mapped_column(LargeBinary)
    sealed: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Export(Base):
    """A resident's data export (portability): built by a job, sealed, downloadable for a day."""

    __tablename__ = "exports"
    __table_args__ = (CheckConstraint("status IN ('pending', 'ready')", name="status"),)

    resident_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("accounts.id", ondelete="CASCADE"), primary_key=True
    )
    id: Mapped[uuid.UUID] = mapped_column(primary_key=True, default=uuid.uuid4)
    status: Mapped[str] = mapped_column(Text, default="pending")
    sealed_zip: Mapped[bytes | None] = mapped_column(LargeBinary)
    size_bytes: Mapped[int | None] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )
    ready_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), index=True)

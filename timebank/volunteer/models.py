"""The volunteer package's tables, one SQLModel class each, exactly as migration 0003
makes them (types, nullability, keys, indexes and server defaults; CHECK constraints
and the guard triggers live only in the migration, where the database enforces them).

Only this package reads or writes these tables, through ``timebank.volunteer.queries``.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    LargeBinary,
    Text,
    UniqueConstraint,
    Uuid,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def _id_column() -> Column[uuid.UUID]:
    return Column(Uuid, primary_key=True, server_default=sql("gen_random_uuid()"))


def _now_column() -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=False, server_default=sql("now()"))


def _required(type_: Any) -> Column[Any]:
    return Column(type_, nullable=False)


class ServiceRecord(SQLModel, table=True):
    """One recorded service (志愿服务记录): submitted → approved | rejected, approved → reversed."""

    __tablename__ = "service_records"
    __table_args__ = (
        ForeignKeyConstraint(["member_id", "community_id"], ["parties.id", "parties.community_id"]),
        ForeignKeyConstraint(["organisation_id", "community_id"], ["parties.id", "parties.community_id"]),
        Index(
            "service_records_external_ref",
            "organisation_id",
            "external_ref",
            unique=True,
            postgresql_where=sql("external_ref IS NOT NULL"),
        ),
        Index("service_records_member_time", "member_id", "started_at"),
        Index("service_records_community", "community_id", "recorded_at", "id"),
    )

    id: uuid.UUID = Field(sa_column=_id_column())
    community_id: uuid.UUID = Field(sa_column=_required(Uuid))
    member_id: uuid.UUID = Field(sa_column=_required(Uuid))
    organisation_id: uuid.UUID = Field(sa_column=_required(Uuid))
    activity: str = Field(sa_column=_required(Text))
    category: str = Field(sa_column=_required(Text))
    place: str = Field(sa_column=_required(Text))
    started_at: datetime = Field(sa_column=_required(DateTime(timezone=True)))
    ended_at: datetime = Field(sa_column=_required(DateTime(timezone=True)))
    minutes: int = Field(sa_column=_required(Integer))
    beneficiary: str | None = Field(default=None, sa_column=Column(Text))
    content: str | None = Field(default=None, sa_column=Column(Text))
    external_ref: str | None = Field(default=None, sa_column=Column(Text))
    recorded_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    recorded_at: datetime = Field(sa_column=_now_column())
    status: str = Field(sa_column=Column(Text, nullable=False, server_default=sql("'submitted'::text")))
    decided_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    reject_reason: str | None = Field(default=None, sa_column=Column(Text))
    policy_version: int | None = Field(default=None, sa_column=Column(Integer))
    points: int | None = Field(default=None, sa_column=Column(BigInteger))
    transaction_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, unique=True))
    # Where it came from (migration 0010): only 'activity' records were witnessed by a
    # check-in; 'entered' and 'import' ones are back-filled (补录).
    source: str = Field(sa_column=Column(Text, nullable=False, server_default=sql("'entered'::text")))


class ServiceReversal(SQLModel, table=True):
    """The four-eyes correction of an approved record (the database refuses a self-decision)."""

    __tablename__ = "service_reversals"
    __table_args__ = (
        Index(
            "service_reversals_one_open",
            "record_id",
            unique=True,
            postgresql_where=sql("status = 'requested'::text"),
        ),
        Index(
            "service_reversals_one_approved",
            "record_id",
            unique=True,
            postgresql_where=sql("status = 'approved'::text"),
        ),
    )

    id: uuid.UUID = Field(sa_column=_id_column())
    community_id: uuid.UUID = Field(sa_column=_required(Uuid))
    record_id: uuid.UUID = Field(sa_column=Column(Uuid, ForeignKey("service_records.id"), nullable=False))
    reason: str = Field(sa_column=_required(Text))
    requested_by: uuid.UUID = Field(sa_column=_required(Uuid))
    requested_at: datetime = Field(sa_column=_now_column())
    status: str = Field(sa_column=Column(Text, nullable=False, server_default=sql("'requested'::text")))
    decided_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    decided_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    transaction_id: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid, unique=True))


class Certificate(SQLModel, table=True):
    """A certificate of service as issued and signed (志愿服务证明), checkable by its number."""

    __tablename__ = "certificates"
    __table_args__ = (UniqueConstraint("member_id", "content_hash"),)

    number: str = Field(sa_column=Column(Text, primary_key=True))
    community_id: uuid.UUID = Field(sa_column=_required(Uuid))
    member_id: uuid.UUID = Field(sa_column=_required(Uuid))
    period_from: date = Field(sa_column=_required(Date))
    period_to: date = Field(sa_column=_required(Date))
    content_hash: bytes = Field(sa_column=_required(LargeBinary))
    document: dict[str, Any] = Field(sa_column=_required(JSONB))
    kid: str = Field(sa_column=_required(Text))
    signature: str = Field(sa_column=_required(Text))
    issued_by: uuid.UUID | None = Field(default=None, sa_column=Column(Uuid))
    issued_at: datetime = Field(sa_column=_now_column())

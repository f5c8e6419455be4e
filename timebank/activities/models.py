"""The activities package's tables, one SQLModel class each, exactly as migration 0010
makes them (columns, types, nullability, server defaults; checks and keys live in the
migration). Read and written only through ``timebank.activities.queries``."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Float, Integer
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, text_column, time_column, uuid_column

_TZ = DateTime(timezone=True)


def _flag() -> bool:
    return Field(default=False, sa_column=Column(Boolean, nullable=False, server_default=sql("false")))


def _int(nullable: bool = False) -> int:
    return Field(default=None, sa_column=Column(Integer, nullable=nullable))


def _when(nullable: bool = False) -> datetime:
    return time_column() if nullable else Field(default=None, sa_column=Column(_TZ, nullable=False))


def _float() -> float | None:
    return Field(default=None, sa_column=Column(Float(precision=53), nullable=True))


class Activity(SQLModel, table=True):
    """An activity (活动): published → cancelled (with a reason); never deleted."""

    __tablename__ = "activities"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    organisation_id: uuid.UUID | None = uuid_column(nullable=True)
    title: str = text_column()
    category: str = text_column()
    description: str | None = text_column(nullable=True)
    place: str = text_column()
    lat: float | None = _float()
    lon: float | None = _float()
    radius_m: int | None = _int(nullable=True)
    starts_at: datetime = _when()
    ends_at: datetime = _when()
    capacity: int = _int()
    signup_opens_at: datetime | None = _when(nullable=True)
    signup_closes_at: datetime | None = _when(nullable=True)
    min_star: int | None = _int(nullable=True)
    status: str = text_column(default="published")
    cancel_reason: str | None = text_column(nullable=True)
    created_by: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()


class ActivitySignup(SQLModel, table=True):
    """A volunteer's place at an activity and their attendance (one row each)."""

    __tablename__ = "activity_signups"

    activity_id: uuid.UUID = uuid_column(primary_key=True)
    member_id: uuid.UUID = uuid_column(primary_key=True)
    community_id: uuid.UUID = uuid_column()
    status: str = text_column()
    position: int = _int()
    signed_up_at: datetime = created_column()
    withdrawn_at: datetime | None = time_column()
    late_withdrawal: bool = _flag()
    checked_in_at: datetime | None = time_column()
    check_in_manual: bool = _flag()
    checked_out_at: datetime | None = time_column()
    check_out_manual: bool = _flag()
    record_id: uuid.UUID | None = uuid_column(nullable=True)
    reminded_at: datetime | None = time_column()

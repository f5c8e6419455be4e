"""The districts package's tables, one SQLModel class each, exactly as migration 0011
makes them (columns, types, nullability, server defaults; checks, keys and the
append-only triggers live in the migration). Read and written only through
``timebank.districts.queries``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Integer
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from timebank.ledger.models import amount_column, created_column, text_column, time_column, uuid_column


def _bigint() -> int:
    return Field(default=None, sa_column=Column(BigInteger, nullable=False))


def _int() -> int:
    return Field(default=None, sa_column=Column(Integer, nullable=False))


class District(SQLModel, table=True):
    """A district's settings; the district itself is a ``communities`` row of kind 'district'."""

    __tablename__ = "districts"

    id: uuid.UUID = uuid_column(primary_key=True)
    default_hour_limit: int = _bigint()
    default_point_limit: int = _bigint()


class DistrictMember(SQLModel, table=True):
    __tablename__ = "district_members"

    district_id: uuid.UUID = uuid_column(primary_key=True)
    community_id: uuid.UUID = uuid_column(primary_key=True)
    district_consent_at: datetime | None = time_column()
    community_consent_at: datetime | None = time_column()
    party_id: uuid.UUID | None = uuid_column(nullable=True)
    joined_at: datetime | None = time_column()
    hour_limit: int = amount_column()
    point_limit: int = amount_column()
    points_per_unit: int = Field(
        default=1, sa_column=Column(Integer, nullable=False, server_default=sql("1"))
    )


class Crossing(SQLModel, table=True):
    __tablename__ = "crossings"

    id: uuid.UUID = uuid_column(primary_key=True)
    district_id: uuid.UUID = uuid_column()
    asset: str = text_column()
    from_community_id: uuid.UUID = uuid_column()
    from_account_id: uuid.UUID = uuid_column()
    from_transaction_id: uuid.UUID = uuid_column()
    district_transaction_id: uuid.UUID = uuid_column()
    to_community_id: uuid.UUID = uuid_column()
    to_account_id: uuid.UUID = uuid_column()
    to_transaction_id: uuid.UUID = uuid_column()
    amount_requested: int = _bigint()
    amount_sent: int = _bigint()
    amount_received: int = _bigint()
    rate_from: int = _int()
    rate_to: int = _int()
    acted_for: uuid.UUID | None = uuid_column(nullable=True)
    principal_id: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()


class DistrictSettlement(SQLModel, table=True):
    __tablename__ = "district_settlements"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    district_id: uuid.UUID = uuid_column()
    period_from: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    period_to: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    lines: list[dict[str, Any]] = Field(sa_column=Column(JSONB, nullable=False))
    proposed_by: uuid.UUID = uuid_column()
    proposed_at: datetime = created_column()
    approved_by: uuid.UUID | None = uuid_column(nullable=True)
    approved_at: datetime | None = time_column()
    cancelled_by: uuid.UUID | None = uuid_column(nullable=True)
    cancelled_at: datetime | None = time_column()
    district_transaction_id: uuid.UUID | None = uuid_column(nullable=True)


class SettlementPart(SQLModel, table=True):
    __tablename__ = "settlement_parts"

    settlement_id: uuid.UUID = uuid_column(primary_key=True)
    community_id: uuid.UUID = uuid_column(primary_key=True)
    district_id: uuid.UUID = uuid_column()  # the settlement's
    transaction_id: uuid.UUID = uuid_column()

"""Ledger tables (the schema itself is made by the Alembic migration 0001)."""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Column, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


class Asset(StrEnum):
    HOUR = "HOUR"  # whole minutes of service
    POINT = "POINT"  # whole love points


class SystemRole(StrEnum):
    ISSUANCE = "issuance"  # where new hours and points come from; may go negative
    EXPIRED = "expired"  # sink for expired points
    FUND = "fund"  # community fund, donations


class Kind(StrEnum):
    SERVICE_CREDIT = "service_credit"
    TRANSFER = "transfer"
    DONATION = "donation"
    REDEMPTION = "redemption"
    EXPIRY = "expiry"
    REVERSAL = "reversal"
    ADJUSTMENT = "adjustment"


class Phase(StrEnum):
    POSTED = "posted"  # single-phase, final
    PENDING = "pending"  # a hold: reserves the debit until posted, voided or expired
    POST = "post"  # resolves a hold by moving its amount
    VOID = "void"  # resolves a hold by releasing it
    EXPIRE = "expire"  # resolves a timed-out hold by releasing it


class Direction(StrEnum):
    DEBIT = "debit"
    CREDIT = "credit"


class Layer(StrEnum):
    POSTED = "posted"  # moves the posted balance
    PENDING = "pending"  # reserves (adds to the pending balance)
    RELEASE = "release"  # un-reserves what a hold reserved


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    asset: str
    party_id: uuid.UUID | None = None
    system_role: str | None = None
    debits_must_not_exceed_credits: bool
    credit_limit: int = 0
    debits_posted: int = 0
    credits_posted: int = 0
    debits_pending: int = 0
    credits_pending: int = 0
    created_at: datetime


class LedgerTransaction(SQLModel, table=True):
    __tablename__ = "transactions"

    id: uuid.UUID = Field(primary_key=True)
    seq: int
    community_id: uuid.UUID
    kind: str
    phase: str
    memo: str | None = None
    principal_id: uuid.UUID | None = None
    idempotency_key: str | None = None
    pending_id: uuid.UUID | None = None
    reverses_id: uuid.UUID | None = None
    reason: str | None = None
    timeout_at: datetime | None = None
    created_at: datetime


class Entry(SQLModel, table=True):
    __tablename__ = "entries"

    id: int = Field(primary_key=True)
    transaction_id: uuid.UUID
    community_id: uuid.UUID
    account_id: uuid.UUID
    asset: str
    direction: str
    layer: str
    amount: int
    created_at: datetime


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    community_id: uuid.UUID = Field(primary_key=True)
    key: str = Field(primary_key=True)
    request_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    principal_id: uuid.UUID | None = None
    status_code: int
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB))
    transaction_id: uuid.UUID | None = None
    created_at: datetime

"""Ledger tables (the schema itself is made by the Alembic migration 0001)."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, LargeBinary
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


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

"""Ledger tables, exactly as migration 0001 makes them, and the balances view (0006).

The migrations are the schema; these SQLModel classes describe it column by column
(types, nullability, server defaults) so that ``queries.py`` reads and writes with
typed ``select()``/``insert()``/``update()`` statements, and a test can compare them
with the migrated database. ``account_balances`` is a view, so it is described as a
plain table on a metadata of its own: the schema comparison sees tables only.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Identity,
    Integer,
    LargeBinary,
    MetaData,
    Table,
    Text,
    Uuid,
)
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel


def uuid_column(*, primary_key: bool = False, nullable: bool = False, generated: bool = False) -> Any:
    """A uuid column; ``generated``: the database makes it (``gen_random_uuid()``)."""
    default = sql("gen_random_uuid()") if generated else None
    return Field(
        default=None,
        sa_column=Column(
            Uuid, primary_key=primary_key, nullable=nullable and not primary_key, server_default=default
        ),
    )


def text_column(*, nullable: bool = False, default: str | None = None) -> Any:
    server_default = None if default is None else sql(f"'{default}'::text")
    return Field(default=None, sa_column=Column(Text, nullable=nullable, server_default=server_default))


def created_column() -> Any:
    """``timestamptz NOT NULL DEFAULT now()``."""
    return Field(
        default=None, sa_column=Column(DateTime(timezone=True), nullable=False, server_default=sql("now()"))
    )


def time_column() -> Any:
    return Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=True))


def amount_column() -> Any:
    """``bigint NOT NULL DEFAULT 0``: a cached balance or a credit limit."""
    return Field(default=0, sa_column=Column(BigInteger, nullable=False, server_default=sql("0")))


class Account(SQLModel, table=True):
    __tablename__ = "accounts"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    asset: str = text_column()
    party_id: uuid.UUID | None = uuid_column(nullable=True)
    system_role: str | None = text_column(nullable=True)
    debits_must_not_exceed_credits: bool = Field(sa_column=Column(Boolean, nullable=False))
    credit_limit: int = amount_column()
    debits_posted: int = amount_column()
    credits_posted: int = amount_column()
    debits_pending: int = amount_column()
    credits_pending: int = amount_column()
    created_at: datetime = created_column()


class LedgerTransaction(SQLModel, table=True):
    __tablename__ = "transactions"

    id: uuid.UUID = uuid_column(primary_key=True)
    seq: int = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), nullable=False))
    community_id: uuid.UUID = uuid_column()
    kind: str = text_column()
    phase: str = text_column()
    memo: str | None = text_column(nullable=True)
    principal_id: uuid.UUID | None = uuid_column(nullable=True)
    idempotency_key: str | None = text_column(nullable=True)
    pending_id: uuid.UUID | None = uuid_column(nullable=True)
    reverses_id: uuid.UUID | None = uuid_column(nullable=True)
    reason: str | None = text_column(nullable=True)
    timeout_at: datetime | None = time_column()
    created_at: datetime = created_column()


class Entry(SQLModel, table=True):
    __tablename__ = "entries"

    id: int = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    transaction_id: uuid.UUID = uuid_column()
    community_id: uuid.UUID = uuid_column()
    account_id: uuid.UUID = uuid_column()
    asset: str = text_column()
    direction: str = text_column()
    layer: str = text_column()
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = created_column()


class IdempotencyRecord(SQLModel, table=True):
    __tablename__ = "idempotency_keys"

    community_id: uuid.UUID = uuid_column(primary_key=True)
    key: str = Field(sa_column=Column(Text, primary_key=True))
    request_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    principal_id: uuid.UUID | None = uuid_column(nullable=True)
    status_code: int = Field(sa_column=Column(Integer, nullable=False))
    response: dict[str, Any] | None = Field(default=None, sa_column=Column(JSONB, nullable=True))
    transaction_id: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()


# The view of migration 0006: every balance formula of an account, in one place.
account_balances = Table(
    "account_balances",
    MetaData(),
    Column("account_id", Uuid, primary_key=True),
    Column("community_id", Uuid, nullable=False),
    Column("asset", Text, nullable=False),
    Column("party_id", Uuid),
    Column("system_role", Text),
    Column("posted", BigInteger, nullable=False),
    Column("pending", BigInteger, nullable=False),
    Column("available", BigInteger, nullable=False),
    Column("pending_credits", BigInteger, nullable=False),
    Column("credit_limit", BigInteger, nullable=False),
)

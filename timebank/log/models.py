"""The transparency log's tables, one SQLModel class each, exactly as migration 0002
makes them (types, nullability, keys and server defaults; CHECK constraints and the
append-only triggers live only in the migration, where the database enforces them).

Only this package reads or writes these tables, through ``timebank.log.queries``.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, ForeignKey, LargeBinary, SmallInteger, Text, Uuid
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel


def _now_column(**kw: bool) -> Column[datetime]:
    return Column(DateTime(timezone=True), nullable=False, server_default=sql("now()"), **kw)


class LogKey(SQLModel, table=True):
    """A public signing key ever used (private keys live only in files, see keys.py)."""

    __tablename__ = "log_keys"

    kid: str = Field(sa_column=Column(Text, primary_key=True))
    public_key: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    created_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    retired_at: datetime | None = Field(default=None, sa_column=Column(DateTime(timezone=True)))
    registered_at: datetime | None = Field(default=None, sa_column=_now_column())


class LogQueueItem(SQLModel, table=True):
    """A committed transaction waiting for the integrator (queued by the stamping trigger)."""

    __tablename__ = "log_queue"

    community_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    seq: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    transaction_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False))


class LogLeaf(SQLModel, table=True):
    """A transaction's fixed place (index) in its community's log."""

    __tablename__ = "log_leaves"

    community_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    transaction_id: uuid.UUID = Field(sa_column=Column(Uuid, nullable=False, unique=True))
    sequenced_at: datetime | None = Field(default=None, sa_column=_now_column())


class LogNode(SQLModel, table=True):
    """The hash of the perfect subtree (level, idx); level 0 holds the leaf hashes."""

    __tablename__ = "log_nodes"

    community_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    level: int = Field(sa_column=Column(SmallInteger, primary_key=True, autoincrement=False))
    idx: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))


class LogCheckpoint(SQLModel, table=True):
    """A signed checkpoint (C2SP tlog-checkpoint note) of one tree size."""

    __tablename__ = "log_checkpoints"

    community_id: uuid.UUID = Field(sa_column=Column(Uuid, primary_key=True))
    tree_size: int = Field(sa_column=Column(BigInteger, primary_key=True, autoincrement=False))
    root_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False))
    note: str = Field(sa_column=Column(Text, nullable=False))
    kid: str = Field(sa_column=Column(Text, ForeignKey("log_keys.kid"), nullable=False))
    created_at: datetime | None = Field(default=None, sa_column=_now_column())

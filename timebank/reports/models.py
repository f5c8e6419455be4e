"""The rollup table, exactly as migration 0009 makes it (written only by the database:
its trigger on ``entries`` and ``ledger_rollups_fold``; read by ``queries.py``)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Boolean, Column, DateTime, Identity
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from timebank.ledger.models import text_column, uuid_column


class LedgerRollup(SQLModel, table=True):
    """Posted entries of one hour and one class, summed: ``amount`` over ``entries`` rows."""

    __tablename__ = "ledger_rollups"

    id: int = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    community_id: uuid.UUID = uuid_column()
    hour: datetime = Field(default=None, sa_column=Column(DateTime(timezone=True), nullable=False))
    asset: str = text_column()
    kind: str = text_column()
    reverses_kind: str | None = text_column(nullable=True)
    holder: str = text_column()
    account_id: uuid.UUID | None = uuid_column(nullable=True)
    direction: str = text_column()
    amount: int = Field(sa_column=Column(BigInteger, nullable=False))
    entries: int = Field(sa_column=Column(BigInteger, nullable=False))
    folded: bool = Field(sa_column=Column(Boolean, nullable=False, server_default=sql("false")))

"""The ``job_runs`` table, exactly as migration 0005 makes it: one row per (job,
scope, period), the row that makes each period's run happen once.

Read and written through ``queries.py`` with typed statements on this model.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, Integer
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from timebank.ledger.models import text_column, time_column


class JobRun(SQLModel, table=True):
    __tablename__ = "job_runs"

    id: int = Field(sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    job: str = text_column()
    scope: str = text_column()
    period: str = text_column()
    status: str = text_column()
    attempts: int = Field(sa_column=Column(Integer, nullable=False, server_default=sql("1")))
    worker: str = text_column()
    started_at: datetime = Field(
        sa_column=Column(DateTime(timezone=True), nullable=False, server_default=sql("clock_timestamp()"))
    )
    finished_at: datetime | None = time_column()
    counts: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb")))
    error: str | None = text_column(nullable=True)

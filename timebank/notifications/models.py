"""The notifications outbox table, exactly as migration 0005 makes it (0005 has no
separate webhook deliveries table: the delivery state is on each notification).

Read and written through ``queries.py`` with typed statements on this model.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Column, Integer
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, text_column, time_column, uuid_column


class Notification(SQLModel, table=True):
    """A reminder for a member (points about to expire) and its webhook delivery state."""

    __tablename__ = "notifications"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    member_id: uuid.UUID = uuid_column()
    kind: str = text_column()
    lot_id: uuid.UUID | None = uuid_column(nullable=True)
    threshold_days: int | None = Field(default=None, sa_column=Column(Integer))
    payload: dict[str, Any] = Field(sa_column=Column(JSONB, nullable=False))
    created_at: datetime = created_column()
    delivered_at: datetime | None = time_column()
    attempts: int = Field(sa_column=Column(Integer, nullable=False, server_default=sql("0")))
    next_attempt_at: datetime = created_column()
    last_error: str | None = text_column(nullable=True)

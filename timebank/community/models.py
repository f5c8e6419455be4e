"""Community, party and API-key tables (the schema is made by Alembic migrations)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: uuid.UUID = Field(primary_key=True)
    name: str
    timezone: str = "Asia/Shanghai"
    created_at: datetime


class Party(SQLModel, table=True):
    __tablename__ = "parties"

    id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    kind: str
    display_name: str
    external_ref: str | None = None
    created_at: datetime


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(primary_key=True)
    community_id: uuid.UUID
    role: str
    subject_id: uuid.UUID | None = None
    label: str | None = None
    key_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    key_prefix: str
    created_by: uuid.UUID | None = None
    created_at: datetime
    revoked_at: datetime | None = None

"""Community, party and API-key tables, exactly as migration 0001 makes them.

The migration is the schema; these SQLModel classes describe it column by column
(types, nullability, server defaults) for the typed statements of ``queries.py`` and
for the test that compares them with the migrated database. The column helpers are
the ledger's (``timebank.ledger.models``), whose tables come from the same migration.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Column, LargeBinary
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, text_column, time_column, uuid_column


class Community(SQLModel, table=True):
    __tablename__ = "communities"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    name: str = text_column()
    timezone: str = text_column(default="Asia/Shanghai")
    created_at: datetime = created_column()
    kind: str = text_column(default="community")  # or 'district': a district's own ledger (0011)


class Party(SQLModel, table=True):
    __tablename__ = "parties"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    kind: str = text_column()
    display_name: str = text_column()
    external_ref: str | None = text_column(nullable=True)
    created_at: datetime = created_column()


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    role: str = text_column()
    subject_id: uuid.UUID | None = uuid_column(nullable=True)
    label: str | None = text_column(nullable=True)
    key_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    key_prefix: str = text_column()
    created_by: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()
    revoked_at: datetime | None = time_column()

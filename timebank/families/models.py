"""Family links (亲情账户), grants and the record of acting for someone: one SQLModel
class per table, exactly as migration 0011 makes them (checks, keys and the
append-only trigger live in the migration). Read and written only through
``timebank.families.queries``."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Column, DateTime, Identity, LargeBinary, Text
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, text_column, time_column, uuid_column


class FamilyLink(SQLModel, table=True):
    __tablename__ = "family_links"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    member_a: uuid.UUID = uuid_column()
    community_a: uuid.UUID = uuid_column()
    member_b: uuid.UUID | None = uuid_column(nullable=True)
    community_b: uuid.UUID | None = uuid_column(nullable=True)
    relation: str = text_column()
    code_hash: bytes | None = Field(default=None, sa_column=Column(LargeBinary, nullable=True, unique=True))
    code_expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    a_consent_at: datetime = created_column()
    b_consent_at: datetime | None = time_column()
    confirmed_at: datetime | None = time_column()
    confirmed_by: uuid.UUID | None = uuid_column(nullable=True)
    ended_at: datetime | None = time_column()
    ended_by: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()


class FamilyGrant(SQLModel, table=True):
    __tablename__ = "family_grants"

    link_id: uuid.UUID = uuid_column(primary_key=True)
    grantor: uuid.UUID = uuid_column(primary_key=True)
    action: str = Field(sa_column=Column(Text, primary_key=True))
    granted_at: datetime = created_column()
    revoked_at: datetime | None = time_column()


class ProxyAction(SQLModel, table=True):
    __tablename__ = "proxy_actions"

    id: int = Field(default=None, sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    link_id: uuid.UUID = uuid_column()
    actor_member_id: uuid.UUID = uuid_column()
    actor_community_id: uuid.UUID = uuid_column()
    for_member_id: uuid.UUID = uuid_column()
    for_community_id: uuid.UUID = uuid_column()
    action: str = text_column()
    detail: dict[str, Any] = Field(
        default=None, sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb"))
    )
    transaction_id: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()

"""People, sign-in link and session tables, exactly as migration 0007 makes them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Integer, LargeBinary
from sqlalchemy import text as sql
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, text_column, time_column, uuid_column


class Person(SQLModel, table=True):
    __tablename__ = "people"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    role: str = text_column()
    subject_id: uuid.UUID | None = uuid_column(nullable=True)
    display_name: str = text_column()
    login: str | None = text_column(nullable=True)
    password_hash: str | None = text_column(nullable=True)
    locale: str | None = text_column(nullable=True)
    large_text: bool = Field(sa_column=Column(Boolean, nullable=False, server_default=sql("false")))
    failed_sign_ins: int = Field(sa_column=Column(Integer, nullable=False, server_default=sql("0")))
    failed_since: datetime | None = time_column()
    created_by: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()
    disabled_at: datetime | None = time_column()


class SignInLink(SQLModel, table=True):
    __tablename__ = "sign_in_links"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    person_id: uuid.UUID = uuid_column()
    token_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    used_at: datetime | None = time_column()
    revoked_at: datetime | None = time_column()
    created_by: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()


class WebSession(SQLModel, table=True):
    __tablename__ = "web_sessions"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    person_id: uuid.UUID = uuid_column()
    token_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    via: str = text_column()
    user_agent: str | None = text_column(nullable=True)
    address: str | None = text_column(nullable=True)
    created_at: datetime = created_column()
    last_seen_at: datetime = created_column()
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ended_at: datetime | None = time_column()

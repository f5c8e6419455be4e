"""People, logins, sign-in link and session tables, as migrations 0007 and 0012 make them."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import Boolean, Column, DateTime, Integer, LargeBinary, Text
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


class Login(SQLModel, table=True):
    """A login taken in the deployment, and whose it is: its primary key keeps logins
    unique across communities (people's own keys only hold within one)."""

    __tablename__ = "logins"

    login: str = Field(sa_column=Column(Text, primary_key=True))
    community_id: uuid.UUID = uuid_column()
    person_id: uuid.UUID = uuid_column()


class SignInLink(SQLModel, table=True):
    __tablename__ = "sign_in_links"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()  # the person's (the key distributes by it)
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
    community_id: uuid.UUID = uuid_column()  # the person's (the key distributes by it)
    person_id: uuid.UUID = uuid_column()
    token_hash: bytes = Field(sa_column=Column(LargeBinary, nullable=False, unique=True))
    via: str = text_column()
    user_agent: str | None = text_column(nullable=True)
    address: str | None = text_column(nullable=True)
    created_at: datetime = created_column()
    last_seen_at: datetime = created_column()
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    ended_at: datetime | None = time_column()

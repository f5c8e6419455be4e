"""Reward and redemption tables, exactly as migrations 0004 and 0011 make them.

The migration is the schema; these models describe it so that ``queries.py`` can
read and write with typed ``select()``/``insert()``/``update()`` statements (and a
test can compare them with the migrated database). Column types, nullability and
server defaults follow 0004 column by column (and 0011's block for a redemption at
another community's merchant: ``member_community_id``, ``paid_points``, the rate).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime

from sqlalchemy import BigInteger, Boolean, Column, Date, DateTime, Integer, SmallInteger
from sqlalchemy import text as sql
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, text_column, time_column, uuid_column


class Reward(SQLModel, table=True):
    """What a merchant gives for points; ``stock`` is what is still free to hold."""

    __tablename__ = "rewards"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    merchant_id: uuid.UUID = uuid_column()
    title: str = text_column()
    description: str | None = text_column(nullable=True)
    price_points: int = Field(sa_column=Column(BigInteger, nullable=False))
    star_prices: dict[str, int] = Field(
        sa_column=Column(JSONB, nullable=False, server_default=sql("'{}'::jsonb"))
    )
    min_star: int = Field(sa_column=Column(SmallInteger, nullable=False, server_default=sql("0")))
    stock: int | None = Field(default=None, sa_column=Column(BigInteger))
    held: int = Field(sa_column=Column(BigInteger, nullable=False, server_default=sql("0")))
    redeemed: int = Field(sa_column=Column(BigInteger, nullable=False, server_default=sql("0")))
    limit_count: int | None = Field(default=None, sa_column=Column(Integer))
    limit_period: str | None = text_column(nullable=True)
    valid_from: datetime | None = time_column()
    valid_until: datetime | None = time_column()
    active: bool = Field(sa_column=Column(Boolean, nullable=False, server_default=sql("true")))
    created_by: uuid.UUID | None = uuid_column(nullable=True)
    created_at: datetime = created_column()
    updated_at: datetime = created_column()


class RedemptionCount(SQLModel, table=True):
    """The units a member took of a reward in one limit period (held or confirmed)."""

    __tablename__ = "redemption_counts"

    reward_id: uuid.UUID = uuid_column(primary_key=True)
    member_id: uuid.UUID = uuid_column(primary_key=True)
    period_start: date = Field(sa_column=Column(Date, primary_key=True))
    used: int = Field(sa_column=Column(Integer, nullable=False))
    community_id: uuid.UUID = uuid_column()  # the reward's


class Redemption(SQLModel, table=True):
    """A hold on the member's points with a one-time voucher.

    ``community_id`` is the reward's (the merchant's) community; ``member_community_id``
    the member's, whose ledger holds the points (another community of the district for a
    redemption across communities). ``paid_points`` is what the member's account pays,
    in their community's points: ``price_points`` at home, else the least number whose
    worth at ``rate_from``:``rate_to`` (rounded down) covers the price.
    """

    __tablename__ = "redemptions"

    id: uuid.UUID = uuid_column(primary_key=True)
    community_id: uuid.UUID = uuid_column()
    reward_id: uuid.UUID = uuid_column()
    merchant_id: uuid.UUID = uuid_column()
    member_id: uuid.UUID = uuid_column()
    star_level: int = Field(sa_column=Column(SmallInteger, nullable=False))
    price_points: int = Field(sa_column=Column(BigInteger, nullable=False))
    status: str = text_column()
    code: str = text_column()
    hold_id: uuid.UUID = uuid_column()
    resolution_id: uuid.UUID | None = uuid_column(nullable=True)
    period_start: date | None = Field(default=None, sa_column=Column(Date))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    token_nonce: str | None = text_column(nullable=True)
    created_by: uuid.UUID = uuid_column()
    created_at: datetime = created_column()
    resolved_by: uuid.UUID | None = uuid_column(nullable=True)
    resolved_at: datetime | None = time_column()
    member_community_id: uuid.UUID = uuid_column()
    paid_points: int = Field(sa_column=Column(BigInteger, nullable=False))
    rate_from: int = Field(sa_column=Column(Integer, nullable=False, server_default=sql("1")))
    rate_to: int = Field(sa_column=Column(Integer, nullable=False, server_default=sql("1")))

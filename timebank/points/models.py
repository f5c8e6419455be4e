"""Points lot tables, exactly as migrations 0003 and 0004 make them.

Lots and consumptions are written only by the database (``points_follow_entry``,
0004) as ledger entries are posted; these models exist so ``queries.py`` can read
them with typed ``select()`` statements.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import BigInteger, Column, DateTime, Identity
from sqlmodel import Field, SQLModel

from timebank.ledger.models import created_column, time_column, uuid_column


class PointsLot(SQLModel, table=True):
    """One credit of points to a member's account, with its expiry; ``remaining``
    is what spending and expiry have not taken yet."""

    __tablename__ = "points_lots"

    id: uuid.UUID = uuid_column(primary_key=True, generated=True)
    community_id: uuid.UUID = uuid_column()
    member_id: uuid.UUID = uuid_column()
    account_id: uuid.UUID = uuid_column()
    transaction_id: uuid.UUID = uuid_column()
    record_id: uuid.UUID | None = uuid_column(nullable=True)
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    credited_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    expires_at: datetime = Field(sa_column=Column(DateTime(timezone=True), nullable=False))
    reversed_at: datetime | None = time_column()
    remaining: int = Field(sa_column=Column(BigInteger, nullable=False))


class PointsConsumption(SQLModel, table=True):
    """Points one transaction took from (or, negative, gave back to) one lot."""

    __tablename__ = "points_consumptions"

    id: int = Field(sa_column=Column(BigInteger, Identity(always=True), primary_key=True))
    community_id: uuid.UUID = uuid_column()  # the lot's
    lot_id: uuid.UUID = uuid_column()
    transaction_id: uuid.UUID = uuid_column()
    points: int = Field(sa_column=Column(BigInteger, nullable=False))
    created_at: datetime = created_column()

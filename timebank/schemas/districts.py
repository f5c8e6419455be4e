"""Request limits and response shapes of districts, crossings and settlements."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

import msgspec

from timebank.schemas.limits import DATE_PATTERN, MAX_AMOUNT, ZERO_MIN
from timebank.schemas.openapi import Out

MAX_RATE = 1_000_000
Limit = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT, extra_json_schema=ZERO_MIN)]
RatePoints = Annotated[int, msgspec.Meta(ge=1, le=MAX_RATE)]
AssetName = Literal["HOUR", "POINT"]
Day = Annotated[
    date,
    msgspec.Meta(extra_json_schema={"description": "a day, YYYY-MM-DD", "extra": {"pattern": DATE_PATTERN}}),
]


class Limits(Out):
    HOUR: int
    POINT: int


class Membership(Out):
    district_id: str
    community_id: str
    status: Literal["asked", "invited", "joined"]
    district_consent_at: str | None
    community_consent_at: str | None
    joined_at: str | None
    limits: Limits
    points_per_unit: int
    name: str | None = None


class Rate(Out):
    """The rate of a pair, derived from the two communities' points_per_unit."""

    community_a: str
    community_b: str
    a_points: int
    b_points: int


class District(Out):
    id: str
    name: str
    timezone: str
    created_at: str
    default_limits: Limits
    exchange_accounts: dict[str, str]
    communities: list[Membership]
    rates: list[Rate]


class DistrictCommunity(Out):
    id: str
    name: str


class CommunityDistrict(Out):
    district_id: str
    name: str
    status: Literal["asked", "invited", "joined"]
    limits: Limits
    communities: list[DistrictCommunity]
    position: dict[str, int] | None = None


class AssetPosition(Out):
    position: int
    limit: int
    account_id: str
    clearing_account_id: str | None


class Position(Out):
    community_id: str
    name: str
    assets: dict[str, AssetPosition]


class Positions(Out):
    district_id: str
    items: list[Position]


class CrossingRate(Out):
    # sender's points : recipient's points
    from_: int = msgspec.field(name="from")
    to: int


class CrossingEnd(Out):
    community_id: str
    account_id: str | None  # None for a district admin, who sees no member
    transaction_id: str


class CrossingPart(Out):
    transaction_id: str


class Crossing(Out):
    id: str
    district_id: str
    asset: AssetName
    amount_requested: int
    amount_sent: int
    amount_received: int
    kept: int
    rate: CrossingRate
    # "from" is the sending community's part, "to" the receiving one's
    from_: CrossingEnd = msgspec.field(name="from")
    district: CrossingPart
    to: CrossingEnd
    acted_for: str | None
    created_at: str
    memo: str | None = None


class CrossingPage(Out):
    items: list[Crossing]
    next_cursor: str | None


class FigureRow(Out):
    month: str
    from_community_id: str
    to_community_id: str
    asset: AssetName
    crossings: int
    sent: int
    received: int


class CommunityTotal(Out):
    community_id: str
    name: str
    asset: AssetName
    sent: int
    received: int
    crossings_out: int
    crossings_in: int


class CrossingFigures(Out):
    district_id: str
    period: dict[str, str]
    by_pair_and_month: list[FigureRow]
    by_community: list[CommunityTotal]


class SettlementLine(Out):
    community_id: str
    name: str
    asset: AssetName
    amount: int


class SettlementPartOut(Out):
    community_id: str
    transaction_id: str


class Settlement(Out):
    id: str
    district_id: str
    status: Literal["proposed", "approved", "cancelled"]
    period: dict[str, str]
    lines: list[SettlementLine]
    proposed_by: str
    proposed_at: str
    approved_by: str | None
    approved_at: str | None
    cancelled_at: str | None
    district_transaction_id: str | None
    parts: list[SettlementPartOut]
    statement: CrossingFigures | None = None


class SettlementList(Out):
    items: list[Settlement]

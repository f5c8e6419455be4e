"""Response shapes of rewards, redemptions, statements, jobs and notifications."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

import msgspec

if TYPE_CHECKING:
    pass


from timebank.schemas.ledger import Transaction
from timebank.schemas.openapi import Out


class RewardLimit(Out):
    count: int
    period: Literal["day", "week", "month", "quarter", "year"]


class PointsRate(Out):
    """``from`` points of the member's community are worth ``to`` of the merchant's."""

    from_: int = msgspec.field(name="from")
    to: int


class Eligibility(Out):
    """For a resident: may they redeem it now, at what price, and if not, why."""

    may_redeem: bool
    reasons: list[
        Literal[
            "not_active",
            "not_valid_yet",
            "no_longer_valid",
            "star_level",
            "out_of_stock",
            "limit_reached",
            "insufficient_points",
        ]
    ]
    price_points: int
    star_level: int
    # a reward of another community of the district: what the member's own points pay
    pay_points: int | None = None
    rate: PointsRate | None = None


class Reward(Out):
    """stock: units still free to redeem (null: unlimited); held: reserved by open vouchers."""

    id: str
    merchant_id: str
    title: str
    description: str | None
    price_points: int
    star_prices: dict[str, int]
    min_star: int
    stock: int | None
    held: int
    redeemed: int
    limit: RewardLimit | None
    valid_from: str | None
    valid_until: str | None
    active: bool
    created_at: str
    updated_at: str
    eligibility: Eligibility | None = None
    # a reward of another community of the district
    community_id: str | None = None
    merchant_name: str | None = None


class RewardPage(Out):
    items: list[Reward]
    next_cursor: str | None


class Redemption(Out):
    """code and qr (a signed token, see docs/api.md) come with the answer that made the voucher."""

    id: str
    status: Literal["held", "confirmed", "cancelled", "expired"]
    reward_id: str
    merchant_id: str
    member_id: str
    price_points: int
    star_level: int
    expires_at: str
    created_at: str
    hold_id: str
    resolution_id: str | None
    resolved_at: str | None
    title: str | None = None
    code: str | None = None
    qr: str | None = None
    transaction: Transaction | None = None
    # at a merchant of another community of the district: the member's points paid at
    # the rate fixed when they were held, what the merchant receives, and the crossing
    community_id: str | None = None
    member_community_id: str | None = None
    paid_points: int | None = None
    received_points: int | None = None
    rate: PointsRate | None = None
    crossing_id: str | None = None


class RedemptionPage(Out):
    items: list[Redemption]
    next_cursor: str | None


class MemberToken(Out):
    token: str
    expires_at: str


class StatementItem(Out):
    redemption_id: str
    confirmed_at: str
    reward_id: str
    title: str
    member_id: str
    points: int
    transaction_id: str


class StatementTotals(Out):
    redemptions: int
    points: int


class Statement(Out):
    merchant_id: str
    timezone: str
    items: list[StatementItem]
    totals: StatementTotals
    from_: str = msgspec.field(name="from")
    to: str


class JobRun(Out):
    job: str
    scope: str
    period: str
    status: Literal["running", "done", "failed"]
    attempts: int
    worker: str
    started_at: str
    finished_at: str | None
    counts: dict[str, Any]
    error: str | None


class JobRunList(Out):
    items: list[JobRun]


class Notification(Out):
    """payload: {"type": "points_expiring", "lot_id", "points", "days", "expires_at", ...}, as the webhook gets it."""

    id: str
    kind: Literal["points_expiring", "activity_cancelled", "activity_promoted", "activity_reminder"]
    member_id: str
    payload: dict[str, Any]
    created_at: str
    delivered_at: str | None
    attempts: int


class NotificationPage(Out):
    items: list[Notification]
    next_cursor: str | None

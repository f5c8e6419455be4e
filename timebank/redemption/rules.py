"""The love-exchange rules of a reward, as plain functions (no database, no HTTP).

One home for "may this member redeem this reward now, and at what price": the
reward list shows these reasons to a resident, and a redemption is refused with the
first of them. The database enforces stock, limits and balances again under locks
(redemptions.py), so a race can only make a redemption fail, never exceed a rule.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

PERIODS = ("day", "week", "month", "quarter", "year")
MAX_POINTS = 1_000_000_000
MAX_STOCK = 1_000_000_000

# Why a member may not redeem a reward now, in the order they are reported.
REASONS = {
    "not_active": "the merchant no longer offers this reward",
    "not_valid_yet": "this reward is not offered yet",
    "no_longer_valid": "this reward's offer has ended",
    "star_level": "this reward needs a higher star level",
    "out_of_stock": "this reward is out of stock",
    "limit_reached": "the member has reached this reward's limit for the period",
    "insufficient_points": "the member does not have enough available points",
}


def member_price(price_points: int, star_prices: dict[str, int], star_level: int) -> int:
    """VIP love-exchange: the price of the highest star level the member has reached
    among ``star_prices`` (e.g. {"3": 80}: 80 points from three stars up), else the
    reward's price."""
    reached = [int(s) for s in star_prices if int(s) <= star_level]
    return star_prices[str(max(reached))] if reached else price_points


def cost_at(price: int, rate_from: int, rate_to: int) -> int:
    """What a member of another community of the district pays, in their own points, for
    ``price`` of the merchant's points, when ``rate_from`` of theirs are worth ``rate_to``
    of the merchant's: the least whole number whose worth there, rounded down
    (``floor(paid × to / from)``, what a crossing delivers), covers the price, i.e.
    ``ceil(price × from / to)``. The merchant receives that worth, which may exceed the
    price by less than one of the member's points (``worth_there``); nothing is created:
    every point the member pays arrives, at the rate, rounded toward the sender.
    """
    return -(-price * rate_from // rate_to)


def worth_there(points: int, rate_from: int, rate_to: int) -> int:
    """What ``points`` of the member's community reach the merchant's with (rounded down)."""
    return points * rate_to // rate_from


@dataclass(frozen=True)
class Standing:
    """What the rules need to know about the member at this moment."""

    star_level: int
    available_points: int  # in the reward's community's points (``worth_there`` when across)
    used_this_period: int


def unavailable(reward: Any, member: Standing, now: datetime) -> list[str]:
    """Every reason this member may not redeem ``reward`` now (empty: they may)."""
    reasons = []
    if not reward.active:
        reasons.append("not_active")
    if reward.valid_from is not None and now < reward.valid_from:
        reasons.append("not_valid_yet")
    if reward.valid_until is not None and now >= reward.valid_until:
        reasons.append("no_longer_valid")
    if member.star_level < reward.min_star:
        reasons.append("star_level")
    if reward.stock is not None and reward.stock <= 0:
        reasons.append("out_of_stock")
    if reward.limit_count is not None and member.used_this_period >= reward.limit_count:
        reasons.append("limit_reached")
    if member.available_points < member_price(reward.price_points, reward.star_prices, member.star_level):
        reasons.append("insufficient_points")
    return reasons


def check_reward(fields: dict[str, Any]) -> str | None:
    """What is wrong with a reward's fields (after an update too), or None."""
    title = fields.get("title")
    if not isinstance(title, str) or not 1 <= len(title.strip()) <= 200:
        return "title is 1 to 200 characters"
    description = fields.get("description")
    if description is not None and len(description) > 2000:
        return "description is at most 2000 characters"
    if not 1 <= fields["price_points"] <= MAX_POINTS:
        return f"price_points is from 1 to {MAX_POINTS}"
    stock = fields.get("stock")
    if stock is not None and not 0 <= stock <= MAX_STOCK:
        return f"stock is from 0 to {MAX_STOCK} (omit it for no limit)"
    if not 0 <= fields.get("min_star", 0) <= 5:
        return "min_star is from 0 to 5"
    for star, price in (fields.get("star_prices") or {}).items():
        if star not in {"1", "2", "3", "4", "5"}:
            return 'star_prices are keyed by star level "1" to "5"'
        if not isinstance(price, int) or not 1 <= price <= MAX_POINTS:
            return f"star_prices[{star}] is a whole number of points from 1 to {MAX_POINTS}"
    count, period = fields.get("limit_count"), fields.get("limit_period")
    if (count is None) != (period is None):
        return "a limit has both count and period"
    if count is not None and (not 1 <= count <= 1000 or period not in PERIODS):
        return f"limit.count is from 1 to 1000 and limit.period one of {', '.join(PERIODS)}"
    start, end = fields.get("valid_from"), fields.get("valid_until")
    for name, value in (("valid_from", start), ("valid_until", end)):
        if value is not None and value.tzinfo is None:
            return f"{name} needs a time zone (RFC 3339)"
    if start is not None and end is not None and end <= start:
        return "valid_until is after valid_from"
    return None

"""Rewards at partner merchants (志愿服务爱心兑换): publishing, editing, listing, and
for a resident whether they may redeem each one now.

The rules themselves are plain functions in ``rules.py``; this module applies them
to the stored rewards and the member's standing (star level, available points, what
they took this period). Table access is in ``queries.py``.

Rewards are public within a district: anyone of a joined community may list another
joined community's rewards (``community_id``) and read one by id, with the merchant's
name; a resident sees, for each, what it costs in their own points at the district's
rate (``eligibility.pay_points``). Members are never shown across communities.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

import msgspec
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import schemas
from timebank.community import queries as community_queries
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.policy import current_policy
from timebank.core.problems import BadRequest, DomainError, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset
from timebank.districts.crossing import NotInDistrict, Route, route_between
from timebank.ledger import queries as ledger_queries
from timebank.redemption import queries, rules
from timebank.volunteer.queries import lifetime_minutes


class RewardUnavailable(DomainError):
    slug, status, title = "reward-unavailable", 409, "The member may not redeem this reward now"

    def __init__(self, reason: str) -> None:
        super().__init__(rules.REASONS[reason], reason=reason)


class LimitIn(msgspec.Struct, forbid_unknown_fields=True):
    count: schemas.LimitCount
    period: schemas.Period


class RewardIn(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    merchant_id: uuid.UUID | None = None
    title: schemas.Title
    description: schemas.Description | None = None
    price_points: schemas.Points
    stock: schemas.Stock | None = None
    limit: LimitIn | None = None
    min_star: schemas.StarLevel = 0
    star_prices: schemas.StarPrices = msgspec.field(default_factory=dict)
    valid_from: schemas.DateTime | None = None
    valid_until: schemas.DateTime | None = None


class RewardPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields to change; an absent field stays, ``null`` clears an optional one."""

    title: schemas.Title | msgspec.UnsetType = msgspec.UNSET
    description: schemas.Description | msgspec.UnsetType | None = msgspec.UNSET
    price_points: schemas.Points | msgspec.UnsetType = msgspec.UNSET
    stock: schemas.Stock | msgspec.UnsetType | None = msgspec.UNSET
    limit: LimitIn | msgspec.UnsetType | None = msgspec.UNSET
    min_star: schemas.StarLevel | msgspec.UnsetType = msgspec.UNSET
    star_prices: schemas.StarPrices | msgspec.UnsetType = msgspec.UNSET
    valid_from: schemas.DateTime | msgspec.UnsetType | None = msgspec.UNSET
    valid_until: schemas.DateTime | msgspec.UnsetType | None = msgspec.UNSET


COLUMNS = (
    "title",
    "description",
    "price_points",
    "stock",
    "limit_count",
    "limit_period",
    "min_star",
    "star_prices",
    "valid_from",
    "valid_until",
)


def _columns(fields: dict[str, Any]) -> dict[str, Any]:
    """API fields → table columns (the limit is two columns)."""
    out = {k: v for k, v in fields.items() if k not in ("limit", "merchant_id")}
    if "limit" in fields:
        limit = fields["limit"]
        out["limit_count"] = None if limit is None else limit.count
        out["limit_period"] = None if limit is None else limit.period
    return out


def _checked(columns: dict[str, Any]) -> dict[str, Any]:
    problem = rules.check_reward(columns)
    if problem:
        raise BadRequest(problem)
    columns["title"] = columns["title"].strip()
    return columns


def optional_time(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def reward_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "merchant_id": str(row.merchant_id),
        "title": row.title,
        "description": row.description,
        "price_points": row.price_points,
        "star_prices": dict(row.star_prices),
        "min_star": row.min_star,
        "stock": row.stock,
        "held": row.held,
        "redeemed": row.redeemed,
        "limit": None if row.limit_count is None else {"count": row.limit_count, "period": row.limit_period},
        "valid_from": optional_time(row.valid_from),
        "valid_until": optional_time(row.valid_until),
        "active": row.active,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def _may_manage(principal: Principal, merchant_id: uuid.UUID) -> bool:
    return principal.is_admin or (principal.role is Role.MERCHANT and principal.subject_id == merchant_id)


def _publisher(principal: Principal, body: RewardIn) -> uuid.UUID:
    """The merchant a new reward belongs to: the merchant's own key, or an admin's choice."""
    if principal.role is Role.MERCHANT:
        if body.merchant_id not in (None, principal.subject_id):
            raise Forbidden("a merchant key publishes rewards of its own merchant only")
        assert principal.subject_id is not None
        return principal.subject_id
    if principal.is_admin:
        if body.merchant_id is None:
            raise BadRequest("merchant_id is required")
        return body.merchant_id
    raise Forbidden("only merchants and admins publish rewards")


async def create_reward(conn: AsyncConnection, principal: Principal, body: RewardIn) -> dict[str, Any]:
    merchant_id = _publisher(principal, body)
    if not await community_queries.party_exists(
        conn, principal.community_id, merchant_id, PartyKind.MERCHANT
    ):
        raise NotFound(f"merchant {merchant_id} not found")
    columns = _checked(_columns(msgspec.structs.asdict(body)))
    values = {k: columns.get(k) for k in COLUMNS}
    row = await queries.insert_reward(
        conn,
        {
            "community_id": principal.community_id,
            "merchant_id": merchant_id,
            "created_by": principal.key_id,
            **values,
        },
    )
    return reward_view(row)


async def lock_reward(conn: AsyncConnection, community_id: uuid.UUID, reward_id: uuid.UUID) -> Any:
    row = await queries.find_reward(conn, community_id, reward_id, lock=True)
    if row is None:
        raise NotFound(f"reward {reward_id} not found")
    return row


async def update_reward(
    conn: AsyncConnection,
    principal: Principal,
    reward_id: uuid.UUID,
    patch: RewardPatch | None,
    *,
    deactivate: bool = False,
) -> dict[str, Any]:
    row = await lock_reward(conn, principal.community_id, reward_id)
    if not _may_manage(principal, row.merchant_id):
        raise Forbidden("only the reward's merchant or an admin changes it")
    changes = (
        {}
        if patch is None
        else _columns({k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET})
    )
    merged = _checked({**{k: getattr(row, k) for k in COLUMNS}, **changes})
    return reward_view(await queries.update_reward(conn, reward_id, merged, deactivate=deactivate))


async def district_route(conn: AsyncConnection, home: uuid.UUID, there: uuid.UUID) -> Route | None:
    """None at home; else the district's route from ``home`` to ``there`` (NotFound when
    they are not in one district: another community's rewards are not ours to show)."""
    if there == home:
        return None
    try:
        return await route_between(conn, home, there)
    except NotInDistrict:
        raise NotFound(f"community {there} is not in this community's district") from None


async def find_reward_for(
    conn: AsyncConnection, home: uuid.UUID, reward_id: uuid.UUID, *, lock: bool = False
) -> tuple[Any, Route | None]:
    """A reward of ``home``, or of another community of its district (with the route)."""
    row = await queries.find_reward(conn, home, reward_id, lock=lock)
    if row is not None:
        return row, None
    other = await queries.reward_anywhere(conn, reward_id)
    if other is None:
        raise NotFound(f"reward {reward_id} not found")
    try:
        route = await route_between(conn, home, other.community_id)
    except NotInDistrict:
        raise NotFound(f"reward {reward_id} not found") from None
    return (await lock_reward(conn, other.community_id, reward_id) if lock else other), route


async def get_reward(conn: AsyncConnection, principal: Principal, reward_id: uuid.UUID) -> dict[str, Any]:
    """A reward of the principal's community, or of another community of its district."""
    row, route = await find_reward_for(conn, principal.community_id, reward_id)
    items = await _with_eligibility(conn, principal, [row], route)
    return items[0]


async def list_rewards(
    conn: AsyncConnection,
    principal: Principal,
    *,
    merchant_id: uuid.UUID | None,
    active: bool | None,
    cursor: uuid.UUID | None,
    limit: int,
    community_id: uuid.UUID | None = None,
) -> tuple[list[dict[str, Any]], str | None]:
    """Rewards, oldest first; for a resident each says whether they may redeem it now.
    ``community_id``: another community of the district (its rewards are public there)."""
    there = principal.community_id if community_id is None else community_id
    route = await district_route(conn, principal.community_id, there)
    rows = await queries.rewards_page(
        conn, there, merchant_id=merchant_id, active=active, after=cursor, limit=limit + 1
    )
    page = list(rows[:limit])
    items = await _with_eligibility(conn, principal, page, route)
    return items, (str(page[-1].id) if len(rows) > limit else None)


async def standing(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> tuple[int, int]:
    """(star level, available points) of a member now."""
    _, policy, _ = await current_policy(conn, community_id)
    star = policy.star_level(await lifetime_minutes(conn, member_id))
    balances = await ledger_queries.balances_of(conn, community_id, member_id, Asset.POINT)
    assert balances is not None, f"member {member_id} has no points account"
    return star, int(balances.available)


async def _with_eligibility(
    conn: AsyncConnection, principal: Principal, rows: list[Any], route: Route | None = None
) -> list[dict[str, Any]]:
    """The views; across communities with the merchant's community and name; for a
    resident, whether they may redeem each now (across: at what cost in their points)."""
    views = [reward_view(r) for r in rows]
    if route is not None and rows:
        names = await community_queries.display_names(conn, {r.merchant_id for r in rows})
        for row, view in zip(rows, views, strict=True):
            view["community_id"] = str(row.community_id)
            view["merchant_name"] = names.get(row.merchant_id, "")
    if principal.role is not Role.RESIDENT or principal.subject_id is None or not rows:
        return views
    star, available = await standing(conn, principal.community_id, principal.subject_id)
    rate_from, rate_to = (1, 1) if route is None else await route.rate(conn, Asset.POINT)
    worth = rules.worth_there(available, rate_from, rate_to)  # the member's points, in the rewards' points
    now = await queries.db_now(conn)
    tz = (await community_zone(conn, rows[0].community_id)).key  # the rewards' limit periods are theirs
    used = await queries.used_now(conn, principal.subject_id, [r.id for r in rows], tz)
    for row, view in zip(rows, views, strict=True):
        reasons = rules.unavailable(row, rules.Standing(star, worth, used.get(row.id, 0)), now)
        price = rules.member_price(row.price_points, row.star_prices, star)
        view["eligibility"] = {
            "may_redeem": not reasons,
            "reasons": reasons,
            "price_points": price,
            "star_level": star,
        }
        if route is not None:
            view["eligibility"]["pay_points"] = rules.cost_at(price, rate_from, rate_to)
            view["eligibility"]["rate"] = {"from": rate_from, "to": rate_to}
    return views

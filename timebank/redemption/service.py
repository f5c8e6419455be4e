"""Rewards and redemptions at partner merchants (志愿服务爱心兑换). Domain logic only.

A redemption is a pending hold on the member's ``POINT`` account (kind
``redemption``) towards the merchant's, with a one-time voucher. Locks are taken in
one order everywhere: the redemption, then its reward, then the limit counter, then
(inside the ledger) the accounts. The reward row is locked for the whole of a
redemption, so its stock and the members' limits are decided one at a time per
reward; the statements that take stock and count limits are conditional as well,
and the ledger refuses a hold the member's points do not cover.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import schemas
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.policy import current_policy
from timebank.core.problems import (
    BadRequest,
    DomainError,
    Forbidden,
    HoldAlreadyResolved,
    HoldExpired,
    InsufficientFunds,
    NotFound,
)
from timebank.core.roles import Role
from timebank.core.terms import Asset, Kind, Layer, Phase
from timebank.ledger import service as ledger
from timebank.log.keys import Signer
from timebank.redemption import rules, vouchers
from timebank.security import Principal
from timebank.volunteer.service import lifetime_minutes, member_exists

MAX_STATEMENT_DAYS = 366


class RewardUnavailable(DomainError):
    slug, status, title = "reward-unavailable", 409, "The member may not redeem this reward now"

    def __init__(self, reason: str) -> None:
        super().__init__(rules.REASONS[reason], reason=reason)


class WrongCode(DomainError):
    slug, status, title = "wrong-voucher-code", 422, "The voucher code does not match this redemption"


class VoucherUsed(DomainError):
    slug, status, title = "voucher-used", 409, "The voucher was already confirmed, cancelled or expired"


class VoucherExpired(DomainError):
    slug, status, title = "voucher-expired", 409, "The voucher has expired"


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


def _time(value: datetime | None) -> str | None:
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
        "valid_from": _time(row.valid_from),
        "valid_until": _time(row.valid_until),
        "active": row.active,
        "created_at": rfc3339(row.created_at),
        "updated_at": rfc3339(row.updated_at),
    }


def _may_manage(principal: Principal, merchant_id: uuid.UUID) -> bool:
    return principal.is_admin or (principal.role is Role.MERCHANT and principal.subject_id == merchant_id)


async def _is_merchant(conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID) -> bool:
    return (
        await conn.execute(
            text("SELECT 1 FROM parties WHERE id = :p AND community_id = :c AND kind = 'merchant'"),
            {"p": party_id, "c": community_id},
        )
    ).first() is not None


async def create_reward(conn: AsyncConnection, principal: Principal, body: RewardIn) -> dict[str, Any]:
    if principal.role is Role.MERCHANT:
        if body.merchant_id not in (None, principal.subject_id):
            raise Forbidden("a merchant key publishes rewards of its own merchant only")
        merchant_id = principal.subject_id
    elif principal.is_admin:
        if body.merchant_id is None:
            raise BadRequest("merchant_id is required")
        merchant_id = body.merchant_id
    else:
        raise Forbidden("only merchants and admins publish rewards")
    assert merchant_id is not None
    if not await _is_merchant(conn, principal.community_id, merchant_id):
        raise NotFound(f"merchant {merchant_id} not found")
    columns = _checked(_columns(msgspec.structs.asdict(body)))
    row = (
        await conn.execute(
            text(
                f"INSERT INTO rewards (community_id, merchant_id, created_by, {', '.join(COLUMNS)}) "
                f"VALUES (:c, :m, :by, {', '.join(':' + k for k in COLUMNS)}) RETURNING *".replace(
                    ":star_prices", "CAST(:star_prices AS jsonb)"
                )
            ),
            {
                "c": principal.community_id,
                "m": merchant_id,
                "by": principal.key_id,
                **{k: columns.get(k) for k in COLUMNS},
                "star_prices": msgspec.json.encode(columns["star_prices"]).decode(),
            },
        )
    ).one()
    return reward_view(row)


async def _lock_reward(conn: AsyncConnection, community_id: uuid.UUID, reward_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(
            text("SELECT * FROM rewards WHERE id = :r AND community_id = :c FOR UPDATE"),
            {"r": reward_id, "c": community_id},
        )
    ).first()
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
    row = await _lock_reward(conn, principal.community_id, reward_id)
    if not _may_manage(principal, row.merchant_id):
        raise Forbidden("only the reward's merchant or an admin changes it")
    changes = (
        {}
        if patch is None
        else _columns({k: v for k, v in msgspec.structs.asdict(patch).items() if v is not msgspec.UNSET})
    )
    merged = _checked({**{k: getattr(row, k) for k in COLUMNS}, **changes})
    merged["star_prices"] = msgspec.json.encode(merged["star_prices"]).decode()
    row = (
        await conn.execute(
            text(
                f"UPDATE rewards SET {', '.join(f'{k} = :{k}' for k in COLUMNS)}, ".replace(
                    ":star_prices", "CAST(:star_prices AS jsonb)"
                )
                + "active = active AND NOT :off, updated_at = now() WHERE id = :id RETURNING *"
            ),
            {**merged, "off": deactivate, "id": reward_id},
        )
    ).one()
    return reward_view(row)


async def get_reward(conn: AsyncConnection, principal: Principal, reward_id: uuid.UUID) -> dict[str, Any]:
    row = (
        await conn.execute(
            text("SELECT * FROM rewards WHERE id = :r AND community_id = :c"),
            {"r": reward_id, "c": principal.community_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"reward {reward_id} not found")
    items = await _with_eligibility(conn, principal, [row])
    return items[0]


async def list_rewards(
    conn: AsyncConnection,
    principal: Principal,
    *,
    merchant_id: uuid.UUID | None,
    active: bool | None,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Rewards, oldest first; for a resident each says whether they may redeem it now."""
    rows = (
        await conn.execute(
            text(
                "SELECT * FROM rewards WHERE community_id = :c "
                "AND (CAST(:m AS uuid) IS NULL OR merchant_id = :m) AND (CAST(:a AS boolean) IS NULL OR active = :a) "
                "AND (CAST(:after AS uuid) IS NULL OR (created_at, id) > "
                "     (SELECT created_at, id FROM rewards WHERE id = :after)) "
                "ORDER BY created_at, id LIMIT :n"
            ),
            {"c": principal.community_id, "m": merchant_id, "a": active, "after": cursor, "n": limit + 1},
        )
    ).all()
    page = rows[:limit]
    return await _with_eligibility(conn, principal, page), (str(page[-1].id) if len(rows) > limit else None)


async def _standing(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> tuple[int, int]:
    """(star level, available points) of a member now."""
    _, policy, _ = await current_policy(conn, community_id)
    star = policy.star_level(await lifetime_minutes(conn, member_id))
    available = (
        await conn.execute(
            text(
                "SELECT credits_posted - debits_posted - debits_pending FROM accounts "
                "WHERE party_id = :m AND community_id = :c AND asset = 'POINT'"
            ),
            {"m": member_id, "c": community_id},
        )
    ).scalar_one()
    return star, int(available)


_USED = text(
    "SELECT r.id, coalesce(u.used, 0) AS used FROM rewards r JOIN communities c ON c.id = r.community_id "
    "LEFT JOIN redemption_counts u ON u.reward_id = r.id AND u.member_id = :m "
    " AND u.period_start = reward_period_start(r.limit_period, c.timezone, now()) "
    "WHERE r.id = ANY(:ids)"
)


async def _with_eligibility(
    conn: AsyncConnection, principal: Principal, rows: list[Any]
) -> list[dict[str, Any]]:
    views = [reward_view(r) for r in rows]
    if principal.role is not Role.RESIDENT or principal.subject_id is None or not rows:
        return views
    star, available = await _standing(conn, principal.community_id, principal.subject_id)
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    used = {
        r.id: r.used
        for r in await conn.execute(_USED, {"m": principal.subject_id, "ids": [r.id for r in rows]})
    }
    for row, view in zip(rows, views, strict=True):
        reasons = rules.unavailable(row, rules.Standing(star, available, used.get(row.id, 0)), now)
        view["eligibility"] = {
            "may_redeem": not reasons,
            "reasons": reasons,
            "price_points": rules.member_price(row.price_points, row.star_prices, star),
            "star_level": star,
        }
    return views


# --- redemptions --------------------------------------------------------------------------


def redemption_view(
    row: Any, *, signer: Signer | None = None, title: str | None = None, show_code: bool = False
) -> dict[str, Any]:
    view: dict[str, Any] = {
        "id": str(row.id),
        "status": row.status,
        "reward_id": str(row.reward_id),
        "merchant_id": str(row.merchant_id),
        "member_id": str(row.member_id),
        "price_points": row.price_points,
        "star_level": row.star_level,
        "expires_at": rfc3339(row.expires_at),
        "created_at": rfc3339(row.created_at),
        "hold_id": str(row.hold_id),
        "resolution_id": None if row.resolution_id is None else str(row.resolution_id),
        "resolved_at": _time(row.resolved_at),
    }
    if title is not None:
        view["title"] = title
    if show_code:
        view["code"] = row.code
    if signer is not None:
        view["code"] = row.code
        view["qr"] = vouchers.sign_token(
            signer,
            vouchers.VOUCHER,
            row.expires_at,
            {
                "redemption_id": str(row.id),
                "community_id": str(row.community_id),
                "reward_id": str(row.reward_id),
                "merchant_id": str(row.merchant_id),
                "member_id": str(row.member_id),
                "code": row.code,
                "price_points": row.price_points,
            },
        )
    return view


async def published_keys(conn: AsyncConnection, signer: Signer) -> dict[str, bytes]:
    keys = {
        r.kid: bytes(r.public_key) for r in await conn.execute(text("SELECT kid, public_key FROM log_keys"))
    }
    keys[signer.kid] = signer.public_key
    return keys


async def member_token(
    conn: AsyncConnection, principal: Principal, member_id: uuid.UUID, signer: Signer
) -> dict[str, Any]:
    """A resident's consent, shown as a QR, for a merchant to redeem on their behalf."""
    if principal.role is not Role.RESIDENT or principal.subject_id != member_id:
        raise NotFound(f"member {member_id} not found")
    await member_exists(conn, principal, member_id)
    _, policy, _ = await current_policy(conn, principal.community_id)
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    expires = now + timedelta(seconds=policy.voucher_seconds)
    token = vouchers.sign_token(
        signer,
        vouchers.MEMBER,
        expires,
        {"community_id": str(principal.community_id), "member_id": str(member_id), "nonce": uuid.uuid4().hex},
    )
    return {"token": token, "expires_at": rfc3339(expires)}


async def _party_point_account(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID
) -> uuid.UUID:
    account = (
        await conn.execute(
            text("SELECT id FROM accounts WHERE party_id = :p AND community_id = :c AND asset = 'POINT'"),
            {"p": party_id, "c": community_id},
        )
    ).scalar_one_or_none()
    if account is None:
        raise NotFound(f"member {party_id} not found")
    return account


async def redeem(
    conn: AsyncConnection,
    principal: Principal,
    reward_id: uuid.UUID,
    member_id: uuid.UUID,
    *,
    token: str | None,
    signer: Signer,
    claim: ledger.Claim,
) -> dict[str, Any]:
    """Check every rule, reserve one unit and the member's price (a pending hold)."""
    nonce = None
    if principal.role is Role.RESIDENT:
        if principal.subject_id != member_id:
            raise Forbidden("a resident redeems for themselves only")
        if token is not None:
            raise BadRequest("member_token is for merchants redeeming on a resident's behalf")
    elif principal.role is Role.MERCHANT:
        if token is None:
            raise BadRequest("a merchant redeems with the resident's member_token (their QR)")
        now = (await conn.execute(text("SELECT now()"))).scalar_one()
        try:
            claims = vouchers.read_token(token, vouchers.MEMBER, await published_keys(conn, signer), now)
        except vouchers.TokenError as exc:
            raise BadRequest(f"member_token: {exc}") from None
        if claims.get("member_id") != str(member_id) or claims.get("community_id") != str(
            principal.community_id
        ):
            raise BadRequest("member_token is not this member's")
        nonce = claims["nonce"]
        if (
            await conn.execute(text("SELECT 1 FROM redemptions WHERE token_nonce = :n"), {"n": nonce})
        ).first():
            raise BadRequest("member_token was already used; ask the resident for a new one")
    else:
        raise Forbidden("a resident redeems, or a merchant with the resident's member_token")

    reward = await _lock_reward(conn, principal.community_id, reward_id)
    if principal.role is Role.MERCHANT and reward.merchant_id != principal.subject_id:
        raise Forbidden("a merchant redeems its own rewards only")
    member_account = await _party_point_account(conn, principal.community_id, member_id)
    star, available = await _standing(conn, principal.community_id, member_id)
    tz = (await community_zone(conn, principal.community_id)).key
    now, period_start = (
        await conn.execute(
            text(
                "SELECT now(), CASE WHEN CAST(:p AS text) IS NULL THEN NULL "
                "ELSE reward_period_start(CAST(:p AS text), :tz, now()) END"
            ),
            {"p": reward.limit_period, "tz": tz},
        )
    ).one()
    used = 0
    if period_start is not None:
        used = (
            await conn.execute(
                text(
                    "SELECT used FROM redemption_counts WHERE reward_id = :r AND member_id = :m AND period_start = :s"
                ),
                {"r": reward_id, "m": member_id, "s": period_start},
            )
        ).scalar_one_or_none() or 0
    reasons = rules.unavailable(reward, rules.Standing(star, available, used), now)
    if reasons:
        raise RewardUnavailable(reasons[0])
    price = rules.member_price(reward.price_points, reward.star_prices, star)

    # The database decides again, whatever ran concurrently: one unit of stock ...
    if (
        await conn.execute(
            text(
                "UPDATE rewards SET stock = stock - 1, held = held + 1 WHERE id = :r AND (stock IS NULL OR stock > 0) "
                "RETURNING id"
            ),
            {"r": reward_id},
        )
    ).first() is None:
        raise RewardUnavailable("out_of_stock")
    # ... one more of the member's limit in this period ...
    if (
        period_start is not None
        and (
            await conn.execute(
                text(
                    "INSERT INTO redemption_counts (reward_id, member_id, period_start, used) VALUES (:r, :m, :s, 1) "
                    "ON CONFLICT (reward_id, member_id, period_start) DO UPDATE SET used = redemption_counts.used + 1 "
                    "WHERE redemption_counts.used < :limit RETURNING used"
                ),
                {"r": reward_id, "m": member_id, "s": period_start, "limit": reward.limit_count},
            )
        ).first()
        is None
    ):
        raise RewardUnavailable("limit_reached")
    # ... and the points, held by the ledger (which refuses what the balance does not cover).
    _, policy, _ = await current_policy(conn, principal.community_id)
    merchant_account = await _party_point_account(conn, principal.community_id, reward.merchant_id)
    try:
        hold = await ledger.post(
            conn,
            community_id=principal.community_id,
            kind=Kind.REDEMPTION,
            phase=Phase.PENDING,
            legs=ledger.legs_of(
                [ledger.Movement(member_account, merchant_account, Asset.POINT, price)], Layer.PENDING
            ),
            principal_id=principal.key_id,
            memo=reward.title[: ledger.MAX_MEMO],
            claim=claim,
            timeout_seconds=policy.voucher_seconds,
        )
    except InsufficientFunds:
        raise RewardUnavailable("insufficient_points") from None
    redemption_id = uuid.uuid4()
    for _attempt in range(5):  # a code is unique among open vouchers; a clash is ~1 in 10^11
        try:
            async with conn.begin_nested():
                await conn.execute(
                    text(
                        "INSERT INTO redemptions (id, community_id, reward_id, merchant_id, member_id, star_level, "
                        "price_points, status, code, hold_id, period_start, expires_at, token_nonce, created_by) "
                        "VALUES (:id, :c, :r, :mer, :m, :star, :price, 'held', :code, :hold, :s, :exp, :nonce, :by)"
                    ),
                    {
                        "id": redemption_id,
                        "c": principal.community_id,
                        "r": reward_id,
                        "mer": reward.merchant_id,
                        "m": member_id,
                        "star": star,
                        "price": price,
                        "code": vouchers.new_code(),
                        "hold": uuid.UUID(hold["id"]),
                        "s": period_start,
                        "exp": datetime.fromisoformat(hold["timeout_at"]),
                        "nonce": nonce,
                        "by": principal.key_id,
                    },
                )
            break
        except IntegrityError as exc:
            if "redemptions_token_nonce_key" in str(exc.orig):  # the same token, used concurrently
                raise BadRequest("member_token was already used; ask the resident for a new one") from None
            if "redemptions_open_code" not in str(exc.orig):
                raise
    else:
        raise AssertionError("no free voucher code in five tries")
    return await redemption_answer(conn, principal.community_id, uuid.UUID(hold["id"]), signer)


async def redemption_answer(
    conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID, signer: Signer
) -> dict[str, Any]:
    """The answer to a redemption step (also its idempotent replay): the redemption
    with its voucher, and the ledger transaction the step made."""
    row = (
        await conn.execute(
            text(
                "SELECT d.*, r.title FROM redemptions d JOIN rewards r ON r.id = d.reward_id "
                "WHERE d.community_id = :c AND (d.hold_id = :t OR d.resolution_id = :t)"
            ),
            {"c": community_id, "t": tx_id},
        )
    ).first()
    assert row is not None, f"no redemption for transaction {tx_id}"
    view = redemption_view(row, signer=signer if row.hold_id == tx_id else None, title=row.title)
    return {**view, "transaction": await ledger.created_view(conn, community_id, tx_id)}


async def _lock_redemption(conn: AsyncConnection, community_id: uuid.UUID, redemption_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(
            text("SELECT * FROM redemptions WHERE id = :id AND community_id = :c FOR UPDATE"),
            {"id": redemption_id, "c": community_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"redemption {redemption_id} not found")
    return row


def _not_open(row: Any) -> DomainError:
    when = "" if row.resolved_at is None else f" at {rfc3339(row.resolved_at)}"
    return VoucherUsed(f"this voucher is {row.status}{when}; it cannot be used again")


async def confirm(
    conn: AsyncConnection,
    principal: Principal,
    redemption_id: uuid.UUID,
    *,
    code: str | None,
    qr: str | None,
    signer: Signer,
    claim: ledger.Claim,
) -> dict[str, Any]:
    """The merchant, at the counter: the code matches, the hold is posted to the merchant."""
    if principal.role is not Role.MERCHANT:
        raise Forbidden("the reward's merchant confirms a redemption")
    row = await _lock_redemption(conn, principal.community_id, redemption_id)
    if row.merchant_id != principal.subject_id:
        raise Forbidden("this voucher is for another merchant's reward")
    if row.status != "held":
        raise _not_open(row)
    now = (await conn.execute(text("SELECT now()"))).scalar_one()
    if qr is not None:
        try:
            claims = vouchers.read_token(qr, vouchers.VOUCHER, await published_keys(conn, signer), now)
        except vouchers.TokenError as exc:
            raise WrongCode(f"qr: {exc}") from None
        if claims.get("redemption_id") != str(row.id):
            raise WrongCode("this QR is for another redemption")
        code = str(claims.get("code"))
    if code is None or vouchers.normalise_code(code) != row.code:
        raise WrongCode("the code does not match this redemption; check it with the resident")
    if now >= row.expires_at:
        raise VoucherExpired(
            f"this voucher expired at {rfc3339(row.expires_at)}; the resident may redeem again"
        )
    await _lock_reward(conn, principal.community_id, row.reward_id)
    try:
        tx = await ledger.resolve_hold(conn, principal, row.hold_id, Phase.POST, claim=claim, system=True)
    except (HoldExpired, HoldAlreadyResolved):
        raise VoucherExpired("this voucher's hold has expired; the resident may redeem again") from None
    await conn.execute(
        text("UPDATE rewards SET held = held - 1, redeemed = redeemed + 1 WHERE id = :r"),
        {"r": row.reward_id},
    )
    await _resolve(conn, row, "confirmed", uuid.UUID(tx["id"]), principal.key_id)
    return await redemption_answer(conn, principal.community_id, uuid.UUID(tx["id"]), signer)


async def _resolve(
    conn: AsyncConnection, row: Any, status: str, tx_id: uuid.UUID | None, by: uuid.UUID
) -> None:
    await conn.execute(
        text(
            "UPDATE redemptions SET status = :s, resolution_id = :t, resolved_by = :by, resolved_at = now() "
            "WHERE id = :id"
        ),
        {"s": status, "t": tx_id, "by": by, "id": row.id},
    )


async def _release(conn: AsyncConnection, row: Any) -> None:
    """Give back the unit of stock and the count toward the limit a held redemption took."""
    await conn.execute(
        text("UPDATE rewards SET stock = stock + 1, held = held - 1 WHERE id = :r"), {"r": row.reward_id}
    )  # stock NULL (unlimited) stays NULL
    if row.period_start is not None:
        await conn.execute(
            text(
                "UPDATE redemption_counts SET used = used - 1 "
                "WHERE reward_id = :r AND member_id = :m AND period_start = :s"
            ),
            {"r": row.reward_id, "m": row.member_id, "s": row.period_start},
        )


async def cancel(
    conn: AsyncConnection,
    principal: Principal,
    redemption_id: uuid.UUID,
    *,
    signer: Signer,
    claim: ledger.Claim,
) -> dict[str, Any]:
    """The resident, the merchant or an admin voids a held redemption."""
    row = await _lock_redemption(conn, principal.community_id, redemption_id)
    if principal.role is Role.RESIDENT and principal.subject_id != row.member_id:
        raise NotFound(f"redemption {redemption_id} not found")
    if principal.role is Role.MERCHANT and principal.subject_id != row.merchant_id:
        raise Forbidden("this voucher is for another merchant's reward")
    if principal.role not in (Role.RESIDENT, Role.MERCHANT, Role.ADMIN):
        raise Forbidden("the resident, the merchant or an admin cancels a redemption")
    if row.status != "held":
        raise _not_open(row)
    await _lock_reward(conn, principal.community_id, row.reward_id)
    try:
        tx = await ledger.resolve_hold(conn, principal, row.hold_id, Phase.VOID, claim=claim, system=True)
    except HoldAlreadyResolved:
        raise VoucherExpired("this voucher's hold has already expired") from None
    await _release(conn, row)
    await _resolve(conn, row, "cancelled", uuid.UUID(tx["id"]), principal.key_id)
    return await redemption_answer(conn, principal.community_id, uuid.UUID(tx["id"]), signer)


async def expire_due(conn: AsyncConnection, community_id: uuid.UUID, limit: int = 1000) -> int:
    """Void every held redemption past its expiry (the hold-timeout job and tests call it).

    Rows another process is working on are skipped (it resolves them); a hold the
    ledger's own timeout already expired is only released here.
    """
    rows = (
        await conn.execute(
            text(
                "SELECT * FROM redemptions WHERE community_id = :c AND status = 'held' AND expires_at <= now() "
                "ORDER BY expires_at, id LIMIT :n FOR UPDATE SKIP LOCKED"
            ),
            {"c": community_id, "n": limit},
        )
    ).all()
    system = Principal(uuid.UUID(int=0), community_id, Role.ADMIN, None)
    for row in rows:
        await _lock_reward(conn, community_id, row.reward_id)
        try:
            async with conn.begin_nested():
                tx_id = uuid.UUID(
                    (await ledger.resolve_hold(conn, system, row.hold_id, Phase.EXPIRE, system=True))["id"]
                )
        except HoldAlreadyResolved:
            tx_id = (
                await conn.execute(
                    text("SELECT id FROM transactions WHERE pending_id = :h"), {"h": row.hold_id}
                )
            ).scalar_one()
        await _release(conn, row)
        await _resolve(conn, row, "expired", tx_id, system.key_id)
    return len(rows)


async def get_redemption(
    conn: AsyncConnection, principal: Principal, redemption_id: uuid.UUID
) -> dict[str, Any]:
    row = (
        await conn.execute(
            text(
                "SELECT d.*, r.title FROM redemptions d JOIN rewards r ON r.id = d.reward_id "
                "WHERE d.id = :id AND d.community_id = :c"
            ),
            {"id": redemption_id, "c": principal.community_id},
        )
    ).first()
    if row is None or not _may_see(principal, row):
        raise NotFound(f"redemption {redemption_id} not found")
    return redemption_view(row, title=row.title, show_code=_own(principal, row) and row.status == "held")


def _own(principal: Principal, row: Any) -> bool:
    return principal.role is Role.RESIDENT and principal.subject_id == row.member_id


def _may_see(principal: Principal, row: Any) -> bool:
    return (
        principal.role in (Role.ADMIN, Role.AUDITOR)
        or _own(principal, row)
        or (principal.role is Role.MERCHANT and principal.subject_id == row.merchant_id)
    )


async def find_by_code(conn: AsyncConnection, principal: Principal, code: str) -> dict[str, Any]:
    """The counter: the open voucher of this merchant with this code."""
    if principal.role is not Role.MERCHANT:
        raise Forbidden("merchants look vouchers up by code")
    row = (
        await conn.execute(
            text(
                "SELECT d.*, r.title FROM redemptions d JOIN rewards r ON r.id = d.reward_id "
                "WHERE d.community_id = :c AND d.code = :code AND d.status = 'held' AND d.merchant_id = :m"
            ),
            {"c": principal.community_id, "code": vouchers.normalise_code(code), "m": principal.subject_id},
        )
    ).first()
    if row is None:
        raise NotFound("no open voucher of this merchant has that code")
    return redemption_view(row, title=row.title)


async def member_redemptions(
    conn: AsyncConnection,
    principal: Principal,
    member_id: uuid.UUID,
    cursor: uuid.UUID | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    if principal.role is Role.RESIDENT and principal.subject_id != member_id:
        raise NotFound(f"member {member_id} not found")
    if principal.role not in (Role.RESIDENT, Role.ADMIN, Role.AUDITOR):
        raise Forbidden("a member's redemptions are theirs, the admins' and the auditors' to read")
    await member_exists(conn, principal, member_id)  # not an empty page for no such member
    rows = (
        await conn.execute(
            text(
                "SELECT d.*, r.title FROM redemptions d JOIN rewards r ON r.id = d.reward_id "
                "WHERE d.community_id = :c AND d.member_id = :m "
                "AND (CAST(:after AS uuid) IS NULL OR (d.created_at, d.id) < "
                "     (SELECT created_at, id FROM redemptions WHERE id = :after)) "
                "ORDER BY d.created_at DESC, d.id DESC LIMIT :n"
            ),
            {"c": principal.community_id, "m": member_id, "after": cursor, "n": limit + 1},
        )
    ).all()
    page = rows[:limit]
    items = [
        redemption_view(r, title=r.title, show_code=_own(principal, r) and r.status == "held") for r in page
    ]
    return items, (str(page[-1].id) if len(rows) > limit else None)


# --- statements ---------------------------------------------------------------------------


async def statement(
    conn: AsyncConnection,
    principal: Principal,
    merchant_id: uuid.UUID,
    first: date,
    last: date,
) -> dict[str, Any]:
    """A merchant's confirmed redemptions between two local dates (inclusive), with totals."""
    if principal.role is Role.MERCHANT and principal.subject_id != merchant_id:
        raise NotFound(f"merchant {merchant_id} not found")
    if principal.role not in (Role.MERCHANT, Role.ADMIN, Role.AUDITOR):
        raise Forbidden("a statement is for its merchant, the admins and the auditors")
    if not await _is_merchant(conn, principal.community_id, merchant_id):
        raise NotFound(f"merchant {merchant_id} not found")
    if last < first or (last - first).days >= MAX_STATEMENT_DAYS:
        raise BadRequest(f"to is on or after from, at most {MAX_STATEMENT_DAYS} days")
    tz: ZoneInfo = await community_zone(conn, principal.community_id)
    start = datetime.combine(first, time(0), tz)
    end = datetime.combine(last + timedelta(days=1), time(0), tz)
    rows = (
        await conn.execute(
            text(
                "SELECT d.id, d.resolved_at, d.reward_id, r.title, d.member_id, d.price_points, d.resolution_id "
                "FROM redemptions d JOIN rewards r ON r.id = d.reward_id "
                "WHERE d.merchant_id = :m AND d.community_id = :c AND d.status = 'confirmed' "
                "AND d.resolved_at >= :s AND d.resolved_at < :e ORDER BY d.resolved_at, d.id"
            ),
            {"m": merchant_id, "c": principal.community_id, "s": start, "e": end},
        )
    ).all()
    items = [
        {
            "redemption_id": str(r.id),
            "confirmed_at": rfc3339(r.resolved_at),
            "reward_id": str(r.reward_id),
            "title": r.title,
            "member_id": str(r.member_id),
            "points": r.price_points,
            "transaction_id": str(r.resolution_id),
        }
        for r in rows
    ]
    return {
        "merchant_id": str(merchant_id),
        "from": first.isoformat(),
        "to": last.isoformat(),
        "timezone": tz.key,
        "items": items,
        "totals": {"redemptions": len(items), "points": sum(i["points"] for i in items)},
    }


CSV_COLUMNS = ("redemption_id", "confirmed_at", "reward_id", "title", "member_id", "points", "transaction_id")


def statement_csv(body: dict[str, Any]) -> str:
    """The statement as CSV (UTF-8 with BOM, so spreadsheet programs read the Chinese)."""
    out = io.StringIO()
    out.write("\ufeff")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for item in body["items"]:
        writer.writerow([item[c] for c in CSV_COLUMNS])
    writer.writerow(
        ["total", f"{body['totals']['redemptions']} redemptions", "", "", "", body["totals"]["points"], ""]
    )
    return out.getvalue()

"""Redemptions: redeem (check the rules, hold the points, issue a voucher), confirm
at the counter, cancel, and the timeout of an unconfirmed voucher.

A redemption is a pending hold on the member's ``POINT`` account (kind
``redemption``) towards the merchant's, with a one-time voucher. Locks are taken in
one order everywhere: the redemption, then its reward, then the limit counter, then
(inside the ledger) the accounts. The reward row is locked for the whole of a
redemption, so its stock and the members' limits are decided one at a time per
reward; the statements that take stock and count limits are conditional as well,
and the ledger refuses a hold the member's points do not cover. Reading
redemptions back (views, pages, the counter's lookup) is in ``redemption_views.py``.

**At a merchant of another community of the district** (issue 18: 通存通兑), the same
steps, through a crossing. The member of A redeems B's reward with the same route (the
reward's id says where it is); the rules are the same (the member's own star level in
A, the reward's stock, limits and prices in B's points). The member pays
``rules.cost_at(price)`` of A's points at the district's rate now, the least whole
number whose worth in B's points (rounded down, as a crossing rounds) covers the price;
the rate is fixed with the hold, like a quoted price, for the voucher's few minutes.
The hold is in A's ledger, from the member to A's ``clearing`` account, and the trust
lines are checked then too (without locks: an early refusal). B's merchant confirms
with the same code or QR: ``post_crossing`` posts the hold as the crossing's sending
part, the district's part and B's (B's clearing → the merchant, ``worth_there(paid)``
≥ price), checking the limits under its locks; the redemption is confirmed in the same
database transaction, or nothing is. Cancel and expiry void the hold in A's ledger (no
crossing). The redemption row is B's (``community_id``: the counter, statements,
reports) and names the member's community (``member_community_id``).

Idempotency: a step's key is the asking key's, answered in its community. When the
step's ledger transaction is in another community's ledger (B's merchant confirming or
cancelling, or redeeming for an A member with their token), the answer is recorded in
the asker's community in the same database transaction (``_answer_here``).
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
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
from timebank.core.terms import Asset, Kind, Layer, Phase, SystemRole
from timebank.db import driver
from timebank.districts import crossing
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger
from timebank.log.keys import Signer
from timebank.log.registry import published_keys
from timebank.redemption import queries, rules, vouchers
from timebank.redemption.redemption_views import across, redemption_answer
from timebank.redemption.rewards import RewardUnavailable, find_reward_for, lock_reward, standing


class WrongCode(DomainError):
    slug, status, title = "wrong-voucher-code", 422, "The voucher code does not match this redemption"


class VoucherUsed(DomainError):
    slug, status, title = "voucher-used", 409, "The voucher was already confirmed, cancelled or expired"


class VoucherExpired(DomainError):
    slug, status, title = "voucher-expired", 409, "The voucher has expired"


RESOLVED = {Phase.POST.value, Phase.VOID.value, Phase.EXPIRE.value}  # the phases that resolve a hold


# --- redeem, phase by phase ----------------------------------------------------------------


async def _token_nonce(
    conn: AsyncConnection, principal: Principal, member_id: uuid.UUID, token: str | None, signer: Signer
) -> tuple[str | None, uuid.UUID]:
    """Who may redeem for whom: the resident for themselves, or a merchant with the
    resident's unused member token; (the token's nonce, the member's community: the
    merchant's, or another of its district the token names)."""
    if principal.role is Role.RESIDENT:
        if principal.subject_id != member_id:
            raise Forbidden("a resident redeems for themselves only")
        if token is not None:
            raise BadRequest("member_token is for merchants redeeming on a resident's behalf")
        return None, principal.community_id
    if principal.role is not Role.MERCHANT:
        raise Forbidden("a resident redeems, or a merchant with the resident's member_token")
    if token is None:
        raise BadRequest("a merchant redeems with the resident's member_token (their QR)")
    now = await queries.db_now(conn)
    try:
        claims = vouchers.read_token(token, vouchers.MEMBER, await published_keys(conn, signer), now)
    except vouchers.TokenError as exc:
        raise BadRequest(f"member_token: {exc}") from None
    if claims.get("member_id") != str(member_id):
        raise BadRequest("member_token is not this member's")
    if await queries.nonce_used(conn, claims["nonce"]):
        raise BadRequest("member_token was already used; ask the resident for a new one")
    return str(claims["nonce"]), uuid.UUID(str(claims["community_id"]))


@dataclass(frozen=True, slots=True)
class Where:
    """Where a redemption happens: the member's community (its ledger holds the points)
    and, for a merchant of another community of the district, the route and the rate."""

    home: uuid.UUID
    route: crossing.Route | None = None
    rate_from: int = 1
    rate_to: int = 1


async def _checked_price(
    conn: AsyncConnection, where: Where, reward: Any, member_id: uuid.UUID
) -> tuple[int, int, date | None]:
    """Every rule, as the member stands now: (star level, price in the reward's points,
    limit period start). The member's available points count at their worth there."""
    star, available = await standing(conn, where.home, member_id)
    tz = (await community_zone(conn, reward.community_id)).key
    now, period_start = await queries.period_now(conn, reward.limit_period, tz)
    used = 0 if period_start is None else await queries.used_in(conn, reward.id, member_id, period_start)
    worth = rules.worth_there(available, where.rate_from, where.rate_to)
    reasons = rules.unavailable(reward, rules.Standing(star, worth, used), now)
    if reasons:
        raise RewardUnavailable(reasons[0])
    return star, rules.member_price(reward.price_points, reward.star_prices, star), period_start


async def _paid(conn: AsyncConnection, where: Where, price: int) -> int:
    """What the member's account pays for ``price`` (the reward's points): the price at
    home; across, ``rules.cost_at``, which is exactly what a crossing of it sends, and
    within the trust lines as they stand (checked again, under locks, at confirmation)."""
    if where.route is None:
        return price
    paid = rules.cost_at(price, where.rate_from, where.rate_to)
    if paid > ledger.MAX_AMOUNT:
        raise RewardUnavailable("insufficient_points")
    amt = _amounts(paid, where.rate_from, where.rate_to, price)
    await crossing.precheck_limits(conn, where.route, Asset.POINT, amt)
    return paid


def _amounts(paid: int, rate_from: int, rate_to: int, price: int) -> crossing.Amounts:
    """The crossing of ``paid`` at the rate: all of it is sent and at least the price arrives."""
    amt = crossing.amounts(Asset.POINT, paid, rate_from, rate_to)
    assert amt.sent == paid and amt.received >= price, (amt, price)
    return amt


async def _reserve_unit(
    conn: AsyncConnection, reward: Any, member_id: uuid.UUID, period_start: date | None
) -> None:
    """The database decides again, whatever ran concurrently: one unit of stock and
    one more of the member's limit in this period."""
    if not await queries.take_unit(conn, reward.id):
        raise RewardUnavailable("out_of_stock")
    if period_start is not None and not await queries.count_toward_limit(
        conn, reward.id, member_id, period_start, reward.limit_count
    ):
        raise RewardUnavailable("limit_reached")


async def _hold_points(
    conn: AsyncConnection,
    principal: Principal,
    where: Where,
    reward: Any,
    member_account: uuid.UUID,
    paid: int,
    claim: ledger.Claim | None,
) -> dict[str, Any]:
    """The points, held by the member's ledger (which refuses what the balance does not
    cover), toward the merchant at home, else toward the home community's clearing
    account; for as long as the merchant's community lets a voucher live."""
    _, policy, _ = await current_policy(conn, reward.community_id)
    if where.route is None:
        to_account = await _point_account(conn, where.home, reward.merchant_id)
    else:
        to_account = await crossing.ledger_system_account(conn, where.home, SystemRole.CLEARING, Asset.POINT)
    try:
        return await ledger.post(
            conn,
            community_id=where.home,
            kind=Kind.REDEMPTION,
            phase=Phase.PENDING,
            legs=ledger.legs_of(
                [ledger.Movement(member_account, to_account, Asset.POINT, paid)], Layer.PENDING
            ),
            principal_id=principal.key_id,
            memo=reward.title[: ledger.MAX_MEMO],
            claim=claim,
            timeout_seconds=policy.voucher_seconds,
        )
    except InsufficientFunds:
        raise RewardUnavailable("insufficient_points") from None


async def _issue_voucher(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """The redemption row with a fresh code (unique among open vouchers; a clash is ~1 in 10^11)."""
    for _attempt in range(5):
        try:
            async with conn.begin_nested():
                await queries.insert_redemption(conn, {**values, "code": vouchers.new_code()})
            return
        except IntegrityError as exc:
            if "redemptions_token_nonce_key" in str(exc.orig):  # the same token, used concurrently
                raise BadRequest("member_token was already used; ask the resident for a new one") from None
            if "redemptions_open_code" not in str(exc.orig):
                raise
    raise AssertionError("no free voucher code in five tries")


async def _point_account(conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID) -> uuid.UUID:
    account = await ledger_queries.party_account(conn, community_id, party_id, Asset.POINT)
    if account is None:
        raise NotFound(f"member {party_id} not found")
    return account.id


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
    """Check every rule, reserve one unit and the member's price (a pending hold).

    The reward may be another community's of the district (for a resident: any reward
    id they can list; for a merchant: its own, for a member of another community with
    that member's token): see the module's docstring."""
    nonce, home = await _token_nonce(conn, principal, member_id, token, signer)
    if principal.role is Role.MERCHANT:
        reward = await lock_reward(conn, principal.community_id, reward_id)
        if reward.merchant_id != principal.subject_id:
            raise Forbidden("a merchant redeems its own rewards only")
        route = (
            None
            if home == reward.community_id
            else await crossing.route_between(conn, home, reward.community_id)
        )
    else:
        reward, route = await find_reward_for(conn, home, reward_id, lock=True)
    where = Where(home) if route is None else Where(home, route, *await route.rate(conn, Asset.POINT))
    member_account = await _point_account(conn, home, member_id)
    star, price, period_start = await _checked_price(conn, where, reward, member_id)
    paid = await _paid(conn, where, price)
    await _reserve_unit(conn, reward, member_id, period_start)
    here = principal.community_id == home  # the key's answer rides the hold in its own ledger
    hold = await _hold_points(conn, principal, where, reward, member_account, paid, claim if here else None)
    hold_id = uuid.UUID(hold["id"])
    await _issue_voucher(
        conn,
        {
            "id": uuid.uuid4(),
            "community_id": reward.community_id,
            "member_community_id": home,
            "reward_id": reward_id,
            "merchant_id": reward.merchant_id,
            "member_id": member_id,
            "star_level": star,
            "price_points": price,
            "paid_points": paid,
            "rate_from": where.rate_from,
            "rate_to": where.rate_to,
            "status": "held",
            "hold_id": hold_id,
            "period_start": period_start,
            "expires_at": datetime.fromisoformat(hold["timeout_at"]),
            "token_nonce": nonce,
            "created_by": principal.key_id,
        },
    )
    answer = await redemption_answer(conn, principal.community_id, hold_id, signer)
    return answer if here else await _answer_here(conn, principal, claim, answer)


async def _answer_here(
    conn: AsyncConnection, principal: Principal, claim: ledger.Claim, answer: dict[str, Any]
) -> dict[str, Any]:
    """The step's answer, recorded under the key in the asking key's community, in this
    database transaction, when the step's ledger transaction is another community's
    (whose ledger cannot hold this community's key): a replay answers it, and a
    concurrent request with the same key waits for this one, then answers it too."""
    recorded = await (await driver(conn)).fetchval(
        ledger_queries.RECORD_ANSWER_SQL,
        principal.community_id,
        claim.key,
        claim.request_hash,
        principal.key_id,
        201,
        json.dumps(answer, ensure_ascii=False),
    )
    if not recorded:
        raise ledger.KeyAlreadyUsed()
    claim.used = True
    return answer


# --- confirm, cancel, time out ---------------------------------------------------------------


async def _lock_redemption(conn: AsyncConnection, community_id: uuid.UUID, redemption_id: uuid.UUID) -> Any:
    row = await queries.lock_redemption(conn, community_id, redemption_id)
    if row is None:
        raise NotFound(f"redemption {redemption_id} not found")
    return row


def _not_open(row: Any) -> DomainError:
    when = "" if row.resolved_at is None else f" at {rfc3339(row.resolved_at)}"
    return VoucherUsed(f"this voucher is {row.status}{when}; it cannot be used again")


async def _presented_code(
    conn: AsyncConnection, row: Any, code: str | None, qr: str | None, signer: Signer
) -> None:
    """The code (typed, or read from the voucher's QR) is this open, unexpired voucher's."""
    now = await queries.db_now(conn)
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
    await _presented_code(conn, row, code, qr, signer)
    reward = await lock_reward(conn, row.community_id, row.reward_id)
    if across(row):
        return await _confirm_across(conn, principal, row, reward.title, signer, claim)
    try:
        tx = await ledger.resolve_hold(conn, principal, row.hold_id, Phase.POST, claim=claim, system=True)
    except (HoldExpired, HoldAlreadyResolved):
        raise VoucherExpired("this voucher's hold has expired; the resident may redeem again") from None
    await queries.post_unit(conn, row.reward_id)
    await queries.resolve(conn, row.id, "confirmed", uuid.UUID(tx["id"]), principal.key_id)
    return await redemption_answer(conn, principal.community_id, uuid.UUID(tx["id"]), signer)


async def _confirm_across(
    conn: AsyncConnection, principal: Principal, row: Any, title: str, signer: Signer, claim: ledger.Claim
) -> dict[str, Any]:
    """The hold in the member's ledger posts as the sending part of a crossing to the
    merchant, at the rate of the hold; the limits are decided under the crossing's locks
    (a refusal changes nothing: the voucher stays held)."""
    route = await crossing.route_between(conn, row.member_community_id, row.community_id)
    amt = _amounts(row.paid_points, row.rate_from, row.rate_to, row.price_points)
    sender = await _point_account(conn, row.member_community_id, row.member_id)
    recipient = await _point_account(conn, row.community_id, row.merchant_id)
    try:
        done = await crossing.post_crossing(
            conn,
            route,
            Asset.POINT,
            amt,
            sender_account=sender,
            recipient_account=recipient,
            principal_id=principal.key_id,
            memo=title[: ledger.MAX_MEMO],
            claim=None,  # the merchant's key is answered in its own community (_answer_here)
            kind=Kind.REDEMPTION,
            held=row.hold_id,
        )
    except (HoldExpired, HoldAlreadyResolved):
        raise VoucherExpired("this voucher's hold has expired; the resident may redeem again") from None
    await queries.post_unit(conn, row.reward_id)
    await queries.resolve(conn, row.id, "confirmed", done.from_transaction_id, principal.key_id)
    answer = await redemption_answer(conn, principal.community_id, done.to_transaction_id, signer)
    return await _answer_here(conn, principal, claim, answer)


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
    await lock_reward(conn, row.community_id, row.reward_id)
    here = principal.community_id == row.member_community_id  # the hold is in the key's own ledger
    in_ledger = (
        principal if here else Principal(principal.key_id, row.member_community_id, principal.role, None)
    )
    try:
        tx = await ledger.resolve_hold(
            conn, in_ledger, row.hold_id, Phase.VOID, claim=claim if here else None, system=True
        )
    except HoldAlreadyResolved:
        raise VoucherExpired("this voucher's hold has already expired") from None
    await queries.release_unit(conn, row)
    await queries.resolve(conn, row.id, "cancelled", uuid.UUID(tx["id"]), principal.key_id)
    answer = await redemption_answer(conn, principal.community_id, uuid.UUID(tx["id"]), signer)
    return answer if here else await _answer_here(conn, principal, claim, answer)


async def expire_due(conn: AsyncConnection, community_id: uuid.UUID, limit: int = 1000) -> int:
    """Void every held redemption past its expiry whose hold is in this community's
    ledger (the member's: the hold-timeout job asks per ledger; tests call it too).

    Rows another process is working on are skipped (it resolves them); a hold the
    ledger's own timeout already expired is only released here.
    """
    rows = await queries.lock_due(conn, community_id, limit)
    system = Principal(uuid.UUID(int=0), community_id, Role.ADMIN, None)
    for row in rows:
        await lock_reward(conn, row.community_id, row.reward_id)
        try:
            async with conn.begin_nested():
                tx_id = uuid.UUID(
                    (await ledger.resolve_hold(conn, system, row.hold_id, Phase.EXPIRE, system=True))["id"]
                )
        except HoldAlreadyResolved:
            resolutions = await ledger_queries.related_transactions(conn, row.hold_id)
            tx_id = next((r.id for r in resolutions if r.phase in RESOLVED), None)  # the ledger's timeout
            assert tx_id is not None, f"hold {row.hold_id} is resolved, yet nothing resolves it"
        await queries.release_unit(conn, row)
        await queries.resolve(conn, row.id, "expired", tx_id, system.key_id)
    return len(rows)

"""How redemptions are shown: the voucher (code and signed QR), the answer to each
step, the resident's consent token, and the reads of residents, merchants and staff.

Kept apart from ``redemptions.py`` (which changes redemptions) because everything
here only reads, and decides who may see which voucher's code.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as community_queries
from timebank.community.service import member_exists
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.policy import current_policy
from timebank.core.problems import Forbidden, NotFound
from timebank.core.roles import Role
from timebank.districts import queries as district_queries
from timebank.ledger import service as ledger
from timebank.log.keys import Signer
from timebank.log.registry import published_keys
from timebank.redemption import queries, rules, vouchers
from timebank.redemption.rewards import optional_time


def across(row: Any) -> bool:
    """Redeemed at a merchant of another community (the hold is in the member's ledger)."""
    return bool(row.member_community_id != row.community_id)


def _qr(signer: Signer, row: Any) -> str:
    claims = {
        "redemption_id": str(row.id),
        "community_id": str(row.community_id),
        "reward_id": str(row.reward_id),
        "merchant_id": str(row.merchant_id),
        "member_id": str(row.member_id),
        "code": row.code,
        "price_points": row.price_points,
    }
    if across(row):
        claims.update(member_community_id=str(row.member_community_id), paid_points=row.paid_points)
    return vouchers.sign_token(signer, vouchers.VOUCHER, row.expires_at, claims)


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
        "resolved_at": optional_time(row.resolved_at),
    }
    if across(row):
        view.update(
            community_id=str(row.community_id),
            member_community_id=str(row.member_community_id),
            paid_points=row.paid_points,
            received_points=rules.worth_there(row.paid_points, row.rate_from, row.rate_to),
            rate={"from": row.rate_from, "to": row.rate_to},
        )
    if title is not None:
        view["title"] = title
    if show_code:
        view["code"] = row.code
    if signer is not None:
        view["code"] = row.code
        view["qr"] = _qr(signer, row)
    return view


async def redemption_answer(
    conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID, signer: Signer
) -> dict[str, Any]:
    """The answer to a redemption step (also its idempotent replay): the redemption
    with its voucher, and the ledger transaction the step made.

    Across communities the hold and its resolution are in the member's community's
    ledger; a confirmation is answered with the merchant's part of the crossing (its
    credit in the merchant's ledger), ``tx_id`` then being that part."""
    row = await queries.redemption_of_transaction(conn, community_id, tx_id)
    crossing = None
    if row is None:
        crossing = await district_queries.crossing_of_transaction(conn, tx_id)
        assert crossing is not None, f"no redemption for transaction {tx_id}"
        row = await queries.redemption_of_transaction(conn, community_id, crossing.from_transaction_id)
    elif across(row) and row.status == "confirmed" and row.resolution_id == tx_id:
        crossing = await district_queries.crossing_of_transaction(conn, tx_id)
    assert row is not None, f"no redemption for transaction {tx_id}"
    view = redemption_view(row, signer=signer if row.hold_id == tx_id else None, title=row.title)
    if crossing is not None:
        view["crossing_id"] = str(crossing.id)
    ledger_of = row.member_community_id if tx_id in (row.hold_id, row.resolution_id) else row.community_id
    return {**view, "transaction": await ledger.created_view(conn, ledger_of, tx_id)}


async def member_token(
    conn: AsyncConnection, principal: Principal, member_id: uuid.UUID, signer: Signer
) -> dict[str, Any]:
    """A resident's consent, shown as a QR, for a merchant to redeem on their behalf."""
    if principal.role is not Role.RESIDENT or principal.subject_id != member_id:
        raise NotFound(f"member {member_id} not found")
    await member_exists(conn, principal, member_id)
    _, policy, _ = await current_policy(conn, principal.community_id)
    expires = await queries.db_now(conn) + timedelta(seconds=policy.voucher_seconds)
    token = vouchers.sign_token(
        signer,
        vouchers.MEMBER,
        expires,
        {"community_id": str(principal.community_id), "member_id": str(member_id), "nonce": uuid.uuid4().hex},
    )
    return {"token": token, "expires_at": rfc3339(expires)}


def _own(principal: Principal, row: Any) -> bool:
    return principal.role is Role.RESIDENT and principal.subject_id == row.member_id


def _may_see(principal: Principal, row: Any) -> bool:
    return (
        principal.role in (Role.ADMIN, Role.AUDITOR)
        or _own(principal, row)
        or (principal.role is Role.MERCHANT and principal.subject_id == row.merchant_id)
    )


def _shown(principal: Principal, row: Any) -> dict[str, Any]:
    """A redemption as ``principal`` sees it: the code only to its resident, while open."""
    return redemption_view(row, title=row.title, show_code=_own(principal, row) and row.status == "held")


async def get_redemption(
    conn: AsyncConnection, principal: Principal, redemption_id: uuid.UUID
) -> dict[str, Any]:
    row = await queries.find_redemption(conn, principal.community_id, redemption_id)
    if row is None or not _may_see(principal, row):
        raise NotFound(f"redemption {redemption_id} not found")
    return _shown(principal, row)


async def find_by_code(conn: AsyncConnection, principal: Principal, code: str) -> dict[str, Any]:
    """The counter: the open voucher of this merchant with this code."""
    if principal.role is not Role.MERCHANT:
        raise Forbidden("merchants look vouchers up by code")
    row = await queries.open_voucher(
        conn, principal.community_id, principal.subject_id, vouchers.normalise_code(code)
    )
    if row is None:
        raise NotFound("no open voucher of this merchant has that code")
    return redemption_view(row, title=row.title)


async def find_for_counter(
    conn: AsyncConnection,
    principal: Principal,
    *,
    code: str | None = None,
    qr: str | None = None,
    signer: Signer | None = None,
) -> dict[str, Any]:
    """The counter page's look-up: ``find_by_code`` with the typed code, or with the code
    inside the voucher's scanned QR (which must verify and name that voucher); plus the
    resident's name (the page masks it) and whether the voucher has expired by now."""
    if qr is not None:
        assert signer is not None, "a QR is checked against the log's keys"
        now = await queries.db_now(conn)
        try:
            claims = vouchers.read_token(qr, vouchers.VOUCHER, await published_keys(conn, signer), now)
        except vouchers.TokenError as exc:
            raise NotFound(f"qr: {exc}") from None
        code = str(claims.get("code"))
        view = await find_by_code(conn, principal, code)
        if view["id"] != claims.get("redemption_id"):
            raise NotFound("this QR is for another redemption")
    elif code is not None:
        view = await find_by_code(conn, principal, code)
    else:
        raise NotFound("no open voucher without a code")
    member_id = uuid.UUID(view["member_id"])
    names = await community_queries.display_names(conn, [member_id])
    expired = await queries.db_now(conn) >= datetime.fromisoformat(view["expires_at"])
    return {
        **view,
        "code": vouchers.normalise_code(code),
        "member_name": names.get(member_id, ""),
        "expired": expired,
    }


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
    rows = await queries.member_redemptions_page(conn, principal.community_id, member_id, cursor, limit + 1)
    page = rows[:limit]
    return [_shown(principal, r) for r in page], (str(page[-1].id) if len(rows) > limit else None)


async def resident_voucher(
    conn: AsyncConnection, principal: Principal, redemption_id: uuid.UUID, signer: Signer
) -> dict[str, Any]:
    """A resident's own voucher as their page shows it: while it is open, its code and
    its signed QR (the same ``qr`` the redemption's answer carried; Ed25519 signs the
    same claims to the same text). Another member's, or another community's: NotFound."""
    row = await queries.find_redemption(conn, principal.community_id, redemption_id)
    if row is None or not _own(principal, row):
        raise NotFound(f"redemption {redemption_id} not found")
    return redemption_view(row, title=row.title, signer=signer if row.status == "held" else None)

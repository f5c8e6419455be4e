"""Reading accounts as a key may see them, their entries, and their credit limit.

Who may read an account (its owner, an admin, an auditor) is decided here; the rows
come from ``queries.py``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, CreditLimitBelowUsage, NotFound
from timebank.core.roles import Role
from timebank.ledger import queries
from timebank.ledger.legs import MAX_AMOUNT


async def load_accounts(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    """The community's accounts ``ids``; NotFound names the first one missing."""
    wanted = set(ids)
    found = await queries.accounts_by_id(conn, community_id, wanted)
    for account_id in wanted:
        if account_id not in found:
            raise NotFound(f"account {account_id} not found", account_id=str(account_id))
    return found


async def get_account(conn: AsyncConnection, principal: Principal, account_id: uuid.UUID) -> Any:
    """An account with its balances, if the key may read it (else NotFound)."""
    row = await queries.account_in_community(conn, principal.community_id, account_id)
    if row is None or not may_read_account(principal, row):
        raise NotFound(f"account {account_id} not found")
    return row


def may_read_account(principal: Principal, account: Any) -> bool:
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return True
    return account.party_id is not None and account.party_id == principal.subject_id


async def set_credit_limit(
    conn: AsyncConnection, principal: Principal, account_id: uuid.UUID, limit: int
) -> Any:
    if not 0 <= limit <= MAX_AMOUNT:
        raise BadRequest(f"credit_limit must be from 0 to {MAX_AMOUNT}")
    account = await get_account(conn, principal, account_id)
    if not account.debits_must_not_exceed_credits:
        raise BadRequest("this account has no overdraft limit to set")
    if account.asset == "POINT" and account.party_id is not None and limit != 0:
        # points are never overdrawn (migration 0004's accounts_points_not_overdrawn)
        raise BadRequest("a party's POINT account cannot be overdrawn: its credit_limit stays 0")
    # Lock, then check: the CHECK constraint would reject too, but with a rolled-back error.
    row = await queries.lock_account(conn, account_id)
    if row.debits_posted + row.debits_pending > row.credits_posted + limit:
        raise CreditLimitBelowUsage(f"account {account_id} already uses more than {limit}")
    await queries.set_credit_limit(conn, account_id, limit)
    return await queries.account_in_community(conn, principal.community_id, account_id)


def _entry_view(r: Any) -> dict[str, Any]:
    return {
        "id": r.id,
        "transaction_id": str(r.transaction_id),
        "kind": r.kind,
        "phase": r.phase,
        "asset": r.asset,
        "direction": r.direction,
        "layer": r.layer,
        "amount": r.amount,
        "memo": r.memo,
        "created_at": rfc3339(r.created_at),
    }


async def entries_page(
    conn: AsyncConnection, account_id: uuid.UUID, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    rows = await queries.entries_after(conn, account_id, after or 0, limit + 1)
    items = [_entry_view(r) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return items, next_cursor


async def history_page(
    conn: AsyncConnection, principal: Principal, account_id: uuid.UUID, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """What moved in and out of an account, newest first (a person's history page):
    the posted entries only. A hold and its release are left out: a hold shows in the
    available balance until it is posted (then its posting is listed) or released.
    The cursor is the id of the last entry shown; NotFound unless the key may read the account."""
    await get_account(conn, principal, account_id)
    rows = await queries.posted_entries_before(conn, account_id, before, limit + 1)
    items = [_entry_view(r) for r in rows[:limit]]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return items, next_cursor

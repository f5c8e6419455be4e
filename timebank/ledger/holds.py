"""Holds and reversals: resolving a pending hold once, undoing a posted transaction.

Both mirror an existing transaction's entries into a new one that references it
(``pending_id``, ``reverses_id``); ``ledger_post`` makes each happen at most once.
The hold-timeout job expires the holds nobody resolved in time (``expire_holds``).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.problems import (
    BadRequest,
    Forbidden,
    HoldAlreadyResolved,
    NotAHold,
    NotFound,
    NotReversible,
)
from timebank.core.roles import Role
from timebank.core.terms import Asset, Direction, Kind, Layer, Phase
from timebank.ledger import queries
from timebank.ledger.legs import MAX_MEMO, Claim, Leg
from timebank.ledger.movement import post
from timebank.ledger.transactions import load_transaction
from timebank.ledger.transfers import CROSSING_ROLES


async def resolve_hold(
    conn: AsyncConnection,
    principal: Principal,
    hold_id: uuid.UUID,
    action: Phase,
    *,
    claim: Claim | None = None,
    system: bool = False,
) -> dict[str, Any]:
    """Post, void or expire a pending hold; it resolves at most once (ledger_post checks)."""
    assert action in (Phase.POST, Phase.VOID, Phase.EXPIRE)
    hold = await load_transaction(conn, principal.community_id, hold_id)
    entries = await queries.entries_with_owners(conn, hold_id)
    if not system and not principal.is_admin:
        debited = {e.party_id for e in entries if e.direction == Direction.DEBIT}
        if not any(e.party_id == principal.subject_id for e in entries):
            raise NotFound(f"transaction {hold_id} not found")
        if debited != {principal.subject_id}:
            raise Forbidden("only an admin or the owner of the held account may resolve this hold")
    if hold.phase != Phase.PENDING:
        raise NotAHold(f"transaction {hold_id} is not a pending hold")
    if hold.kind == Kind.REDEMPTION and not system:
        # its voucher, stock and limit move with it: /v1/redemptions/{id}/confirm or /cancel
        raise NotAHold(
            f"transaction {hold_id} is a redemption's hold: confirm or cancel the redemption instead"
        )
    legs = [
        Leg(e.account_id, Asset(e.asset), Direction(e.direction), Layer.RELEASE, e.amount) for e in entries
    ]
    if action is Phase.POST:
        legs += [
            Leg(e.account_id, Asset(e.asset), Direction(e.direction), Layer.POSTED, e.amount) for e in entries
        ]
    return await post(
        conn,
        community_id=principal.community_id,
        kind=Kind(hold.kind),
        phase=action,
        legs=legs,
        principal_id=principal.key_id,
        memo=hold.memo,
        claim=claim,
        pending_id=hold_id,
    )


async def reverse(
    conn: AsyncConnection,
    principal: Principal,
    tx_id: uuid.UUID,
    reason: str,
    *,
    claim: Claim | None = None,
) -> dict[str, Any]:
    """Undo a posted transaction by a new one that mirrors it and references it."""
    reason = (reason or "").strip()
    if not 1 <= len(reason) <= MAX_MEMO:
        raise BadRequest(f"a reversal needs a reason of 1 to {MAX_MEMO} characters")
    original = await load_transaction(conn, principal.community_id, tx_id)
    if original.kind == Kind.REVERSAL:
        raise NotReversible("a reversal cannot be reversed; post a new transaction instead")
    if original.phase not in (Phase.POSTED, Phase.POST):
        raise NotReversible("only posted transactions can be reversed; void a pending hold instead")
    entries = await queries.entries_with_owners(conn, tx_id)
    if original.kind in (Kind.CROSSING, Kind.SETTLEMENT) or any(
        e.system_role in CROSSING_ROLES for e in entries
    ):
        # One part alone would break its crossing (and clearing = position): a crossing
        # is undone by a crossing back, a settlement by the next settlement.
        raise NotReversible(
            "this transaction is one part of a crossing or a district settlement; send a crossing back instead"
        )
    legs = [
        Leg(
            e.account_id,
            Asset(e.asset),
            Direction.CREDIT if e.direction == Direction.DEBIT else Direction.DEBIT,
            Layer.POSTED,
            e.amount,
        )
        for e in entries
        if e.layer == Layer.POSTED
    ]
    return await post(
        conn,
        community_id=principal.community_id,
        kind=Kind.REVERSAL,
        phase=Phase.POSTED,
        legs=legs,
        principal_id=principal.key_id,
        memo=original.memo,
        claim=claim,
        reverses_id=tx_id,
        reason=reason,
    )


async def expire_holds(conn: AsyncConnection, community_id: uuid.UUID, limit: int = 1000) -> int:
    """Resolve timed-out holds as 'expire' (the hold-timeout job calls this)."""
    hold_ids = await queries.timed_out_holds(conn, community_id, limit)
    system = Principal(uuid.UUID(int=0), community_id, Role.ADMIN, None)
    done = 0
    for hold_id in hold_ids:
        try:
            async with conn.begin_nested():
                await resolve_hold(conn, system, hold_id, Phase.EXPIRE, system=True)
            done += 1
        except HoldAlreadyResolved:
            pass  # resolved concurrently: the resolve-once rule held
    return done

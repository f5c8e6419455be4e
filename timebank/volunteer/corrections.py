"""Corrections of approved records, with four eyes: one admin asks (with a reason), a
second admin approves (a reversal transaction referencing the credit) or turns it down.
The database refuses a decision by the key that asked, too (``four_eyes``, migration 0003).
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.problems import Conflict, Forbidden, NotFound
from timebank.ledger import service as ledger
from timebank.volunteer import queries
from timebank.volunteer.approval import decision_view, lock_record
from timebank.volunteer.records import FourEyes, decision_reason, reversal_view


def _admin(principal: Principal, what: str) -> None:
    if not principal.is_admin:
        raise Forbidden(f"only admins {what}")


async def request_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    _admin(principal, "ask for corrections")
    reason = decision_reason(reason, "a correction")
    rec = await lock_record(conn, principal, record_id)
    if rec.status != "approved":
        raise Conflict(f"only an approved record is corrected; this one is {rec.status}")
    if await queries.open_reversal(conn, rec.id) is not None:
        raise Conflict("a correction of this record is already waiting for a second admin")
    row = await queries.insert_reversal(conn, principal.community_id, rec.id, reason, principal.key_id)
    return reversal_view(row)


async def _lock_open_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID
) -> tuple[Any, Any]:
    rec = await lock_record(conn, principal, record_id)
    rev = await queries.open_reversal(conn, rec.id, lock=True)
    if rev is None:
        raise NotFound(f"no correction of record {record_id} is waiting")
    if rev.requested_by == principal.key_id:
        raise FourEyes("the admin who asked for a correction cannot decide it; another admin must")
    return rec, rev


async def approve_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, claim: ledger.Claim
) -> dict[str, Any]:
    """The second admin's approval: a reversal transaction referencing the credit."""
    _admin(principal, "decide corrections")
    rec, rev = await _lock_open_reversal(conn, principal, record_id)
    tx = await ledger.reverse(conn, principal, rec.transaction_id, rev.reason, claim=claim)
    tx_id = uuid.UUID(tx["id"])
    await queries.decide_reversal(conn, rev.id, principal.key_id, tx_id)
    await queries.mark_reversed(conn, rec.id)
    return await decision_view(conn, principal.community_id, tx_id)


async def reject_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID
) -> dict[str, Any]:
    _admin(principal, "decide corrections")
    _, rev = await _lock_open_reversal(conn, principal, record_id)
    return reversal_view(await queries.decide_reversal(conn, rev.id, principal.key_id, None))

"""``post``: every movement of value goes through here.

Domain rules (who may move what, how holds and reversals mirror their original) are
checked by the callers; the invariants that must hold whatever the caller (balanced,
append-only, no overdraft, resolve once) are held by PostgreSQL, see migration 0001.
``post`` calls the ``ledger_post`` function (``posting.py``, the hot path), which
takes the row locks in one fixed order and answers a result code instead of writing
when a rule fails; this module turns that code into the domain error.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.ids import uuid7
from timebank.core.problems import (
    AlreadyReversed,
    AssetMismatch,
    BadRequest,
    DomainError,
    Forbidden,
    HoldAlreadyResolved,
    HoldExpired,
    InsufficientFunds,
    NotAHold,
    NotFound,
)
from timebank.core.terms import Kind, Phase
from timebank.db import driver
from timebank.ledger.legs import MAX_MEMO, Claim, KeyAlreadyUsed, Leg
from timebank.ledger.posting import Request, post_batch, poster_for
from timebank.ledger.views import transaction_view

# What ledger_apply's 'district_account' refusal says (migration 0011; check_leg says it too).
CLEARING_ONLY = (
    "account {account} is a district clearing or exchange account: "
    "it moves only with crossings and settlements"
)

_REJECTIONS: dict[str, type[DomainError]] = {
    "insufficient_funds": InsufficientFunds,
    "already_resolved": HoldAlreadyResolved,
    "hold_expired": HoldExpired,
    "hold_not_found": NotAHold,
    "hold_not_expired": BadRequest,
    "already_reversed": AlreadyReversed,
    "transaction_not_found": NotFound,
    "account_not_found": NotFound,
    "asset_mismatch": AssetMismatch,
    "district_account": Forbidden,
}


async def post(
    conn: AsyncConnection,
    *,
    community_id: uuid.UUID,
    kind: Kind,
    phase: Phase,
    legs: Sequence[Leg],
    principal_id: uuid.UUID | None,
    memo: str | None = None,
    claim: Claim | None = None,
    pending_id: uuid.UUID | None = None,
    reverses_id: uuid.UUID | None = None,
    reason: str | None = None,
    timeout_seconds: int | None = None,
) -> dict[str, Any]:
    """Write one balanced transaction (claiming ``claim``), or raise and write nothing.

    Inside a database transaction of the caller it joins it; on its own it is posted
    in the next batch (``posting.Poster``), atomic by itself either way.
    """
    if memo is not None and len(memo) > MAX_MEMO:
        raise BadRequest(f"memo is at most {MAX_MEMO} characters")
    tx = {
        "id": uuid7(),  # time-ordered: see core/ids.py
        "community_id": community_id,
        "kind": kind.value,
        "phase": phase.value,
        "memo": memo,
        "pending_id": pending_id,
        "reverses_id": reverses_id,
        "reason": reason,
    }
    row = await _submit(conn, _request(tx, principal_id, claim, timeout_seconds, legs), claim)
    if row["code"] == "replay":
        raise KeyAlreadyUsed()
    if row["code"] != "ok":
        raise _rejection(row["code"], row["detail"])
    if claim is not None:
        claim.used = True
    tx.update(timeout_at=row["timeout_at"], created_at=row["created_at"], seq=row["seq"])
    return transaction_view(tx, legs)


@dataclass(frozen=True, slots=True)
class Part:
    """One ledger transaction of several that commit together (``post_together``)."""

    community_id: uuid.UUID
    kind: Kind
    legs: Sequence[Leg]
    principal_id: uuid.UUID | None = None
    memo: str | None = None
    reason: str | None = None
    claim: Claim | None = None
    id: uuid.UUID = field(default_factory=uuid7)
    # a part may post a hold of its ledger (phase POST, with the hold's id), e.g. a
    # redemption across communities whose points were held at home
    phase: Phase = Phase.POSTED
    pending_id: uuid.UUID | None = None


async def post_together(conn: AsyncConnection, parts: Sequence[Part]) -> list[dict[str, Any]]:
    """Post several balanced transactions, possibly in different ledgers, all or none.

    One ``ledger_post_batch`` call: every account of every part is locked first, in one
    id order, so two such posts never deadlock whatever ledgers they touch. Runs in
    the caller's database transaction (which it requires), so a part that fails makes
    the caller roll back the parts before it: the first failure is raised (a replayed
    claim as ``KeyAlreadyUsed``), and nothing of the others may be committed.
    """
    assert conn.in_transaction(), "post_together needs the caller's database transaction"
    # a crossing is 3 parts; a settlement 1 + its communities; an import's approvals a chunk
    assert 1 <= len(parts) <= 5000
    txs = []
    requests = []
    for part in parts:
        if part.memo is not None and len(part.memo) > MAX_MEMO:
            raise BadRequest(f"memo is at most {MAX_MEMO} characters")
        tx = {
            "id": part.id,
            "community_id": part.community_id,
            "kind": part.kind.value,
            "phase": part.phase.value,
            "memo": part.memo,
            "pending_id": part.pending_id,
            "reverses_id": None,
            "reason": part.reason,
        }
        txs.append(tx)
        requests.append(_request(tx, part.principal_id, part.claim, None, part.legs))
    rows = await post_batch(await driver(conn), requests)
    for row in rows:
        if row["code"] == "replay":
            raise KeyAlreadyUsed()
        if row["code"] != "ok":
            raise _rejection(row["code"], row["detail"])
    views = []
    for part, tx, row in zip(parts, txs, rows, strict=True):
        if part.claim is not None:
            part.claim.used = True
        tx.update(timeout_at=None, created_at=row["created_at"], seq=row["seq"])
        views.append(transaction_view(tx, part.legs))
    return views


def _request(
    tx: dict[str, Any],
    principal_id: uuid.UUID | None,
    claim: Claim | None,
    timeout_seconds: int | None,
    legs: Sequence[Leg],
) -> Request:
    """The ``ledger_request`` row of migration 0001."""
    return (
        tx["id"],
        tx["community_id"],
        tx["kind"],
        tx["phase"],
        tx["memo"],
        principal_id,
        None if claim is None else claim.key,
        None if claim is None else claim.request_hash,
        tx["pending_id"],
        tx["reverses_id"],
        tx["reason"],
        timeout_seconds,
        [(leg.account_id, leg.asset.value, leg.direction.value, leg.layer.value, leg.amount) for leg in legs],
    )


async def _submit(conn: AsyncConnection, request: Request, claim: Claim | None) -> Any:
    if conn.in_transaction():
        # Part of the caller's database transaction: post on its connection.
        (row,) = await post_batch(await driver(conn), [request])
        return row
    # On its own: ride the next batch (one commit for many concurrent movements).
    # A batch whose outcome is unknown (e.g. the connection dropped at commit) is
    # retried request by request, which is only safe behind an idempotency key.
    assert claim is not None, "a movement outside a transaction needs an idempotency claim"
    return await poster_for(conn.engine).submit(request)


def _rejection(code: str, detail: str | None) -> DomainError:
    messages = {
        "insufficient_funds": f"account {detail} would go below its limit",
        "already_resolved": f"hold {detail} was already resolved",
        "hold_expired": f"hold {detail} timed out",
        "hold_not_found": f"transaction {detail} is not a pending hold",
        "hold_not_expired": f"hold {detail} has not timed out yet",
        "already_reversed": f"transaction {detail} was already reversed",
        "transaction_not_found": f"transaction {detail} not found",
        "account_not_found": f"account {detail} not found",
        "asset_mismatch": f"account {detail} does not hold that asset",
        "district_account": CLEARING_ONLY.format(account=detail),
    }
    cls = _REJECTIONS.get(code)
    if cls is None:  # a code the function added without the service knowing: fail loudly
        raise AssertionError(f"unknown ledger_post result {code!r}")
    extra = (
        {"account_id": detail}
        if code in ("insufficient_funds", "asset_mismatch", "account_not_found", "district_account")
        else {}
    )
    return cls(messages[code], **extra)

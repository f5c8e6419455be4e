"""Ledger service: every movement of value goes through ``post``.

Domain rules (who may move what, which kinds exist, how holds and reversals mirror
their original) are checked here; the invariants that must hold whatever the caller
(balanced, append-only, no overdraft, resolve once) are held by PostgreSQL, see
migration 0001. ``post`` calls the ``ledger_post`` function, which takes the row locks
in one fixed order and answers a result code instead of writing when a rule fails.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.core.problems import (
    AlreadyReversed,
    AssetMismatch,
    BadRequest,
    CreditLimitBelowUsage,
    DomainError,
    Forbidden,
    HoldAlreadyResolved,
    HoldExpired,
    InsufficientFunds,
    NotAHold,
    NotFound,
    NotReversible,
)
from timebank.core.roles import Role
from timebank.core.terms import Asset, Direction, Kind, Layer, Phase, SystemRole
from timebank.db import driver
from timebank.ledger.posting import post_batch, poster_for
from timebank.security import Principal

MAX_AMOUNT = 10**12  # far above any real balance; keeps sums far from bigint overflow
MAX_LEGS = 64
MAX_MEMO = 500

# Kinds a caller may choose for a plain transfer; the others belong to their flows
# (service approval, redemption, expiry, reversal).
CLIENT_KINDS = {
    Role.ADMIN: {Kind.TRANSFER, Kind.DONATION, Kind.ADJUSTMENT},
    Role.RESIDENT: {Kind.TRANSFER, Kind.DONATION},
    Role.MERCHANT: {Kind.TRANSFER, Kind.DONATION},
    Role.RECORDER: {Kind.TRANSFER, Kind.DONATION},
}


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: uuid.UUID
    asset: Asset
    direction: Direction
    layer: Layer
    amount: int


@dataclass(frozen=True, slots=True)
class Movement:
    """One debit/credit pair as a client asks for it."""

    debit: uuid.UUID
    credit: uuid.UUID
    asset: Asset
    amount: int


def legs_of(movements: Sequence[Movement], layer: Layer) -> list[Leg]:
    if not 1 <= len(movements) <= MAX_LEGS:
        raise BadRequest(f"a transaction has 1 to {MAX_LEGS} legs")
    legs: list[Leg] = []
    for m in movements:
        if not 1 <= m.amount <= MAX_AMOUNT:
            raise BadRequest(f"amount must be a whole number from 1 to {MAX_AMOUNT}")
        if m.debit == m.credit:
            raise BadRequest("a leg must move value between two different accounts")
        legs.append(Leg(m.debit, m.asset, Direction.DEBIT, layer, m.amount))
        legs.append(Leg(m.credit, m.asset, Direction.CREDIT, layer, m.amount))
    return legs


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
}


@dataclass(slots=True)
class Claim:
    """An idempotency key to claim together with the movement it answers."""

    key: str
    request_hash: bytes
    used: bool = False


class KeyAlreadyUsed(Exception):
    """The claim's key already has an answer (given before, or by a concurrent request that committed)."""


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
    tx_id = uuid.uuid4()
    request = (
        tx_id,
        community_id,
        kind.value,
        phase.value,
        memo,
        principal_id,
        None if claim is None else claim.key,
        None if claim is None else claim.request_hash,
        pending_id,
        reverses_id,
        reason,
        timeout_seconds,
        [(leg.account_id, leg.asset.value, leg.direction.value, leg.layer.value, leg.amount) for leg in legs],
    )
    if conn.in_transaction():
        # Part of the caller's database transaction: post on its connection.
        (row,) = await post_batch(await driver(conn), [request])
    else:
        # On its own: ride the next batch (one commit for many concurrent movements).
        # A batch whose outcome is unknown (e.g. the connection dropped at commit) is
        # retried request by request, which is only safe behind an idempotency key.
        assert claim is not None, "a movement outside a transaction needs an idempotency claim"
        row = await poster_for(conn.engine).submit(request)
    code = row["code"]
    if code == "replay":
        raise KeyAlreadyUsed()
    if code != "ok":
        raise _rejection(code, row["detail"])
    if claim is not None:
        claim.used = True
    return transaction_view(
        {
            "id": tx_id,
            "community_id": community_id,
            "kind": kind.value,
            "phase": phase.value,
            "memo": memo,
            "pending_id": pending_id,
            "reverses_id": reverses_id,
            "reason": reason,
            "timeout_at": row["timeout_at"],
            "created_at": row["created_at"],
            "seq": row["seq"],
        },
        legs,
    )


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
    }
    cls = _REJECTIONS.get(code)
    if cls is None:  # a code the function added without the service knowing: fail loudly
        raise AssertionError(f"unknown ledger_post result {code!r}")
    extra = (
        {"account_id": detail}
        if code in ("insufficient_funds", "asset_mismatch", "account_not_found")
        else {}
    )
    return cls(messages[code], **extra)


def status_of(phase: str, resolver_phase: str | None) -> str:
    if phase == Phase.PENDING:
        return {None: "pending", "post": "posted", "void": "voided", "expire": "expired"}[resolver_phase]
    return {"posted": "posted", "post": "posted", "void": "voided", "expire": "expired"}[phase]


_LAYER_RANK = {"release": 0, "pending": 1, "posted": 2}


def entry_order(entry: dict[str, Any]) -> tuple[Any, ...]:
    """One canonical order for a transaction's entries, however they were written."""
    return (
        _LAYER_RANK[entry["layer"]],
        entry["asset"],
        entry["direction"] != "debit",
        entry["account_id"],
        entry["amount"],
    )


def transaction_view(
    tx: Any,
    legs: Iterable[Any],
    *,
    resolver: Any = None,
    reversed_by: uuid.UUID | None = None,
) -> dict[str, Any]:
    get = tx.get if isinstance(tx, dict) else lambda k: getattr(tx, k)
    resolver_phase = None if resolver is None else resolver.phase
    entries = sorted(
        (
            {
                "account_id": str(leg.account_id),
                "asset": str(leg.asset),
                "direction": str(leg.direction),
                "layer": str(leg.layer),
                "amount": int(leg.amount),
            }
            for leg in legs
        ),
        key=entry_order,
    )
    view: dict[str, Any] = {
        "id": str(get("id")),
        "community_id": str(get("community_id")),
        "kind": get("kind"),
        "status": status_of(get("phase"), resolver_phase),
        "phase": get("phase"),
        "memo": get("memo"),
        "entries": entries,
        "created_at": rfc3339(get("created_at")),
        "seq": get("seq"),
    }
    optional = {
        "pending_id": get("pending_id"),
        "reverses_id": get("reverses_id"),
        "reason": get("reason"),
        "timeout_at": get("timeout_at"),
        "resolved_by": None if resolver is None else resolver.id,
        "reversed_by": reversed_by,
    }
    for k, v in optional.items():
        if v is not None:
            view[k] = rfc3339(v) if isinstance(v, datetime) else str(v)
    return view


# --- reading -------------------------------------------------------------------------


async def load_accounts(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Any]:
    wanted = set(ids)
    rows = (
        await conn.execute(
            text("SELECT * FROM accounts WHERE community_id = :c AND id = ANY(:ids)").bindparams(
                bindparam("ids", type_=ARRAY(UUID(as_uuid=True)))
            ),
            {"c": community_id, "ids": list(wanted)},
        )
    ).all()
    found = {r.id: r for r in rows}
    for account_id in wanted:
        if account_id not in found:
            raise NotFound(f"account {account_id} not found", account_id=str(account_id))
    return found


async def get_account(conn: AsyncConnection, principal: Principal, account_id: uuid.UUID) -> Any:
    row = (
        await conn.execute(
            text("SELECT * FROM accounts WHERE id = :id AND community_id = :c"),
            {"id": account_id, "c": principal.community_id},
        )
    ).first()
    if row is None or not may_read_account(principal, row):
        raise NotFound(f"account {account_id} not found")
    return row


def may_read_account(principal: Principal, account: Any) -> bool:
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return True
    return account.party_id is not None and account.party_id == principal.subject_id


def balance_view(account: Any) -> dict[str, Any]:
    posted = account.credits_posted - account.debits_posted
    return {
        "posted": posted,
        "pending": account.debits_pending,
        "available": posted - account.debits_pending,
        "pending_credits": account.credits_pending,
        "credit_limit": account.credit_limit,
    }


def account_view(account: Any) -> dict[str, Any]:
    flags = ["debits_must_not_exceed_credits"] if account.debits_must_not_exceed_credits else []
    return {
        "id": str(account.id),
        "community_id": str(account.community_id),
        "asset": account.asset,
        "owner": (
            {"system": account.system_role} if account.system_role else {"party_id": str(account.party_id)}
        ),
        "flags": flags,
        **balance_view(account),
        "debits_posted": account.debits_posted,
        "credits_posted": account.credits_posted,
        "debits_pending": account.debits_pending,
        "credits_pending": account.credits_pending,
        "created_at": rfc3339(account.created_at),
    }


async def set_credit_limit(
    conn: AsyncConnection, principal: Principal, account_id: uuid.UUID, limit: int
) -> Any:
    if not 0 <= limit <= MAX_AMOUNT:
        raise BadRequest(f"credit_limit must be from 0 to {MAX_AMOUNT}")
    account = await get_account(conn, principal, account_id)
    if not account.debits_must_not_exceed_credits:
        raise BadRequest("this account has no overdraft limit to set")
    # Lock, then check: the CHECK constraint would reject too, but with a rolled-back error.
    row = (
        await conn.execute(text("SELECT * FROM accounts WHERE id = :id FOR UPDATE"), {"id": account_id})
    ).one()
    if row.debits_posted + row.debits_pending > row.credits_posted + limit:
        raise CreditLimitBelowUsage(f"account {account_id} already uses more than {limit}")
    return (
        await conn.execute(
            text("UPDATE accounts SET credit_limit = :l WHERE id = :id RETURNING *"),
            {"l": limit, "id": account_id},
        )
    ).one()


async def entries_page(
    conn: AsyncConnection, account_id: uuid.UUID, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    rows = (
        await conn.execute(
            text(
                "SELECT e.id, e.transaction_id, e.asset, e.direction, e.layer, e.amount, e.created_at, "
                "t.kind, t.phase, t.memo FROM entries e JOIN transactions t ON t.id = e.transaction_id "
                "WHERE e.account_id = :a AND e.id > :after ORDER BY e.id LIMIT :n"
            ),
            {"a": account_id, "after": after or 0, "n": limit + 1},
        )
    ).all()
    items = [
        {
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
        for r in rows[:limit]
    ]
    next_cursor = str(rows[limit - 1].id) if len(rows) > limit else None
    return items, next_cursor


async def _load_transaction(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> Any:
    tx = (
        await conn.execute(
            text("SELECT * FROM transactions WHERE id = :id AND community_id = :c"),
            {"id": tx_id, "c": community_id},
        )
    ).first()
    if tx is None:
        raise NotFound(f"transaction {tx_id} not found")
    return tx


async def _entries_with_owners(conn: AsyncConnection, tx_id: uuid.UUID) -> list[Any]:
    return list(
        (
            await conn.execute(
                text(
                    "SELECT e.account_id, e.asset, e.direction, e.layer, e.amount, a.party_id "
                    "FROM entries e JOIN accounts a ON a.id = e.account_id "
                    "WHERE e.transaction_id = :t ORDER BY e.id"
                ),
                {"t": tx_id},
            )
        ).all()
    )


async def get_transaction(conn: AsyncConnection, principal: Principal, tx_id: uuid.UUID) -> dict[str, Any]:
    tx = await _load_transaction(conn, principal.community_id, tx_id)
    entries = await _entries_with_owners(conn, tx_id)
    if principal.role not in (Role.ADMIN, Role.AUDITOR) and not any(
        e.party_id is not None and e.party_id == principal.subject_id for e in entries
    ):
        raise NotFound(f"transaction {tx_id} not found")
    related = (
        await conn.execute(
            text("SELECT id, phase, kind FROM transactions WHERE pending_id = :t OR reverses_id = :t"),
            {"t": tx_id},
        )
    ).all()
    resolver = next(
        (r for r in related if r.kind != Kind.REVERSAL and r.phase in ("post", "void", "expire")), None
    )
    reversal = next((r.id for r in related if r.kind == Kind.REVERSAL), None)
    return transaction_view(tx, entries, resolver=resolver, reversed_by=reversal)


async def created_view(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
    """The transaction as its creating request answered it (for idempotent replays)."""
    tx = await _load_transaction(conn, community_id, tx_id)
    return transaction_view(tx, await _entries_with_owners(conn, tx_id))


# --- writing -------------------------------------------------------------------------


async def transfer(
    conn: AsyncConnection,
    principal: Principal,
    movements: Sequence[Movement],
    *,
    kind: Kind = Kind.TRANSFER,
    memo: str | None = None,
    timeout_seconds: int | None = None,
    claim: Claim | None = None,
    hold_max_timeout_seconds: int = 7 * 24 * 3600,
) -> dict[str, Any]:
    allowed = CLIENT_KINDS.get(principal.role, set())
    if kind not in allowed:
        raise Forbidden(f"a {principal.role.value} key may not make {kind.value} transactions")
    if timeout_seconds is not None and not 1 <= timeout_seconds <= hold_max_timeout_seconds:
        raise BadRequest(f"pending.timeout_seconds must be from 1 to {hold_max_timeout_seconds}")
    legs = legs_of(movements, Layer.PENDING if timeout_seconds is not None else Layer.POSTED)
    # Admins may move any account of their community, which ledger_post checks; others
    # only from accounts they own, and donations only into the community fund. Into a
    # system account others move value only as that: `issuance` and `expired` are
    # reached by their own flows (service credit, expiry, an admin's adjustment).
    if not principal.is_admin or kind is Kind.DONATION:
        accounts = await load_accounts(conn, principal.community_id, {leg.account_id for leg in legs})
        for leg in legs:
            account = accounts[leg.account_id]
            if account.asset != leg.asset:
                raise AssetMismatch(
                    f"account {leg.account_id} holds {account.asset}", account_id=str(leg.account_id)
                )
            if (
                leg.direction is Direction.DEBIT
                and not principal.is_admin
                and account.party_id != principal.subject_id
            ):
                raise Forbidden(f"this key may only move value from its own accounts, not {leg.account_id}")
            if (
                kind is Kind.DONATION
                and leg.direction is Direction.CREDIT
                and account.system_role != SystemRole.FUND
            ):
                raise BadRequest("a donation goes to the community fund account")
            if (
                leg.direction is Direction.CREDIT
                and not principal.is_admin
                and account.system_role is not None
                and not (kind is Kind.DONATION and account.system_role == SystemRole.FUND)
            ):
                raise Forbidden(
                    f"a {principal.role.value} key may move value into the community fund only as a donation "
                    '("kind": "donation")'
                    if account.system_role == SystemRole.FUND
                    else f"a {principal.role.value} key may not move value into the community's "
                    f"{account.system_role} account",
                    account_id=str(leg.account_id),
                )
    return await post(
        conn,
        community_id=principal.community_id,
        kind=kind,
        phase=Phase.PENDING if timeout_seconds is not None else Phase.POSTED,
        legs=legs,
        principal_id=principal.key_id,
        memo=memo,
        claim=claim,
        timeout_seconds=timeout_seconds,
    )


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
    hold = await _load_transaction(conn, principal.community_id, hold_id)
    entries = await _entries_with_owners(conn, hold_id)
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
    original = await _load_transaction(conn, principal.community_id, tx_id)
    if original.kind == Kind.REVERSAL:
        raise NotReversible("a reversal cannot be reversed; post a new transaction instead")
    if original.phase not in (Phase.POSTED, Phase.POST):
        raise NotReversible("only posted transactions can be reversed; void a pending hold instead")
    entries = await _entries_with_owners(conn, tx_id)
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
    rows = (
        await conn.execute(
            text(
                "SELECT t.id FROM transactions t WHERE t.community_id = :c AND t.phase = 'pending' "
                "AND t.timeout_at <= now() AND NOT EXISTS (SELECT 1 FROM transactions r WHERE r.pending_id = t.id) "
                "ORDER BY t.timeout_at LIMIT :n"
            ),
            {"c": community_id, "n": limit},
        )
    ).all()
    system = Principal(uuid.UUID(int=0), community_id, Role.ADMIN, None)
    done = 0
    for row in rows:
        try:
            async with conn.begin_nested():
                await resolve_hold(conn, system, row.id, Phase.EXPIRE, system=True)
            done += 1
        except HoldAlreadyResolved:
            pass  # resolved concurrently: the resolve-once rule held
    return done

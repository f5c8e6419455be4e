"""Idempotent writes (Stripe / TigerBeetle semantics).

An idempotent action receives a ``Claim`` and hands it to ``ledger.post``, which
claims the key in the same database transaction as the movement (see
``ledger_post`` in migration 0001). So:

* replay of the same request → the first answer, status and body the same (a created
  transaction is answered as it was created);
* same key, different request (or another API key) → 409 idempotency-conflict;
* a rejection (domain error) rolls back whatever the action wrote and is recorded
  under the key, so it stays rejected on replay; if a concurrent request with the
  same key got there first, its answer is returned instead;
* two requests with one key never both move value: the second claim waits for the
  first to commit and then finds the key answered (``ON CONFLICT DO NOTHING``);
* an unexpected error rolls everything back, the key included, so a retry may run;
* an answer is kept ``TIMEBANK_IDEMPOTENCY_RETENTION_DAYS`` (30) days, then the
  ``idempotency-retention`` job removes it (``remove_expired``): the same key after
  that is a new request. The transaction keeps its key (``transactions`` is
  append-only), and the audit's check of the keys' answers holds for the rest.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.core.access import Principal
from timebank.core.problems import (
    BadRequest,
    Conflict,
    DomainError,
    IdempotencyConflict,
    IdempotencyKeyRequired,
)
from timebank.db import driver
from timebank.ledger import queries
from timebank.ledger.legs import Claim, KeyAlreadyUsed
from timebank.ledger.transactions import created_view

MAX_KEY_LENGTH = 255


def request_hash(principal: Principal, method: str, path: str, body: Any) -> bytes:
    """The request's fingerprint: SHA-256 of its JSON with sorted keys (stored with the key,
    compared on replay, so these bytes must never change for a given request)."""
    doc = {"principal": str(principal.key_id), "method": method, "path": path, "body": body}
    if _plain(body):
        # msgspec writes plain JSON (str, int, bool, null, lists, objects with text keys)
        # byte for byte as the json.dumps below does (tests/ledger/test_idempotency_hash.py),
        # ten times faster: every transfer's body is such (msgspec.to_builtins of its struct).
        canonical = msgspec.json.encode(doc, order="sorted")
    else:  # floats, dates, UUIDs...: json.dumps's own spelling of them, as always
        canonical = json.dumps(
            doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str
        ).encode()
    return hashlib.sha256(canonical).digest()


def _plain(value: Any, depth: int = 0) -> bool:
    """Only JSON's own types, no floats (whose spelling the two encoders may differ on)."""
    kind = type(value)
    if kind is str or kind is bool or value is None:
        return True
    if kind is int:
        return -(2**63) <= value < 2**63
    if depth > 32:
        return False
    if kind is dict:
        return all(type(k) is str and _plain(v, depth + 1) for k, v in value.items())
    if kind is list:
        return all(_plain(v, depth + 1) for v in value)
    return False


def check_key(key: str | None) -> str:
    if key is None or key.strip() == "":
        raise IdempotencyKeyRequired(
            "send an Idempotency-Key header (for example a UUID) with every write that moves value"
        )
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters")
    return key


Action = Callable[[AsyncConnection, Claim], Awaitable[dict[str, Any]]]
# Renders the answer of a replay from the transaction the first request created.
Render = Callable[[AsyncConnection, uuid.UUID, uuid.UUID], Awaitable[dict[str, Any]]]


async def run_idempotent(
    engine: AsyncEngine,
    principal: Principal,
    key: str | None,
    fingerprint: bytes,
    action: Action,
    *,
    instance: str | None = None,
    render: Render = created_view,
    pooled: bool = True,
) -> tuple[int, dict[str, Any], bool]:
    """Run ``action`` at most once per (community, key). Returns (status, body, replayed).

    ``pooled=False`` is for an action that reads nothing before it posts (an admin's
    transfer: its one ``ledger_post`` rides the poster's batch on the poster's own
    connections): its first attempt gets an ``Unconnected`` connection, so no pooled
    connection is checked out for it (40-50 us a request); a replay or a rejection
    then checks one out as usual. An action that does read on it fails loudly
    (SQLAlchemy's "not started"), never silently outside the poster.
    """
    key = check_key(key)
    first: BaseException | None = None
    if not pooled:
        claim = Claim(key, fingerprint)
        try:
            body = await action(Unconnected(engine), claim)
            assert claim.used, "an idempotent action must pass its claim to ledger.post"
            return 201, body, False
        except (KeyAlreadyUsed, DomainError) as exc:
            first = exc  # answered below, on a pooled connection, as on the pooled path
    async with engine.connect() as conn:
        for _ in range(3):
            if first is None:
                claim = Claim(key, fingerprint)
            try:
                if first is not None:
                    failure, first = first, None
                    raise failure
                body = await action(conn, claim)
                # TigerBeetle-style assertion: an action that answered without claiming
                # its key could run again on replay.
                assert claim.used, "an idempotent action must pass its claim to ledger.post"
                await conn.commit()  # no-op when the action's single ledger_post was its own transaction
                return 201, body, False
            except KeyAlreadyUsed:
                await conn.rollback()
            except DomainError as err:
                await conn.rollback()
                problem = err.to_problem(instance)
                drv = await driver(conn)
                recorded = await drv.fetchval(
                    queries.RECORD_ANSWER_SQL,
                    principal.community_id,
                    claim.key,
                    fingerprint,
                    principal.key_id,
                    err.status,
                    json.dumps(problem, ensure_ascii=False),
                )
                if recorded:
                    return err.status, problem, False
            answer = await _replay(conn, principal, claim, render)
            if answer is not None:
                return answer
            # The answer was removed (past its retention) between the claim and the look:
            # the key is free again, so this is a new request.
            await conn.rollback()
    raise Conflict("this Idempotency-Key's answer is being removed; retry the request")


class Unconnected(AsyncConnection):
    """A connection that was never checked out of the pool (``run_idempotent(pooled=False)``):
    not in a transaction, so ``ledger.post`` hands its movement to the engine's poster;
    anything that would talk to the database on it raises SQLAlchemy's "not started"."""

    __slots__ = ()

    def in_transaction(self) -> bool:
        return False


async def _replay(
    conn: AsyncConnection, principal: Principal, claim: Claim, render: Render
) -> tuple[int, dict[str, Any], bool] | None:
    stored = await queries.stored_answer(conn, principal.community_id, claim.key)
    if stored is None:
        return None
    if bytes(stored.request_hash) != claim.request_hash:
        raise IdempotencyConflict(
            "this Idempotency-Key was already used with a different request; use a new key"
        )
    if stored.transaction_id is not None:
        return stored.status_code, await render(conn, principal.community_id, stored.transaction_id), True
    return stored.status_code, stored.response, True


async def remove_expired(
    engine: AsyncEngine, now: datetime, retention_days: int, batch: int = 5000
) -> dict[str, Any]:
    """Remove the answers older than the retention (the ``idempotency-retention`` job).

    Idempotent (removing what is already gone removes nothing) and in short batches,
    each its own transaction, so no request waits long on it. The cutoff is measured
    from ``now`` but never from later than the database's own clock, so a job run
    ``--as-of`` a future day cannot remove a young answer. Only the answers go: the
    transactions keep their ``idempotency_key`` (append-only), and the audit checks
    that every answer left names a transaction of its community.
    """
    if retention_days < 1:
        raise ValueError("the retention is at least one day")
    async with engine.connect() as conn:
        db_now = (await conn.execute(select(func.now()))).scalar_one()
    cutoff = min(now, db_now) - timedelta(days=retention_days)
    removed = 0
    while True:
        async with engine.begin() as conn:
            n = await queries.remove_answers_before(conn, cutoff, batch)
        removed += n
        if n < batch:
            return {"removed": removed}

"""Idempotent writes (Stripe / TigerBeetle semantics).

Within one database transaction: claim the key (``INSERT ... ON CONFLICT DO
NOTHING``; a concurrent request with the same key waits on the row until the first
commits), run the action, store its response, commit. If the action raises a domain error,
everything it wrote is rolled back and the rejection is recorded under the key in a
new transaction (unless a concurrent request with the same key finished first, whose
answer is then returned), so an action may raise at any point without a savepoint.

* replay of the same request → the stored status and body, byte for byte the same;
* same key, different request (or another key's principal) → 409 idempotency-conflict;
* a rejection (domain error) is stored too, so it stays rejected on replay;
* an unexpected error rolls everything back, the key included, so a retry may run.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.problems import BadRequest, DomainError, IdempotencyConflict, IdempotencyKeyRequired
from timebank.security import Principal

MAX_KEY_LENGTH = 255

Action = Callable[[AsyncConnection], Awaitable[dict[str, Any]]]


def request_hash(principal: Principal, method: str, path: str, body: Any) -> bytes:
    canonical = json.dumps(
        {"principal": str(principal.key_id), "method": method, "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).digest()


def check_key(key: str | None) -> str:
    if key is None or key.strip() == "":
        raise IdempotencyKeyRequired("send an Idempotency-Key header (for example a UUID) with every write that moves value")
    if len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise BadRequest(f"Idempotency-Key is 1 to {MAX_KEY_LENGTH} printable characters")
    return key


_CLAIM = text(
    "INSERT INTO idempotency_keys (community_id, key, request_hash, principal_id, status_code, response) "
    "VALUES (:c, :k, :h, :p, :s, CAST(:r AS jsonb)) ON CONFLICT DO NOTHING RETURNING 1"
)
_STORE = text(
    "UPDATE idempotency_keys SET status_code = :s, response = CAST(:r AS jsonb) WHERE community_id = :c AND key = :k"
)
_STORED = text("SELECT request_hash, status_code, response FROM idempotency_keys WHERE community_id = :c AND key = :k")


async def run_idempotent(
    engine: AsyncEngine,
    principal: Principal,
    key: str | None,
    fingerprint: bytes,
    action: Action,
    *,
    success_status: int = 201,
    instance: str | None = None,
) -> tuple[int, dict[str, Any], bool]:
    """Run ``action`` once per (community, key). Returns (status, body, replayed)."""
    key = check_key(key)
    ids = {"c": principal.community_id, "k": key}
    claim = {**ids, "h": fingerprint, "p": principal.key_id}
    async with engine.connect() as conn:
        trans = await conn.begin()
        try:
            if (await conn.execute(_CLAIM, {**claim, "s": None, "r": None})).first() is None:
                return await _replay(conn, ids, fingerprint)
            try:
                body = await action(conn)
            except DomainError as err:
                # Undo whatever the action wrote (and the claim), then record the rejection.
                await trans.rollback()
                problem = err.to_problem(instance)
                trans = await conn.begin()
                if (await conn.execute(_CLAIM, {**claim, "s": err.status, "r": _json(problem)})).first() is None:
                    return await _replay(conn, ids, fingerprint)  # the same key finished meanwhile
                await trans.commit()
                return err.status, problem, False
            await conn.execute(_STORE, {**ids, "s": success_status, "r": _json(body)})
            await trans.commit()
            return success_status, body, False
        finally:
            if trans.is_active:
                await trans.rollback()


async def _replay(conn: AsyncConnection, ids: dict[str, Any], fingerprint: bytes) -> tuple[int, dict[str, Any], bool]:
    stored = (await conn.execute(_STORED, ids)).one()
    if bytes(stored.request_hash) != fingerprint:
        raise IdempotencyConflict("this Idempotency-Key was already used with a different request; use a new key")
    return stored.status_code, stored.response, True


def _json(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)

"""Idempotent writes (Stripe / TigerBeetle semantics).

Within one database transaction: claim the key (``INSERT ... ON CONFLICT DO
NOTHING``; a concurrent request with the same key waits on the row until the first
commits), run the action inside a savepoint, store its response, commit.

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
    async with engine.begin() as conn:
        claimed = (
            await conn.execute(
                text(
                    "INSERT INTO idempotency_keys (community_id, key, request_hash, principal_id) "
                    "VALUES (:c, :k, :h, :p) ON CONFLICT DO NOTHING RETURNING 1"
                ),
                {"c": principal.community_id, "k": key, "h": fingerprint, "p": principal.key_id},
            )
        ).first()
        if claimed is None:
            stored = (
                await conn.execute(
                    text(
                        "SELECT request_hash, status_code, response FROM idempotency_keys "
                        "WHERE community_id = :c AND key = :k"
                    ),
                    {"c": principal.community_id, "k": key},
                )
            ).one()
            if bytes(stored.request_hash) != fingerprint:
                raise IdempotencyConflict(
                    "this Idempotency-Key was already used with a different request; use a new key"
                )
            return stored.status_code, stored.response, True

        try:
            async with conn.begin_nested():
                body = await action(conn)
            status = success_status
        except DomainError as err:
            status, body = err.status, err.to_problem(instance)
        await conn.execute(
            text(
                "UPDATE idempotency_keys SET status_code = :s, response = CAST(:r AS jsonb) "
                "WHERE community_id = :c AND key = :k"
            ),
            {"s": status, "r": json.dumps(body, ensure_ascii=False), "c": principal.community_id, "k": key},
        )
    return status, body, False

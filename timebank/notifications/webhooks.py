"""Webhook delivery of notifications, signed with HMAC-SHA256, retried with backoff.

Each notification is sent as its JSON payload (with ``notification_id``) in a POST
to the community's webhook URL, with headers

    X-Timebank-Delivery: <notification id>   (the same on every retry: deduplicate by it)
    X-Timebank-Timestamp: <RFC 3339 time of this attempt>
    X-Timebank-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>

A 2xx answer marks it delivered, for good (a guard trigger refuses any change after);
anything else, or no answer in 10 s, schedules a retry after 1, 2, 4 ... minutes, at
most an hour apart. One row is locked (``FOR UPDATE SKIP LOCKED``) while it is being
sent, so two workers never send the same notification at once. Delivery is
at-least-once in one case only: a process that dies after the receiver's 2xx and
before its own commit sends it again, with the same delivery id.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank import logs
from timebank.core.clock import rfc3339
from timebank.log.verify import jcs
from timebank.notifications import queries

TIMEOUT_SECONDS = 10
MAX_BACKOFF = timedelta(hours=1)


@dataclass(frozen=True)
class Webhook:
    url: str
    secret: str


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


def backoff(attempts: int) -> timedelta:
    return min(timedelta(minutes=2 ** max(attempts - 1, 0)), MAX_BACKOFF)


async def _send(client: httpx.AsyncClient, hook: Webhook, row: Any, now: datetime) -> str | None:
    """POST one notification, signed; None if the receiver took it, else what went wrong."""
    body = jcs({**row.payload, "notification_id": str(row.id)})
    stamp = rfc3339(now)
    headers = {
        "Content-Type": "application/json",
        "X-Timebank-Delivery": str(row.id),
        "X-Timebank-Timestamp": stamp,
        "X-Timebank-Signature": signature(hook.secret, stamp, body),
    }
    try:
        answer = await client.post(hook.url, content=body, timeout=TIMEOUT_SECONDS, headers=headers)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if 200 <= answer.status_code < 300 else f"HTTP {answer.status_code}"


async def _deliver_next(
    conn: AsyncConnection, community_id: uuid.UUID, hook: Webhook, now: datetime, client: httpx.AsyncClient
) -> str | None:
    """Send the next due notification (locked while it is sent): ``delivered``,
    ``failed`` (retried later), or None when none is due."""
    row = await queries.lock_next_due(conn, community_id, now)
    if row is None:
        return None
    error = await _send(client, hook, row, now)
    if error is None:
        await queries.mark_delivered(conn, row.id, now)
        return "delivered"
    await queries.mark_failed(conn, row.id, error, now + backoff(row.attempts + 1))
    logs.log.warning("webhook delivery failed", notification=str(row.id), error=error)
    return "failed"


async def deliver_due(
    engine: AsyncEngine,
    community_id: uuid.UUID,
    hook: Webhook,
    now: datetime,
    client: httpx.AsyncClient,
    limit: int = 200,
) -> dict[str, Any]:
    """Deliver up to ``limit`` due notifications of the community, one transaction each."""
    counts = {"delivered": 0, "failed": 0}
    async with engine.connect() as conn:
        for _ in range(limit):
            async with conn.begin():
                outcome = await _deliver_next(conn, community_id, hook, now, client)
            if outcome is None:
                break
            counts[outcome] += 1
    return counts


async def delivery_state(conn: AsyncConnection, community_id: uuid.UUID) -> dict[str, Any]:
    """How the community's notifications stand with its webhook: how many wait for a
    first try, how many failed and wait for a retry, how many were delivered (and when
    last), and the last failure: its error, attempts, when it failed (its retry time
    less the backoff it got) and when it is tried again."""
    counts = await queries.delivery_counts(conn, community_id)
    failed = await queries.last_failure(conn, community_id)
    last = None
    if failed is not None:
        last = {
            "notification_id": str(failed.id),
            "error": failed.last_error,
            "attempts": failed.attempts,
            "failed_at": rfc3339(failed.next_attempt_at - backoff(failed.attempts)),
            "retry_at": rfc3339(failed.next_attempt_at),
        }
    return {
        "waiting": counts.waiting,
        "failing": counts.failing,
        "delivered": counts.delivered,
        "last_delivered_at": None if counts.last_delivered_at is None else rfc3339(counts.last_delivered_at),
        "last_failure": last,
    }

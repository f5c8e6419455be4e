"""Points expiry: what is left of each lot past its expiry goes to the community's
``expired`` account, by ordinary ledger transactions (one per member per run).

Safe to run again, and beside redemptions: each chunk of members is one database
transaction that locks the members' accounts (and the ``expired`` account) in id
order, the order the ledger locks them in, and only then reads what their expired
lots hold. The expiry debit is then consumed from exactly those lots (they expire
first), and a redemption on the same account waits for the lock and finds them
spent, or took them before and they are gone: the same points are never taken
twice. Points held by an open redemption stay held: the expiry takes at most the
available balance, and the next run takes what a cancelled voucher gives back.
Each transaction carries the idempotency key ``job:points-expiry:<day>:<account>``.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.core.communities import community_zone
from timebank.core.ids import uuid7
from timebank.core.terms import Asset, SystemRole
from timebank.db import driver
from timebank.ledger import queries as ledger_queries
from timebank.ledger.posting import post_batch
from timebank.points import queries

CHUNK = 250  # members per database transaction (and per ledger_post_batch call)
MEMO = "积分过期 points expired"


def _expiry_request(
    community_id: uuid.UUID, day: str, account_id: uuid.UUID, sink: uuid.UUID, amount: int
) -> tuple[Any, ...]:
    """One ``ledger_post_batch`` request: ``amount`` from the member's account to the sink."""
    key = f"job:points-expiry:{day}:{account_id}"
    return (
        uuid7(),
        community_id,
        "expiry",
        "posted",
        MEMO,
        None,
        key,
        hashlib.sha256(f"{key}:{amount}".encode()).digest(),
        None,
        None,
        None,
        None,
        [
            (account_id, "POINT", "debit", "posted", amount),
            (sink, "POINT", "credit", "posted", amount),
        ],
    )


async def _expire_chunk(
    raw: Any, community_id: uuid.UUID, day: str, due: list[uuid.UUID], sink: uuid.UUID, now: datetime
) -> dict[str, int]:
    """Lock the accounts (and the sink) in id order, then expire what their lots still hold."""
    available = await ledger_queries.lock_available(raw, [*due, sink])
    requests = []
    for account_id, points in (await queries.expired_points(raw, due, now)).items():
        amount = min(points, available[account_id])
        if amount > 0:  # else all of it is held by open redemptions
            requests.append(_expiry_request(community_id, day, account_id, sink, amount))
    answers = await post_batch(raw, requests) if requests else []
    for request, answer in zip(requests, answers, strict=True):
        # 'replay': this day's expiry of the account committed in an earlier,
        # interrupted run; what is left waits for the next day's run.
        assert answer["code"] in ("ok", "replay"), f"expiry of {request[12][0][0]}: {answer['code']}"
    posted = [r for r, a in zip(requests, answers, strict=True) if a["code"] == "ok"]
    return {"members": len(posted), "points": sum(r[12][0][4] for r in posted), "transactions": len(posted)}


async def expire_points(
    engine: AsyncEngine, community_id: uuid.UUID, now: datetime, *, chunk: int = CHUNK
) -> dict[str, Any]:
    """Expire every lot of the community whose expiry is at or before ``now``."""
    assert now.tzinfo is not None
    counts = {"members": 0, "points": 0, "transactions": 0}
    async with engine.connect() as conn:
        tz = await community_zone(conn, community_id)
        sink = await ledger_queries.system_account_id(conn, community_id, SystemRole.EXPIRED, Asset.POINT)
        await conn.rollback()
        day = now.astimezone(tz).date().isoformat()
        after = uuid.UUID(int=0)
        while True:
            async with conn.begin():
                raw = await driver(conn)
                due = await queries.accounts_with_expired_lots(raw, community_id, now, after, chunk)
                if not due:
                    break
                after = due[-1]
                done = await _expire_chunk(raw, community_id, day, due, sink, now)
                counts = {k: counts[k] + done[k] for k in counts}
    return counts

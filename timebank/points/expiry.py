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

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.core.communities import community_zone
from timebank.db import driver
from timebank.ledger.posting import post_batch

CHUNK = 250  # members per database transaction (and per ledger_post_batch call)
MEMO = "积分过期 points expired"


async def expire_points(
    engine: AsyncEngine, community_id: uuid.UUID, now: datetime, *, chunk: int = CHUNK
) -> dict[str, Any]:
    """Expire every lot of the community whose expiry is at or before ``now``."""
    assert now.tzinfo is not None
    counts = {"members": 0, "points": 0, "transactions": 0}
    async with engine.connect() as conn:
        tz = await community_zone(conn, community_id)
        sink = (
            await conn.execute(
                text(
                    "SELECT id FROM accounts WHERE community_id = :c AND system_role = 'expired' AND asset = 'POINT'"
                ),
                {"c": community_id},
            )
        ).scalar_one()
        await conn.rollback()
        day = now.astimezone(tz).date().isoformat()
        after = uuid.UUID(int=0)
        while True:
            async with conn.begin():
                raw = await driver(conn)
                due = [
                    r["account_id"]
                    for r in await raw.fetch(
                        "SELECT DISTINCT account_id FROM points_lots WHERE community_id = $1 AND remaining > 0 "
                        "AND expires_at <= $2 AND account_id > $3 ORDER BY account_id LIMIT $4",
                        community_id,
                        now,
                        after,
                        chunk,
                    )
                ]
                if not due:
                    break
                after = due[-1]
                locked = {
                    r["id"]: r
                    for r in await raw.fetch(
                        "SELECT id, credits_posted - debits_posted - debits_pending AS available FROM accounts "
                        "WHERE id = ANY($1::uuid[]) ORDER BY id FOR UPDATE",
                        [*due, sink],
                    )
                }
                expired = await raw.fetch(
                    "SELECT account_id, sum(remaining) AS points FROM points_lots WHERE account_id = ANY($1::uuid[]) "
                    "AND remaining > 0 AND expires_at <= $2 GROUP BY account_id ORDER BY account_id",
                    due,
                    now,
                )
                requests = []
                for row in expired:
                    amount = min(int(row["points"]), int(locked[row["account_id"]]["available"]))
                    if amount <= 0:
                        continue  # all of it is held by open redemptions
                    key = f"job:points-expiry:{day}:{row['account_id']}"
                    requests.append(
                        (
                            uuid.uuid4(),
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
                                (row["account_id"], "POINT", "debit", "posted", amount),
                                (sink, "POINT", "credit", "posted", amount),
                            ],
                        )
                    )
                if not requests:
                    continue
                answers = await post_batch(raw, requests)
                for request, answer in zip(requests, answers, strict=True):
                    # 'replay': this day's expiry of the account committed in an earlier,
                    # interrupted run; what is left waits for the next day's run.
                    assert answer["code"] in ("ok", "replay"), (
                        f"expiry of {request[12][0][0]}: {answer['code']}"
                    )
                    if answer["code"] == "ok":
                        counts["members"] += 1
                        counts["transactions"] += 1
                        counts["points"] += request[12][0][4]
    return counts

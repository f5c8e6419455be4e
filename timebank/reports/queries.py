"""The reports' reads: SQL over ``entries`` joined to ``transactions``, ``accounts`` and
the tables that classify a transaction (``service_records``, ``redemptions``,
``rewards``) or name a party (``parties``). Read-only; every sum is over posted entries.

A service credit is the HOUR (and POINT) credit of a ``service_credit`` transaction to
its record's member; its correction is the ``reversal`` whose ``reverses_id`` is that
transaction, debiting the same member. Times are the entries' ``created_at`` (set by
the database), periods half-open ``[start, end)``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

# Each HOUR movement of approved service on a member's account: +minutes for the credit,
# -minutes for the reversal of that credit, with the record it belongs to.
_SERVICE_MOVES = """
SELECT r.member_id, r.organisation_id, r.category, e.created_at, e.amount AS minutes, 1 AS sign
FROM entries e
JOIN transactions t ON t.id = e.transaction_id AND t.kind = 'service_credit'
JOIN service_records r ON r.transaction_id = t.id
JOIN accounts a ON a.id = e.account_id AND a.party_id = r.member_id
WHERE e.community_id = :c AND e.asset = 'HOUR' AND e.layer = 'posted' AND e.direction = 'credit'
UNION ALL
SELECT r.member_id, r.organisation_id, r.category, e.created_at, e.amount AS minutes, -1 AS sign
FROM entries e
JOIN transactions t ON t.id = e.transaction_id AND t.kind = 'reversal'
JOIN service_records r ON r.transaction_id = t.reverses_id
JOIN accounts a ON a.id = e.account_id AND a.party_id = r.member_id
WHERE e.community_id = :c AND e.asset = 'HOUR' AND e.layer = 'posted' AND e.direction = 'debit'
"""

SERVICE_GROUPS_SQL = text(
    f"""
WITH m AS ({_SERVICE_MOVES})
SELECT m.organisation_id, p.display_name AS organisation, m.category,
       to_char(m.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month,
       coalesce(sum(m.minutes) FILTER (WHERE m.sign = 1), 0)::bigint AS credited,
       coalesce(sum(m.minutes) FILTER (WHERE m.sign = -1), 0)::bigint AS reversed,
       count(*) FILTER (WHERE m.sign = 1) AS records
FROM m JOIN parties p ON p.id = m.organisation_id
WHERE m.created_at >= :s AND m.created_at < :e
GROUP BY 1, 2, 3, 4
ORDER BY 4, 2, 1, 3
"""
)

VOLUNTEERS_SQL = text(
    f"""
WITH m AS ({_SERVICE_MOVES}),
first_credit AS (SELECT member_id, min(created_at) AS at FROM m WHERE sign = 1 GROUP BY member_id)
SELECT
  (SELECT count(DISTINCT member_id) FROM m WHERE sign = 1 AND created_at >= :s AND created_at < :e)
    AS active,
  (SELECT count(*) FROM first_credit WHERE at >= :s AND at < :e) AS new
"""
)

LIFETIME_SQL = text(
    f"""
WITH m AS ({_SERVICE_MOVES})
SELECT member_id, sum(sign * minutes)::bigint AS minutes FROM m GROUP BY member_id
"""
)

# Posted POINT entries of the period by what they are: the transaction's kind (and, for
# a reversal, the original's), the account's holder kind or system role, the direction.
POINT_FLOWS_SQL = text(
    """
SELECT t.kind, o.kind AS reverses_kind, a.system_role, p.kind AS party_kind, e.direction,
       sum(e.amount)::bigint AS points
FROM entries e
JOIN transactions t ON t.id = e.transaction_id
LEFT JOIN transactions o ON o.id = t.reverses_id
JOIN accounts a ON a.id = e.account_id
LEFT JOIN parties p ON p.id = a.party_id
WHERE e.community_id = :c AND e.asset = 'POINT' AND e.layer = 'posted'
  AND e.created_at >= :s AND e.created_at < :e
GROUP BY 1, 2, 3, 4, 5
"""
)

# The members' POINT balances (posted) summed, as of a moment: the community's liability.
OUTSTANDING_SQL = text(
    """
SELECT coalesce(sum(CASE e.direction WHEN 'credit' THEN e.amount ELSE -e.amount END), 0)::bigint
FROM entries e
JOIN accounts a ON a.id = e.account_id
JOIN parties p ON p.id = a.party_id AND p.kind = 'member'
WHERE e.community_id = :c AND e.asset = 'POINT' AND e.layer = 'posted' AND e.created_at < :at
"""
)

# What is left of the open lots (not reversed) expiring in (now, until].
EXPIRING_SQL = text(
    """
SELECT coalesce(sum(remaining), 0)::bigint FROM points_lots
WHERE community_id = :c AND reversed_at IS NULL AND remaining > 0
  AND expires_at > :now AND expires_at <= :until
"""
)

# Confirmed redemptions of the period: the merchant's posted credit of each confirmation.
REDEMPTIONS_SQL = text(
    """
SELECT r.merchant_id, m.display_name AS merchant, r.reward_id, w.title,
       count(DISTINCT t.id) AS redemptions, sum(e.amount)::bigint AS points
FROM entries e
JOIN transactions t ON t.id = e.transaction_id AND t.kind = 'redemption'
JOIN redemptions r ON r.resolution_id = t.id
JOIN rewards w ON w.id = r.reward_id
JOIN parties m ON m.id = r.merchant_id
JOIN accounts a ON a.id = e.account_id AND a.party_id = r.merchant_id
WHERE e.community_id = :c AND e.asset = 'POINT' AND e.layer = 'posted' AND e.direction = 'credit'
  AND e.created_at >= :s AND e.created_at < :e
GROUP BY 1, 2, 3, 4
ORDER BY 2, 1, 4, 3
"""
)

# Every merchant with the POINT it received (posted credits, any kind) in the period.
MERCHANT_RECEIPTS_SQL = text(
    """
SELECT p.id AS merchant_id, p.display_name AS merchant,
       coalesce(sum(e.amount) FILTER (WHERE e.direction = 'credit'), 0)::bigint AS received
FROM parties p
LEFT JOIN accounts a ON a.party_id = p.id AND a.asset = 'POINT'
LEFT JOIN entries e ON e.account_id = a.id AND e.layer = 'posted'
  AND e.created_at >= :s AND e.created_at < :e
WHERE p.community_id = :c AND p.kind = 'merchant'
GROUP BY 1, 2
ORDER BY 2, 1
"""
)


async def service_groups(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime, tz: str
) -> list[Row[Any]]:
    """Credited and reversed minutes of the period by organisation, category and local month."""
    params = {"c": community_id, "s": start, "e": end, "tz": tz}
    return list((await conn.execute(SERVICE_GROUPS_SQL, params)).all())


async def volunteers(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime
) -> Row[Any]:
    """(active, new): members credited for service in the period; those credited first in it."""
    return (await conn.execute(VOLUNTEERS_SQL, {"c": community_id, "s": start, "e": end})).one()


async def lifetime_minutes(conn: AsyncConnection, community_id: uuid.UUID) -> dict[uuid.UUID, int]:
    """Each volunteer's approved service in minutes, ever: credits less their reversals."""
    return {r.member_id: int(r.minutes) for r in await conn.execute(LIFETIME_SQL, {"c": community_id})}


async def point_flows(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row[Any]]:
    return list((await conn.execute(POINT_FLOWS_SQL, {"c": community_id, "s": start, "e": end})).all())


async def outstanding(conn: AsyncConnection, community_id: uuid.UUID, at: datetime) -> int:
    return int((await conn.execute(OUTSTANDING_SQL, {"c": community_id, "at": at})).scalar_one())


async def expiring(conn: AsyncConnection, community_id: uuid.UUID, now: datetime, until: datetime) -> int:
    params = {"c": community_id, "now": now, "until": until}
    return int((await conn.execute(EXPIRING_SQL, params)).scalar_one())


async def redemptions(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row[Any]]:
    return list((await conn.execute(REDEMPTIONS_SQL, {"c": community_id, "s": start, "e": end})).all())


async def merchant_receipts(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row[Any]]:
    params = {"c": community_id, "s": start, "e": end}
    return list((await conn.execute(MERCHANT_RECEIPTS_SQL, params)).all())


async def database_now(conn: AsyncConnection) -> datetime:
    """The snapshot's clock (``now()`` is the transaction's start)."""
    return (await conn.execute(text("SELECT now()"))).scalar_one()


async def founded(conn: AsyncConnection, community_id: uuid.UUID) -> datetime:
    """When the community was created (the start of "all time")."""
    sql = text("SELECT created_at FROM communities WHERE id = :c")
    return (await conn.execute(sql, {"c": community_id})).scalar_one()


async def merchant_count(conn: AsyncConnection, community_id: uuid.UUID) -> int:
    """The community's partner merchants."""
    sql = text("SELECT count(*) FROM parties WHERE community_id = :c AND kind = 'merchant'")
    return int((await conn.execute(sql, {"c": community_id})).scalar_one())

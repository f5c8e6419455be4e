"""The reports' reads. Read-only; every figure is a sum over posted entries.

Two ways to the entries, both exact:

* Service (per record, per member): the period's ``service_credit`` transactions and
  their reversals, found through the ``transactions_journal`` index (community, kind,
  time), joined to their records and their HOUR entries. A service credit is the HOUR
  credit of a ``service_credit`` transaction to its record's member; its correction is
  the ``reversal`` whose ``reverses_id`` is that transaction, debiting the same member.
* Points by class (issued, redeemed, expired, donated, members' balance, merchants'
  receipts): ``ledger_rollups``, the entries summed by hour and class in the same
  database transaction as the entries (migration 0009), for the whole hours of the
  period; the view ``ledger_flows`` (the same classes, entry by entry) for what is
  left at its edges when a period does not start or end on the hour.

Times are the entries' ``created_at`` (set by the database), periods half-open
``[start, end)``.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.terms import Kind

HOUR = timedelta(hours=1)
EPOCH = datetime(2000, 1, 1, tzinfo=UTC)  # the rollups' ``date_bin`` origin


def whole_hours(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``[a, b)``: the whole rollup hours inside ``[start, end)`` (``a >= b``: none).
    ``[start, a)`` and ``[b, end)`` are the edges, read from the entries."""
    a = EPOCH + -((EPOCH - start) // HOUR) * HOUR  # start rounded up to the hour
    b = EPOCH + ((end - EPOCH) // HOUR) * HOUR  # end rounded down
    return (a, b) if a < b else (end, end)


def _split(start: datetime, end: datetime) -> dict[str, datetime]:
    a, b = whole_hours(start, end)
    return {"s": start, "a": a, "b": b, "e": end}


# Each HOUR movement of approved service on a member's account: +minutes for the credit,
# -minutes for the reversal of that credit, with the record it belongs to. Credits are
# found from the community's service_credit transactions, reversals from the records
# (each probes the unique index of reversals by what they reverse): neither reads the
# community's other transactions. ``{when}`` narrows both to a period; the entries' own
# ``created_at`` (the same instant as the transaction's: one database transaction) is
# the time reported.
_SERVICE_MOVES = """
SELECT r.member_id, r.organisation_id, r.category, e.created_at, e.amount AS minutes, 1 AS sign
FROM transactions t
JOIN service_records r ON r.transaction_id = t.id
JOIN entries e ON e.transaction_id = t.id
 AND e.asset = 'HOUR' AND e.layer = 'posted' AND e.direction = 'credit'
JOIN accounts a ON a.id = e.account_id AND a.party_id = r.member_id
WHERE t.community_id = :c AND t.kind = 'service_credit' {when}
UNION ALL
SELECT r.member_id, r.organisation_id, r.category, e.created_at, e.amount AS minutes, -1 AS sign
FROM service_records r
CROSS JOIN LATERAL (  -- its reversal, if any (one at most: transactions_reversed_once)
    SELECT t.id, t.created_at FROM transactions t
    WHERE t.reverses_id = r.transaction_id AND t.community_id = :c AND t.kind = 'reversal' LIMIT 1
) t
JOIN entries e ON e.transaction_id = t.id
 AND e.asset = 'HOUR' AND e.layer = 'posted' AND e.direction = 'debit'
JOIN accounts a ON a.id = e.account_id AND a.party_id = r.member_id
WHERE r.community_id = :c AND r.transaction_id IS NOT NULL {when}
"""
_IN_PERIOD = "AND t.created_at >= :s AND t.created_at < :e AND e.created_at >= :s AND e.created_at < :e"

SERVICE_GROUPS_SQL = text(
    f"""
WITH m AS ({_SERVICE_MOVES.format(when=_IN_PERIOD)})
SELECT m.organisation_id, p.display_name AS organisation, m.category,
       to_char(m.created_at AT TIME ZONE :tz, 'YYYY-MM') AS month,
       coalesce(sum(m.minutes) FILTER (WHERE m.sign = 1), 0)::bigint AS credited,
       coalesce(sum(m.minutes) FILTER (WHERE m.sign = -1), 0)::bigint AS reversed,
       count(*) FILTER (WHERE m.sign = 1) AS records
FROM m JOIN parties p ON p.id = m.organisation_id
GROUP BY 1, 2, 3, 4
ORDER BY 4, 2, 1, 3
"""
)

# Every volunteer ever credited: approved minutes (less reversals) before the period, at
# its end and now; whether credited in the period; when first credited.
VOLUNTEERS_SQL = text(
    f"""
WITH m AS ({_SERVICE_MOVES.format(when="")})
SELECT member_id,
       coalesce(sum(sign * minutes) FILTER (WHERE created_at < :s), 0)::bigint AS before,
       coalesce(sum(sign * minutes) FILTER (WHERE created_at < :e), 0)::bigint AS at_end,
       sum(sign * minutes)::bigint AS now,
       bool_or(sign = 1 AND created_at >= :s AND created_at < :e) AS active,
       min(created_at) FILTER (WHERE sign = 1) AS first_credit
FROM m GROUP BY member_id
"""
)

MEMBER_NAMES_SQL = text("SELECT id, display_name FROM parties WHERE id = ANY(:ids)")

# Posted POINT entries of a period by class: whole hours from the rollups, the edges (if
# any: a period not on the hour) from the entries. The edge part is left out of the
# statement when there is none, so no plan ever scans entries for an empty range.
# The edges' entries are found through their transactions' index (community, kind,
# time): an entry carries its transaction's time (one database transaction; audited).
_EDGES = """transaction_id IN (
    SELECT t.id FROM transactions t
    WHERE t.community_id = :c AND t.kind = ANY(:kinds)
      AND ((t.created_at >= :s AND t.created_at < :a) OR (t.created_at >= :b AND t.created_at < :e)))"""
KINDS = [str(k) for k in Kind]


def _rolled(rollups: str, flows: str, start: datetime, end: datetime) -> tuple[str, dict[str, Any]]:
    """``rollups`` over the whole hours, ``UNION ALL`` ``flows`` over the edges if any."""
    span: dict[str, Any] = _split(start, end)
    if span["s"] == span["a"] and span["b"] == span["e"]:
        return rollups, span
    return f"{rollups} UNION ALL {flows} AND {_EDGES}", {**span, "kinds": KINDS}


_FLOWS_ROLLED = """SELECT kind, reverses_kind, holder, direction, amount FROM ledger_rollups
 WHERE community_id = :c AND asset = 'POINT' AND hour >= :a AND hour < :b"""
_FLOWS_EDGES = """SELECT kind, reverses_kind, holder, direction, amount FROM ledger_flows
 WHERE community_id = :c AND asset = 'POINT'"""
POINT_FLOWS_SQL = """
SELECT kind, reverses_kind, holder, direction, sum(amount)::bigint AS points FROM ({}) x
GROUP BY 1, 2, 3, 4
"""

# The members' POINT balances (posted) summed, as of a moment: the community's liability.
_MEMBERS_ROLLED = """SELECT direction, amount FROM ledger_rollups
 WHERE community_id = :c AND asset = 'POINT' AND holder = 'member' AND hour >= :a AND hour < :b"""
_MEMBERS_EDGES = """SELECT direction, amount FROM ledger_flows
 WHERE community_id = :c AND asset = 'POINT' AND holder = 'member'"""
OUTSTANDING_SQL = """
SELECT coalesce(sum(CASE direction WHEN 'credit' THEN amount ELSE -amount END), 0)::bigint FROM ({}) x
"""

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
FROM transactions t
JOIN entries e ON e.transaction_id = t.id
-- a redemption at this community's merchant by a member of another community was resolved
-- in the member's ledger: its crossing names the part that credited the merchant here
LEFT JOIN crossings c ON c.to_transaction_id = t.id
JOIN redemptions r ON r.resolution_id = coalesce(c.from_transaction_id, t.id)
JOIN rewards w ON w.id = r.reward_id
JOIN parties m ON m.id = r.merchant_id
JOIN accounts a ON a.id = e.account_id AND a.party_id = r.merchant_id
WHERE t.community_id = :c AND t.kind = 'redemption' AND t.created_at >= :s AND t.created_at < :e
  AND e.asset = 'POINT' AND e.layer = 'posted' AND e.direction = 'credit'
  AND e.created_at >= :s AND e.created_at < :e
GROUP BY 1, 2, 3, 4
ORDER BY 2, 1, 4, 3
"""
)

# The posted POINT balance of every account of a community that is not a member's: the
# system accounts (by accounts_system), organisations' and merchants' (by parties_community).
OTHERS_POINT_SQL = text(
    """
SELECT coalesce(sum(a.credits_posted - a.debits_posted), 0)::bigint FROM accounts a
WHERE a.community_id = :c AND a.asset = 'POINT'
  AND (a.system_role IS NOT NULL
       OR a.party_id IN (SELECT p.id FROM parties p WHERE p.community_id = :c AND p.kind <> 'member'))
"""
)

# Every merchant with the POINT it received (posted credits, any kind) in the period.
_MERCHANTS_ROLLED = """SELECT account_id, amount FROM ledger_rollups
 WHERE community_id = :c AND asset = 'POINT' AND holder = 'merchant' AND direction = 'credit'
   AND hour >= :a AND hour < :b"""
_MERCHANTS_EDGES = """SELECT account_id, amount FROM ledger_flows
 WHERE community_id = :c AND asset = 'POINT' AND holder = 'merchant' AND direction = 'credit'"""
MERCHANT_RECEIPTS_SQL = """
WITH received AS ({})
SELECT p.id AS merchant_id, p.display_name AS merchant, coalesce(sum(r.amount), 0)::bigint AS received
FROM parties p
LEFT JOIN accounts a ON a.party_id = p.id AND a.asset = 'POINT'
LEFT JOIN received r ON r.account_id = a.id
WHERE p.community_id = :c AND p.kind = 'merchant'
GROUP BY 1, 2
ORDER BY 2, 1
"""


async def service_groups(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime, tz: str
) -> list[Row[Any]]:
    """Credited and reversed minutes of the period by organisation, category and local month."""
    params = {"c": community_id, "s": start, "e": end, "tz": tz}
    return list((await conn.execute(SERVICE_GROUPS_SQL, params)).all())


async def volunteers(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row[Any]]:
    """Every volunteer ever credited: member_id, before, at_end, now (minutes), active, first_credit."""
    params = {"c": community_id, "s": start, "e": end}
    return list((await conn.execute(VOLUNTEERS_SQL, params)).all())


async def member_names(conn: AsyncConnection, ids: list[uuid.UUID]) -> dict[uuid.UUID, str]:
    return {r.id: r.display_name for r in await conn.execute(MEMBER_NAMES_SQL, {"ids": ids})}


async def point_flows(
    conn: AsyncConnection, community_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row[Any]]:
    """The period's posted POINT by (kind, reverses_kind, holder, direction)."""
    part, span = _rolled(_FLOWS_ROLLED, _FLOWS_EDGES, start, end)
    return list((await conn.execute(text(POINT_FLOWS_SQL.format(part)), {"c": community_id, **span})).all())


async def outstanding(
    conn: AsyncConnection, community_id: uuid.UUID, at: datetime, via: str | None = None
) -> int:
    """The members' posted POINT balance at ``at``: their entries before it, summed from
    whichever end of the history is nearer. Near the start: the rollups (and entries)
    before ``at``. Near now: the members' balance now less what moved after ``at``; the
    balance now is minus the other POINT accounts' (a community's asset sums to zero,
    checked by the audit), a dozen accounts instead of every member's. ``via`` ("start",
    "now") chooses the way (tests check that both agree)."""
    now = await database_now(conn)
    if via is None:
        via = "start" if at - await founded(conn, community_id) <= now - at else "now"
    if via == "start":
        part, span = _rolled(_MEMBERS_ROLLED, _MEMBERS_EDGES, EPOCH, at)
        return int(
            (await conn.execute(text(OUTSTANDING_SQL.format(part)), {"c": community_id, **span})).scalar_one()
        )
    beyond = EPOCH + ((max(now, at) - EPOCH) // HOUR + 2) * HOUR  # past anything visible, on the hour
    part, span = _rolled(_MEMBERS_ROLLED, _MEMBERS_EDGES, at, beyond)
    after = int(
        (await conn.execute(text(OUTSTANDING_SQL.format(part)), {"c": community_id, **span})).scalar_one()
    )
    others = int((await conn.execute(OTHERS_POINT_SQL, {"c": community_id})).scalar_one())
    return -others - after


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
    part, span = _rolled(_MERCHANTS_ROLLED, _MERCHANTS_EDGES, start, end)
    return list(
        (await conn.execute(text(MERCHANT_RECEIPTS_SQL.format(part)), {"c": community_id, **span})).all()
    )


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

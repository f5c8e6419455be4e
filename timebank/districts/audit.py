"""`timebank audit` across ledgers: crossings whole, clearing equal to position.

Each ledger alone summing to zero per asset is the ledger's own check ("every asset
of every community sums to zero": a district's ledger is one of them). Here:

* every crossing has its three parts, each in its own ledger, moving exactly the
  crossing's amounts (after the rate) between exactly the accounts it names, and each
  part's ``reason`` states the same crossing (``reference.parse``);
* every crossing transaction belongs to a crossing (none posted on its own);
* every clearing account's balance (debits − credits) equals its community's
  position in the district's ledger (credits − debits of its position account);
* every approved settlement posted its lines, no more and no less.

Computed from the entries, independently of the code that wrote them.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.audit import run_checks
from timebank.districts import reference

SQL_CHECKS: dict[str, str] = {
    "every crossing transaction belongs to a crossing": """
        SELECT t.id AS transaction_id, t.community_id, t.kind
          FROM transactions t
         WHERE t.kind = 'crossing'
           AND NOT EXISTS (SELECT 1 FROM crossings c
                            WHERE t.id IN (c.from_transaction_id, c.district_transaction_id, c.to_transaction_id))
    """,
    "every clearing balance equals its community's position in the district": """
        SELECT m.community_id, a.asset,
               c.debits_posted - c.credits_posted AS clearing_balance,
               a.credits_posted - a.debits_posted AS district_position
          FROM district_members m
          JOIN accounts a ON a.party_id = m.party_id
          LEFT JOIN accounts c ON c.community_id = m.community_id AND c.system_role = 'clearing'
                              AND c.asset = a.asset
         WHERE m.joined_at IS NOT NULL
           AND coalesce(c.debits_posted - c.credits_posted, 0) <> a.credits_posted - a.debits_posted
    """,
    "every approved settlement posted its lines": """
        WITH lines AS (
            SELECT s.id, s.district_transaction_id, (l ->> 'community_id')::uuid AS community_id,
                   l ->> 'asset' AS asset, (l ->> 'amount')::bigint AS amount
              FROM district_settlements s, jsonb_array_elements(s.lines) l
             WHERE s.approved_at IS NOT NULL),
        moved AS (
            SELECT l.id, l.community_id, l.asset, l.amount,
                   (SELECT coalesce(sum(CASE e.direction WHEN 'debit' THEN e.amount ELSE -e.amount END), 0)
                      FROM entries e JOIN district_members m ON m.community_id = l.community_id
                      JOIN accounts a ON a.id = e.account_id AND a.party_id = m.party_id
                     WHERE e.transaction_id = l.district_transaction_id AND e.asset = l.asset
                       AND e.layer = 'posted') AS district_moved,
                   (SELECT coalesce(sum(CASE e.direction WHEN 'credit' THEN e.amount ELSE -e.amount END), 0)
                      FROM settlement_parts p JOIN entries e ON e.transaction_id = p.transaction_id
                      JOIN accounts a ON a.id = e.account_id AND a.system_role = 'clearing'
                     WHERE p.settlement_id = l.id AND p.community_id = l.community_id AND e.asset = l.asset
                       AND e.layer = 'posted') AS clearing_moved
              FROM lines l)
        SELECT id AS settlement_id, community_id, asset, amount, district_moved, clearing_moved
          FROM moved WHERE district_moved <> amount OR clearing_moved <> amount
    """,
}

_PARTS = text(
    """
    SELECT c.*, t.id AS tx_id, t.community_id AS tx_community, t.kind AS tx_kind, t.reason AS tx_reason,
           e.account_id, e.direction, sum(e.amount) AS amount, a.system_role, a.party_id
      FROM crossings c
      JOIN transactions t ON t.id IN (c.from_transaction_id, c.district_transaction_id, c.to_transaction_id)
      LEFT JOIN entries e ON e.transaction_id = t.id AND e.layer = 'posted'
      LEFT JOIN accounts a ON a.id = e.account_id
     GROUP BY c.id, c.district_id, t.id, t.community_id, e.account_id, e.direction, a.system_role, a.party_id
     ORDER BY c.id
    """
)
_POSITIONS = text(
    "SELECT m.community_id, a.asset, a.id FROM district_members m JOIN accounts a ON a.party_id = m.party_id"
)
_CLEARING = text("SELECT community_id, asset, id FROM accounts WHERE system_role = 'clearing'")


async def _crossings_whole(conn: AsyncConnection) -> list[dict[str, Any]]:
    positions = {(r.community_id, r.asset): r.id for r in await conn.execute(_POSITIONS)}
    clearing = {(r.community_id, r.asset): r.id for r in await conn.execute(_CLEARING)}
    rows = (await conn.execute(_PARTS)).mappings().all()
    by_crossing: dict[uuid.UUID, list[Any]] = defaultdict(list)
    for r in rows:
        by_crossing[r["id"]].append(r)
    wrong = []
    for crossing_id, parts in by_crossing.items():
        problem = _check_crossing(parts, positions, clearing)
        if problem:
            wrong.append({"crossing_id": str(crossing_id), "problem": problem})
    return wrong


Accounts = dict[tuple[uuid.UUID, str], uuid.UUID]


def _check_crossing(rows: list[Any], positions: Accounts, clearing: Accounts) -> str | None:
    c = rows[0]
    txs: dict[uuid.UUID, dict[tuple[Any, str], int]] = defaultdict(dict)
    meta: dict[uuid.UUID, Any] = {}
    for r in rows:
        meta[r["tx_id"]] = r
        if r["account_id"] is not None:
            txs[r["tx_id"]][(r["account_id"], r["direction"])] = int(r["amount"])
    ids = (c["from_transaction_id"], c["district_transaction_id"], c["to_transaction_id"])
    ledgers = (c["from_community_id"], c["district_id"], c["to_community_id"])
    for tx_id, ledger_id in zip(ids, ledgers, strict=True):
        if tx_id not in meta:
            return f"part {tx_id} is missing"
        if meta[tx_id]["tx_community"] != ledger_id:
            return f"part {tx_id} is in ledger {meta[tx_id]['tx_community']}, not {ledger_id}"
        ref = reference.parse(meta[tx_id]["tx_reason"])
        expected = (
            c["id"],
            c["asset"],
            c["from_community_id"],
            ids[0],
            c["district_id"],
            ids[1],
            c["to_community_id"],
            ids[2],
            c["rate_from"],
            c["rate_to"],
            c["amount_requested"],
            c["amount_sent"],
            c["amount_received"],
        )
        if ref is None or tuple(getattr(ref, f) for f in ref.__slots__) != expected:
            return f"part {tx_id}'s reason does not state this crossing"
    sent, received = c["amount_sent"], c["amount_received"]
    if received * c["rate_from"] > sent * c["rate_to"]:
        return f"{received} received for {sent} sent at {c['rate_from']}:{c['rate_to']} creates value"
    asset = c["asset"]
    if txs[ids[0]] != {
        (c["from_account_id"], "debit"): sent,
        (clearing.get((c["from_community_id"], asset)), "credit"): sent,
    }:
        return f"the sending part does not move {sent} from the sender to its clearing account"
    district = txs[ids[1]]
    pos_from = positions.get((c["from_community_id"], asset))
    pos_to = positions.get((c["to_community_id"], asset))
    if district.get((pos_from, "debit")) != sent or district.get((pos_to, "credit")) != received:
        return "the district's part does not move the positions by the amounts sent and received"
    others = {k for k in district if k[0] not in (pos_from, pos_to)}
    if (sent == received and others) or (sent != received and len(others) != 2):
        return "the district's part moves other accounts than the positions and the exchange"
    if txs[ids[2]] != {
        (clearing.get((c["to_community_id"], asset)), "debit"): received,
        (c["to_account_id"], "credit"): received,
    }:
        return f"the receiving part does not move {received} from its clearing account to the recipient"
    return None


async def district_checks(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    out = {"every crossing has its three parts with the amounts its rate gives": await _crossings_whole(conn)}
    out.update(await run_checks(conn, SQL_CHECKS))
    return out

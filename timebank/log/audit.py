"""Audit of the transparency log: recompute every leaf and root from the ledger.

Runs inside ``timebank audit``'s REPEATABLE READ snapshot (see ledger/audit.py). Each
community's log is rebuilt from the stored transactions, in log order, in bounded
chunks; every leaf hash, every kept checkpoint's root and its signature are compared
with what the bank signed. A difference names the transaction or tree size.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.settings import get_settings
from timebank.log import merkle
from timebank.log.service import LEAF_HASH, canonical_bytes, origin
from timebank.log.verify import VerificationError, b64, leaf_hash, verify_checkpoint

CHUNK = 5_000

SQL_CHECKS: dict[str, str] = {
    "every transaction is in the log once (or queued)": """
        SELECT t.id AS transaction_id, t.community_id,
               (SELECT count(*) FROM log_leaves l WHERE l.transaction_id = t.id) AS leaves,
               (SELECT count(*) FROM log_queue q WHERE q.transaction_id = t.id) AS queued
          FROM transactions t
         WHERE (SELECT count(*) FROM log_leaves l WHERE l.transaction_id = t.id)
             + (SELECT count(*) FROM log_queue q WHERE q.transaction_id = t.id) <> 1
    """,
    "log leaves belong to their community's transactions": """
        SELECT l.community_id, l.idx, l.transaction_id
          FROM log_leaves l LEFT JOIN transactions t ON t.id = l.transaction_id
         WHERE t.id IS NULL OR t.community_id <> l.community_id
    """,
    "log indexes are contiguous and cover every checkpoint": """
        SELECT c.id AS community_id, count(l.idx) AS leaves, max(l.idx) AS last_index,
               (SELECT max(tree_size) FROM log_checkpoints k WHERE k.community_id = c.id) AS checkpoint_size
          FROM communities c LEFT JOIN log_leaves l ON l.community_id = c.id
         GROUP BY c.id
        HAVING count(l.idx) <> coalesce(max(l.idx) + 1, 0)
            OR coalesce((SELECT max(tree_size) FROM log_checkpoints k WHERE k.community_id = c.id), 0) > count(l.idx)
    """,
    "every stored subtree hash is the hash of its two halves": """
        SELECT p.community_id, p.level, p.idx FROM log_nodes p
          LEFT JOIN log_nodes l ON l.community_id = p.community_id AND l.level = p.level - 1 AND l.idx = 2 * p.idx
          LEFT JOIN log_nodes r ON r.community_id = p.community_id AND r.level = p.level - 1 AND r.idx = 2 * p.idx + 1
         WHERE p.level > 0
           AND (l.hash IS NULL OR r.hash IS NULL OR p.hash <> sha256('\\x01'::bytea || l.hash || r.hash))
    """,
}

MERKLE_CHECK = "each log recomputed from the ledger matches its signed checkpoints"


async def log_checks(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for name, sql in SQL_CHECKS.items():
        rows = (await conn.execute(text(sql))).mappings().all()
        results[name] = [{k: str(v) for k, v in row.items()} for row in rows]
    keys = {
        r.kid: bytes(r.public_key) for r in await conn.execute(text("SELECT kid, public_key FROM log_keys"))
    }
    prefix = get_settings().log_origin
    problems: list[dict[str, Any]] = []
    for (community_id,) in (await conn.execute(text("SELECT id FROM communities ORDER BY id"))).all():
        problems.extend(await _recompute(conn, community_id, keys, prefix))
    results[MERKLE_CHECK] = problems
    return results


async def _recompute(
    conn: AsyncConnection, community_id: Any, keys: dict[str, bytes], prefix: str
) -> list[dict[str, Any]]:
    problems: list[dict[str, Any]] = []
    checkpoints = (
        await conn.execute(
            text(
                "SELECT tree_size, root_hash, note FROM log_checkpoints WHERE community_id = :c ORDER BY tree_size"
            ),
            {"c": community_id},
        )
    ).all()
    pending = list(checkpoints)
    frontier = merkle.Frontier(0, {})

    def compare_checkpoints() -> None:
        while pending and pending[0].tree_size == frontier.size:
            cp = pending.pop(0)
            if frontier.root() != bytes(cp.root_hash):
                problems.append(
                    {
                        "community_id": str(community_id),
                        "tree_size": cp.tree_size,
                        "problem": f"root recomputed from the ledger is {b64(frontier.root())}, "
                        f"checkpoint says {b64(bytes(cp.root_hash))}",
                    }
                )
            try:
                signed = verify_checkpoint(cp.note, keys, origin(prefix, community_id))
                if (signed.size, signed.root) != (cp.tree_size, bytes(cp.root_hash)):
                    raise VerificationError("its note names another size or root")
            except VerificationError as exc:
                problems.append(
                    {
                        "community_id": str(community_id),
                        "tree_size": cp.tree_size,
                        "problem": f"checkpoint signature: {exc}",
                    }
                )

    compare_checkpoints()
    after = -1
    while True:
        leaves = (
            await conn.execute(
                text(
                    f"SELECT l.idx, l.transaction_id, n.hash AS leaf_hash FROM log_leaves l {LEAF_HASH} "
                    "WHERE l.community_id = :c AND l.idx > :a ORDER BY l.idx LIMIT :n"
                ),
                {"c": community_id, "a": after, "n": CHUNK},
            )
        ).all()
        if not leaves:
            break
        data = await canonical_bytes(conn, [leaf.transaction_id for leaf in leaves])
        for leaf in leaves:
            stored = bytes(leaf.leaf_hash)
            tx_bytes = data.get(str(leaf.transaction_id))
            if tx_bytes is None or leaf_hash(tx_bytes) != stored:
                problems.append(
                    {
                        "community_id": str(community_id),
                        "index": leaf.idx,
                        "transaction_id": str(leaf.transaction_id),
                        "problem": "the ledger's transaction no longer hashes to its logged leaf",
                    }
                )
            frontier.append(stored)  # the tree as logged; a root mismatch shows a changed leaf record
            compare_checkpoints()
        after = leaves[-1].idx
    for cp in pending:
        problems.append(
            {
                "community_id": str(community_id),
                "tree_size": cp.tree_size,
                "problem": "checkpoint is larger than the stored log",
            }
        )
    return problems

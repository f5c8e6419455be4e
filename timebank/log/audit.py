"""Audit of the transparency log: recompute every leaf and root from the ledger.

Runs inside ``timebank audit``'s REPEATABLE READ snapshot (see ledger/audit.py). Each
community's log is rebuilt from the stored transactions, in log order, in bounded
chunks; every leaf hash, every kept checkpoint's root and its signature are compared
with what the bank signed. A difference names the transaction or tree size.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as community_queries
from timebank.core.audit import run_checks
from timebank.core.settings import get_settings
from timebank.log import merkle, queries
from timebank.log.canonical import canonical_bytes
from timebank.log.models import LogCheckpoint
from timebank.log.registry import published_keys
from timebank.log.timestamps import origin
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
    results = await run_checks(conn, SQL_CHECKS)
    keys = await published_keys(conn)
    prefix = get_settings().log_origin
    problems: list[dict[str, Any]] = []
    for community in await community_queries.all_ledgers(conn):
        problems.extend(await _recompute(conn, community.id, keys, prefix))
    results[MERKLE_CHECK] = problems
    return results


def _checkpoint_problems(
    cp: LogCheckpoint, root: bytes, keys: dict[str, bytes], log_origin: str
) -> list[dict[str, Any]]:
    """What is wrong with a kept checkpoint, given the root recomputed for its size."""
    found: list[str] = []
    if root != bytes(cp.root_hash):
        found.append(
            f"root recomputed from the ledger is {b64(root)}, checkpoint says {b64(bytes(cp.root_hash))}"
        )
    try:
        signed = verify_checkpoint(cp.note, keys, log_origin)
        if (signed.size, signed.root) != (cp.tree_size, bytes(cp.root_hash)):
            raise VerificationError("its note names another size or root")
    except VerificationError as exc:
        found.append(f"checkpoint signature: {exc}")
    return [
        {"community_id": str(cp.community_id), "tree_size": cp.tree_size, "problem": problem}
        for problem in found
    ]


class _Replay:
    """A community's log rebuilt leaf by leaf, each kept checkpoint checked at its size."""

    def __init__(self, checkpoints: list[LogCheckpoint], keys: dict[str, bytes], log_origin: str) -> None:
        self.pending = checkpoints
        self.keys = keys
        self.origin = log_origin
        self.frontier = merkle.Frontier(0, {})
        self.problems: list[dict[str, Any]] = []
        self.compare_checkpoints()

    def compare_checkpoints(self) -> None:
        while self.pending and self.pending[0].tree_size == self.frontier.size:
            cp = self.pending.pop(0)
            self.problems.extend(_checkpoint_problems(cp, self.frontier.root(), self.keys, self.origin))

    def add(self, leaf: queries.LoggedLeaf, tx_bytes: bytes | None, community_id: uuid.UUID) -> None:
        if tx_bytes is None or leaf_hash(tx_bytes) != leaf.leaf_hash:
            self.problems.append(
                {
                    "community_id": str(community_id),
                    "index": leaf.idx,
                    "transaction_id": str(leaf.transaction_id),
                    "problem": "the ledger's transaction no longer hashes to its logged leaf",
                }
            )
        self.frontier.append(
            leaf.leaf_hash
        )  # the tree as logged; a root mismatch shows a changed leaf record
        self.compare_checkpoints()

    def finish(self) -> list[dict[str, Any]]:
        for cp in self.pending:
            self.problems.append(
                {
                    "community_id": str(cp.community_id),
                    "tree_size": cp.tree_size,
                    "problem": "checkpoint is larger than the stored log",
                }
            )
        return self.problems


async def _recompute(
    conn: AsyncConnection, community_id: uuid.UUID, keys: dict[str, bytes], prefix: str
) -> list[dict[str, Any]]:
    replay = _Replay(await queries.checkpoints(conn, community_id), keys, origin(prefix, community_id))
    after = -1
    while leaves := await queries.leaves_after(conn, community_id, after, CHUNK):
        data = await canonical_bytes(conn, [leaf.transaction_id for leaf in leaves])
        for leaf in leaves:
            replay.add(leaf, data.get(str(leaf.transaction_id)), community_id)
        after = leaves[-1].idx
    return replay.finish()

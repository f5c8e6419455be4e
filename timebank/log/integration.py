"""Integration: append a community's queued transactions to its Merkle log and sign a
checkpoint, all in one database transaction (run by integrator.py and the CLI).
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as community_queries
from timebank.db import driver
from timebank.log import merkle, queries
from timebank.log.canonical import YIELD_EVERY, canonical_bytes
from timebank.log.keys import Signer
from timebank.log.models import LogCheckpoint
from timebank.log.timestamps import origin
from timebank.log.verify import leaf_hash


@dataclass(frozen=True)
class Integrated:
    community_id: uuid.UUID
    tree_size: int
    added: int


async def _stored_frontier(
    conn: AsyncConnection, community_id: uuid.UUID, last: LogCheckpoint | None
) -> merkle.Frontier:
    """The right edge of the stored tree, checked against the last signed checkpoint."""
    size = 0 if last is None else last.tree_size
    nodes = set(merkle.perfect_nodes(0, size)) if size else set()
    frontier = merkle.Frontier(size, await queries.stored_nodes(conn, community_id, nodes))
    # TigerBeetle-style assertion: never extend a tree that disagrees with what was signed.
    assert last is None or frontier.root() == bytes(last.root_hash), (
        f"log of {community_id}: stored tree != checkpoint"
    )
    return frontier


async def _extend(
    conn: AsyncConnection, frontier: merkle.Frontier, ids: list[str]
) -> tuple[list[tuple[int, str]], list[tuple[merkle.Node, bytes]]]:
    """Append the transactions' leaves to ``frontier``; return the new leaves and nodes."""
    data = await canonical_bytes(conn, ids)
    assert len(data) == len(ids), f"queued transactions missing from the ledger: {set(ids) - data.keys()}"
    leaves: list[tuple[int, str]] = []
    nodes: list[tuple[merkle.Node, bytes]] = []
    for n, tx_id in enumerate(ids, 1):
        leaves.append((frontier.size, tx_id))
        nodes.extend(frontier.append(leaf_hash(data[tx_id])))
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # the integrator shares the event loop with requests
    return leaves, nodes


async def integrate(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    signer: Signer,
    origin_prefix: str,
    max_batch: int = 10_000,
) -> Integrated | None:
    """Append queued transactions of one community and sign a checkpoint.

    One database transaction: either the leaves, their nodes, the checkpoint and the
    dequeue all commit, or nothing does. Only one integrator works on a community at a
    time (a transaction-scoped advisory lock; others skip it). Returns None when another
    integrator holds the community or there was nothing to do.
    """
    assert conn.in_transaction()
    if not await queries.lock_community(conn, community_id):
        return None
    last = await queries.latest_checkpoint(conn, community_id)
    raw = await driver(conn)
    queue = await queries.queued(raw, community_id, max_batch)
    if not queue and last is not None:
        return None
    frontier = await _stored_frontier(conn, community_id, last)
    leaves, nodes = await _extend(conn, frontier, [tx_id for _, tx_id in queue])
    if leaves:
        await queries.append(raw, community_id, leaves, nodes, [seq for seq, _ in queue])
    root = frontier.root()
    note = signer.checkpoint(origin(origin_prefix, community_id), frontier.size, root)
    await queries.add_checkpoint(conn, community_id, frontier.size, root, note, signer.kid)
    return Integrated(community_id, frontier.size, len(leaves))


async def integrate_all(
    engine: Any, signer: Signer, origin_prefix: str, max_batch: int = 10_000
) -> list[Integrated]:
    """One pass over every community with something to integrate (each in its own transaction)."""
    done: list[Integrated] = []
    async with engine.connect() as conn:
        every = [c.id for c in await community_queries.all_ledgers(conn)]
        todo = await queries.communities_to_integrate(conn, every)
        await conn.rollback()
        for community_id in todo:
            while True:
                async with conn.begin():
                    result = await integrate(conn, community_id, signer, origin_prefix, max_batch)
                if result is None:
                    break
                done.append(result)
                if result.added < max_batch:
                    break
    return done

"""What the log serves publicly: checkpoints and RFC 6962 inclusion and consistency
proofs, computed from the stored perfect-subtree hashes (merkle.py)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, NotFound
from timebank.log import merkle, queries
from timebank.log.timestamps import MAXIMUM_MERGE_DELAY_SECONDS
from timebank.log.verify import b64


def log_community(principal: Principal | None, community_id: uuid.UUID | None) -> uuid.UUID:
    if community_id is not None:
        return community_id
    if principal is not None:
        return principal.community_id
    raise BadRequest("name the log with community_id= (or send an API key of that community)")


async def _tree_size(conn: AsyncConnection, community_id: uuid.UUID) -> int:
    last = await queries.latest_checkpoint(conn, community_id)
    if last is None:
        raise NotFound(f"community {community_id} has no log yet")
    return int(last.tree_size)


def _check_size(size: int, tree_size: int, what: str) -> None:
    if not 0 <= size <= tree_size:
        raise BadRequest(f"{what} must be from 0 to {tree_size}, the size of the latest checkpoint")


async def prove(conn: AsyncConnection, community_id: uuid.UUID, ranges: list[merkle.Range]) -> list[bytes]:
    """The hashes of ``ranges`` (a proof), from the stored nodes in one query."""
    hashes = await queries.stored_nodes(conn, community_id, merkle.nodes_for(ranges))
    return [merkle.range_hash(r, hashes) for r in ranges]


async def inclusion_proof(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    *,
    index: int | None,
    transaction_id: uuid.UUID | None,
    size: int | None,
) -> dict[str, Any]:
    if (index is None) == (transaction_id is None):
        raise BadRequest("give either index= or transaction_id=")
    tree_size = await _tree_size(conn, community_id)
    size = tree_size if size is None else size
    _check_size(size, tree_size, "size")
    if index is not None:
        leaf = await queries.leaf_at(conn, community_id, index)
    else:
        assert transaction_id is not None
        leaf = await queries.leaf_of(conn, transaction_id, community_id)
    if leaf is None:
        raise NotFound(
            "no such entry in this log (a new transaction is integrated within "
            f"{MAXIMUM_MERGE_DELAY_SECONDS} s)"
        )
    if leaf.idx >= size:
        raise BadRequest(f"entry {leaf.idx} is not in a tree of size {size}")
    proof = await prove(conn, community_id, merkle.inclusion_ranges(leaf.idx, size))
    return {
        "index": leaf.idx,
        "tree_size": size,
        "leaf_hash": b64(leaf.leaf_hash),
        "transaction_id": str(leaf.transaction_id),
        "proof": [b64(h) for h in proof],
    }


async def consistency_proof(
    conn: AsyncConnection, community_id: uuid.UUID, first: int, second: int
) -> dict[str, Any]:
    tree_size = await _tree_size(conn, community_id)
    _check_size(second, tree_size, "second")
    if not 1 <= first <= second:
        raise BadRequest("first must be from 1 to second (every tree extends the empty one)")
    proof = await prove(conn, community_id, merkle.consistency_ranges(first, second))
    return {"first": first, "second": second, "proof": [b64(h) for h in proof]}


async def checkpoint_note(conn: AsyncConnection, community_id: uuid.UUID, size: int | None) -> str:
    if size is None:
        row = await queries.latest_checkpoint(conn, community_id)
    else:
        row = await queries.checkpoint(conn, community_id, size)
    if row is None:
        raise NotFound(
            "no checkpoint of that size is kept"
            if size is not None
            else f"community {community_id} has no log yet"
        )
    return str(row.note)


async def checkpoints_page(
    conn: AsyncConnection, community_id: uuid.UUID, after: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    rows = await queries.checkpoints(conn, community_id, -1 if after is None else after, limit + 1)
    items = [_checkpoint_view(r) for r in rows[:limit]]
    return items, (str(rows[limit - 1].tree_size) if len(rows) > limit else None)


def _checkpoint_view(r: Any) -> dict[str, Any]:
    return {
        "tree_size": r.tree_size,
        "root_hash": b64(bytes(r.root_hash)),
        "kid": r.kid,
        "created_at": rfc3339(r.created_at),
    }


async def checkpoint_history(
    conn: AsyncConnection, community_id: uuid.UUID, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Kept checkpoints newest first (the public page's history), in pages: the items
    smaller than ``before`` and the cursor of the next page (None on the last)."""
    rows = await queries.checkpoints_newest_first(conn, community_id, before, limit + 1)
    items = [_checkpoint_view(r) for r in rows[:limit]]
    return items, (str(rows[limit - 1].tree_size) if len(rows) > limit else None)


WAITING_CAP = 100_000  # transactions waiting for the integrator, counted up to this


async def log_state(conn: AsyncConnection, community_id: uuid.UUID) -> dict[str, Any]:
    """The community's log at a glance: its latest checkpoint (size, time, key; None
    before the first) and the transactions still waiting for the integrator (how many,
    up to ``WAITING_CAP``, and the time of the oldest)."""
    last = await queries.latest_checkpoint(conn, community_id)
    n, oldest = await queries.waiting(conn, community_id, WAITING_CAP)
    return {
        "checkpoint": None
        if last is None
        else {"tree_size": last.tree_size, "created_at": rfc3339(last.created_at), "kid": last.kid},
        "waiting": n,
        "waiting_capped": n >= WAITING_CAP,
        "oldest_waiting_at": None if oldest is None else rfc3339(oldest),
    }


async def inclusion(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
    """Where a transaction is in its community's log: ``checkpointed`` (its index, in the
    latest checkpoint: its size and time), ``sequenced`` (its index; in no checkpoint
    yet) or ``waiting`` (for the integrator, which gives it an index within seconds)."""
    leaf = await queries.leaf_of(conn, tx_id, community_id)
    if leaf is None:
        return {"state": "waiting"}
    last = await queries.latest_checkpoint(conn, community_id)
    if last is None or last.tree_size <= leaf.idx:
        return {"state": "sequenced", "index": leaf.idx}
    return {
        "state": "checkpointed",
        "index": leaf.idx,
        "tree_size": last.tree_size,
        "checkpoint_at": rfc3339(last.created_at),
    }

"""Every read and write of the transparency log's tables (models.py), in one place.

Reads are SQLAlchemy Core ``select()`` on the table models, run on the caller's
``AsyncConnection`` (no ORM session: the log never needs identity maps or unit of
work), and come back as instances of the table models (or ``LoggedLeaf`` for the
leaf-with-hash join), never as untyped rows. What stays as SQL, here and only here:
the lookup of many (level, index) nodes at once (an ``unnest`` join: one prepared
statement whatever the number of nodes), the integrator's batch path (asyncpg with
``unnest`` arrays and text identifiers: thousands of rows per pass), and which of a
list of communities have work (an ``unnest`` of their ids, with two index probes each).
The list of communities itself comes from ``timebank.community.queries``.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import and_, desc, func, insert, select, text
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlmodel import SQLModel

from timebank.log.merkle import Node
from timebank.log.models import LogCheckpoint, LogKey, LogLeaf, LogNode, LogQueueItem

M = TypeVar("M", bound=SQLModel)


def _models(model: type[M], rows: Any) -> list[M]:
    return [model(**row._mapping) for row in rows]


# --- keys --------------------------------------------------------------------------------


async def register_key(
    conn: AsyncConnection,
    kid: str,
    public_key: bytes,
    created_at: datetime | None,
    retired_at: datetime | None,
) -> None:
    """Publish a key (idempotent; a retirement, once recorded, stays)."""
    stmt = pg_insert(LogKey).values(
        kid=kid,
        public_key=public_key,
        created_at=func.now() if created_at is None else created_at,
        retired_at=retired_at,
    )
    await conn.execute(
        stmt.on_conflict_do_update(
            index_elements=[LogKey.kid],
            set_={"retired_at": func.coalesce(LogKey.retired_at, stmt.excluded.retired_at)},
        )
    )


async def keys(conn: AsyncConnection) -> list[LogKey]:
    """Every key ever published, oldest first."""
    rows = await conn.execute(select(LogKey).order_by(LogKey.created_at, LogKey.kid))
    return _models(LogKey, rows)


# --- checkpoints -----------------------------------------------------------------------------


async def latest_checkpoint(conn: AsyncConnection, community_id: uuid.UUID) -> LogCheckpoint | None:
    row = (
        await conn.execute(
            select(LogCheckpoint)
            .where(LogCheckpoint.community_id == community_id)
            .order_by(desc(LogCheckpoint.tree_size))
            .limit(1)
        )
    ).first()
    return None if row is None else LogCheckpoint(**row._mapping)


async def checkpoint(conn: AsyncConnection, community_id: uuid.UUID, size: int) -> LogCheckpoint | None:
    row = (
        await conn.execute(
            select(LogCheckpoint).where(
                LogCheckpoint.community_id == community_id, LogCheckpoint.tree_size == size
            )
        )
    ).first()
    return None if row is None else LogCheckpoint(**row._mapping)


async def checkpoints(
    conn: AsyncConnection, community_id: uuid.UUID, after: int = -1, limit: int | None = None
) -> list[LogCheckpoint]:
    """Kept checkpoints larger than ``after``, smallest first."""
    rows = await conn.execute(
        select(LogCheckpoint)
        .where(LogCheckpoint.community_id == community_id, LogCheckpoint.tree_size > after)
        .order_by(LogCheckpoint.tree_size)
        .limit(limit)
    )
    return _models(LogCheckpoint, rows)


async def checkpoints_newest_first(
    conn: AsyncConnection, community_id: uuid.UUID, before: int | None, limit: int
) -> list[LogCheckpoint]:
    """Kept checkpoints smaller than ``before`` (all, without it), largest first."""
    stmt = select(LogCheckpoint).where(LogCheckpoint.community_id == community_id)
    if before is not None:
        stmt = stmt.where(LogCheckpoint.tree_size < before)
    rows = await conn.execute(stmt.order_by(desc(LogCheckpoint.tree_size)).limit(limit))
    return _models(LogCheckpoint, rows)


async def add_checkpoint(
    conn: AsyncConnection, community_id: uuid.UUID, size: int, root: bytes, note: str, kid: str
) -> None:
    await conn.execute(
        insert(LogCheckpoint).values(
            community_id=community_id, tree_size=size, root_hash=root, note=note, kid=kid
        )
    )


# --- leaves and nodes ----------------------------------------------------------------------


@dataclass(frozen=True)
class LoggedLeaf:
    """A leaf with its hash (the level-0 node at its index)."""

    idx: int
    transaction_id: uuid.UUID
    leaf_hash: bytes


_LEAVES = select(LogLeaf.idx, LogLeaf.transaction_id, LogNode.hash).join(
    LogNode,
    and_(LogNode.community_id == LogLeaf.community_id, LogNode.level == 0, LogNode.idx == LogLeaf.idx),
)


def _leaves(rows: Any) -> list[LoggedLeaf]:
    return [LoggedLeaf(r.idx, r.transaction_id, bytes(r.hash)) for r in rows]


async def leaf_at(conn: AsyncConnection, community_id: uuid.UUID, index: int) -> LoggedLeaf | None:
    found = _leaves(
        await conn.execute(_LEAVES.where(LogLeaf.community_id == community_id, LogLeaf.idx == index))
    )
    return found[0] if found else None


async def leaf_of(
    conn: AsyncConnection, transaction_id: uuid.UUID, community_id: uuid.UUID | None = None
) -> LoggedLeaf | None:
    """The leaf of a transaction (a transaction is in one log only, so the community is optional)."""
    where = [LogLeaf.transaction_id == transaction_id]
    if community_id is not None:
        where.append(LogLeaf.community_id == community_id)
    found = _leaves(await conn.execute(_LEAVES.where(*where)))
    return found[0] if found else None


async def leaves_after(
    conn: AsyncConnection, community_id: uuid.UUID, after: int, limit: int
) -> list[LoggedLeaf]:
    """The next ``limit`` leaves after index ``after``, in log order."""
    return _leaves(
        await conn.execute(
            _LEAVES.where(LogLeaf.community_id == community_id, LogLeaf.idx > after)
            .order_by(LogLeaf.idx)
            .limit(limit)
        )
    )


_NODES = text(
    "SELECT n.level, n.idx, n.hash FROM log_nodes n "
    "JOIN unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS w(level, idx) "
    "ON n.level = w.level AND n.idx = w.idx WHERE n.community_id = :c"
)


async def stored_nodes(conn: AsyncConnection, community_id: uuid.UUID, nodes: set[Node]) -> dict[Node, bytes]:
    """The stored hashes of ``nodes``; every one must exist (the log is append-only)."""
    if not nodes:
        return {}
    levels, idxs = zip(*sorted(nodes), strict=True)
    rows = await conn.execute(_NODES, {"c": community_id, "levels": list(levels), "idxs": list(idxs)})
    found = {(r.level, r.idx): bytes(r.hash) for r in rows}
    missing = nodes - found.keys()
    assert not missing, f"log of {community_id} lacks stored nodes {sorted(missing)[:5]}"
    return found


# --- the integrator's batch path (asyncpg) ------------------------------------------------------


async def lock_community(conn: AsyncConnection, community_id: uuid.UUID) -> bool:
    """Take the community's integration lock for this transaction, if no one holds it."""
    key = func.hashtextextended("timebank.log:" + str(community_id), 0)
    return bool((await conn.execute(select(func.pg_try_advisory_xact_lock(key)))).scalar_one())


async def queued(raw: Any, community_id: uuid.UUID, limit: int) -> list[tuple[int, str]]:
    """(seq, transaction id as text) of the first ``limit`` queued transactions."""
    rows = await raw.fetch(
        "SELECT seq, transaction_id::text FROM log_queue WHERE community_id = $1 ORDER BY seq LIMIT $2",
        community_id,
        limit,
    )
    return [(r[0], r[1]) for r in rows]


async def append(
    raw: Any,
    community_id: uuid.UUID,
    leaves: Sequence[tuple[int, str]],
    nodes: Sequence[tuple[Node, bytes]],
    dequeued: Sequence[int],
) -> None:
    """Store new leaves (index, transaction id) and nodes, and take them off the queue."""
    await raw.execute(
        "INSERT INTO log_leaves (community_id, idx, transaction_id) "
        "SELECT $1, * FROM unnest($2::bigint[], $3::text[]::uuid[])",
        community_id,
        [x[0] for x in leaves],
        [x[1] for x in leaves],
    )
    await raw.execute(
        "INSERT INTO log_nodes (community_id, level, idx, hash) "
        "SELECT $1, * FROM unnest($2::smallint[], $3::bigint[], $4::bytea[])",
        community_id,
        [n[0][0] for n in nodes],
        [n[0][1] for n in nodes],
        [n[1] for n in nodes],
    )
    await raw.execute(
        "DELETE FROM log_queue WHERE community_id = $1 AND seq = ANY($2::bigint[])",
        community_id,
        list(dequeued),
    )


async def waiting(conn: AsyncConnection, community_id: uuid.UUID, cap: int) -> tuple[int, datetime | None]:
    """How many of the community's transactions wait for the integrator (counted up to
    ``cap``), and the time of the oldest of them (None when none waits)."""
    some = select(LogQueueItem.seq).where(LogQueueItem.community_id == community_id).limit(cap).subquery()
    n = (await conn.execute(select(func.count()).select_from(some))).scalar_one()
    if not n:
        return 0, None
    oldest = await conn.execute(
        text(
            "SELECT t.created_at FROM log_queue q JOIN transactions t ON t.id = q.transaction_id "
            "WHERE q.community_id = :c ORDER BY q.seq LIMIT 1"
        ),
        {"c": community_id},
    )
    return n, oldest.scalar_one_or_none()


async def communities_to_integrate(conn: AsyncConnection, community_ids: list[uuid.UUID]) -> list[uuid.UUID]:
    """Those of ``community_ids`` with queued transactions or without a first (empty)
    checkpoint yet: one index probe per community and table, by id."""
    rows = await conn.execute(
        text(
            "SELECT c.id FROM unnest(CAST(:ids AS uuid[])) AS c(id) "
            "WHERE EXISTS (SELECT 1 FROM log_queue q WHERE q.community_id = c.id) "
            "OR NOT EXISTS (SELECT 1 FROM log_checkpoints k WHERE k.community_id = c.id) ORDER BY c.id"
        ),
        {"ids": community_ids},
    )
    return [r.id for r in rows]


async def log_freshness(conn: AsyncConnection) -> list[Any]:
    """For /metrics, per community: its latest checkpoint's ``tree_size`` and ``age``
    (seconds; both None before the first), and ``lag``: the age in seconds of the
    oldest transaction not yet in a checkpoint (0 when none waits)."""
    rows = await conn.execute(
        text(
            "SELECT c.id, k.tree_size, extract(epoch FROM now() - k.created_at) AS age, "
            "       coalesce(extract(epoch FROM now() - (SELECT min(t.created_at) FROM log_queue q "
            "           JOIN transactions t ON t.id = q.transaction_id WHERE q.community_id = c.id)), 0) AS lag "
            "FROM communities c LEFT JOIN LATERAL (SELECT tree_size, created_at FROM log_checkpoints "
            "   WHERE community_id = c.id ORDER BY tree_size DESC LIMIT 1) k ON true"
        )
    )
    return list(rows)

"""The transparency log: integration, checkpoints, proofs and receipts.

Domain logic only (no HTTP). Every community has its own log, named by its origin
``<TIMEBANK_LOG_ORIGIN>/<community id>``.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import logs
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, NotFound
from timebank.db import driver
from timebank.ledger import service as ledger
from timebank.log import merkle
from timebank.log.keys import PublicKey, Signer
from timebank.log.verify import b64, leaf_hash
from timebank.security import Principal

_encode_str = encode_basestring  # JSON.stringify's string escaping (ensure_ascii=False)

# Seconds within which every committed transaction is in a signed checkpoint. The
# integrator runs at least this often (TIMEBANK_LOG_INTERVAL_MS is capped below it).
MAXIMUM_MERGE_DELAY_SECONDS = 2
# Leaves hashed between two yields to the event loop (~5 ms of CPU), so an integration
# pass in a service process never holds its requests up for long.
YIELD_EVERY = 100

# The members of a transaction that its leaf commits to: everything that never
# changes once it is written. (Its status does change, e.g. when a hold is posted:
# that is the posting's own transaction and leaf.)
CANONICAL_FIELDS = (
    "id",
    "community_id",
    "kind",
    "phase",
    "memo",
    "reason",
    "pending_id",
    "reverses_id",
    "timeout_at",
    "created_at",
    "entries",
)
ENTRY_FIELDS = ("account_id", "asset", "direction", "layer", "amount")


def canonical_transaction(view: Mapping[str, Any]) -> dict[str, Any]:
    """The object whose JCS bytes are the transaction's leaf (docs/receipts.md)."""
    tx = {f: view.get(f) for f in CANONICAL_FIELDS}
    tx["entries"] = [{f: e[f] for f in ENTRY_FIELDS} for e in view["entries"]]
    return tx


def _json_str(value: str | None) -> str:
    return "null" if value is None else _encode_str(value)


def canonical_json(tx: Mapping[str, Any]) -> bytes:
    """JCS bytes of a canonical transaction, written out for its one fixed shape.

    The same bytes as ``verify.jcs(tx)`` (members in sorted order, strings escaped by
    the JSON encoder JCS uses, integers within ±2^53 as amounts are at most
    ledger.MAX_AMOUNT), about ten times faster: every transfer's response and every
    leaf of the log goes through here. tests/log/test_merkle.py holds them equal.
    """
    assert len(tx) == len(CANONICAL_FIELDS), "canonical transaction with other members"
    entries = ",".join(
        f'{{"account_id":{_encode_str(e["account_id"])},"amount":{int(e["amount"])},"asset":{_encode_str(e["asset"])},'
        f'"direction":{_encode_str(e["direction"])},"layer":{_encode_str(e["layer"])}}}'
        for e in tx["entries"]
    )
    return (
        f'{{"community_id":{_encode_str(tx["community_id"])},"created_at":{_encode_str(tx["created_at"])},'
        f'"entries":[{entries}],"id":{_encode_str(tx["id"])},"kind":{_encode_str(tx["kind"])},'
        f'"memo":{_json_str(tx["memo"])},"pending_id":{_json_str(tx["pending_id"])},'
        f'"phase":{_encode_str(tx["phase"])},"reason":{_json_str(tx["reason"])},'
        f'"reverses_id":{_json_str(tx["reverses_id"])},"timeout_at":{_json_str(tx["timeout_at"])}}}'
    ).encode()


def origin(prefix: str, community_id: uuid.UUID | str) -> str:
    return f"{prefix}/{community_id}"


def signed_entry_timestamp(
    signer: Signer, log_origin: str, tx: Mapping[str, Any], leaf: bytes
) -> dict[str, Any]:
    """The log's signed promise that ``tx`` (accepted at its created_at) enters the log.

    Ed25519 signatures are deterministic: the same payload and key always give the
    same ``set``, so a replayed request gets the same bytes.
    """
    leaf_b64 = b64(leaf)
    payload = {
        "community_id": tx["community_id"],
        "integrated_at": tx["created_at"],
        "leaf_hash": leaf_b64,
        "log_origin": log_origin,
        "maximum_merge_delay_seconds": MAXIMUM_MERGE_DELAY_SECONDS,
        "transaction_id": tx["id"],
    }
    # JCS of this one shape, written out (as canonical_json; verify_set checks it with jcs)
    signed = (
        f'{{"community_id":{_encode_str(tx["community_id"])},"integrated_at":{_encode_str(tx["created_at"])},'
        f'"leaf_hash":"{leaf_b64}","log_origin":{_encode_str(log_origin)},'
        f'"maximum_merge_delay_seconds":{MAXIMUM_MERGE_DELAY_SECONDS},"transaction_id":{_encode_str(tx["id"])}}}'
    ).encode()
    return {"payload": payload, "kid": signer.kid, "signature": b64(signer.sign(signed))}


def with_set(signer: Signer, prefix: str, view: dict[str, Any]) -> dict[str, Any]:
    """A created-transaction response with its signed entry timestamp."""
    tx = canonical_transaction(view)
    return {
        **view,
        "set": signed_entry_timestamp(
            signer, origin(prefix, tx["community_id"]), tx, leaf_hash(canonical_json(tx))
        ),
    }


# --- keys ------------------------------------------------------------------------------


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def register_keys(conn: AsyncConnection, keys: Iterable[PublicKey]) -> None:
    """Publish public keys (idempotent; a retirement, once recorded, stays)."""
    for k in keys:
        await conn.execute(
            text(
                "INSERT INTO log_keys (kid, public_key, created_at, retired_at) "
                "VALUES (:kid, :pk, coalesce(:created, now()), :retired) "
                "ON CONFLICT (kid) DO UPDATE SET retired_at = coalesce(log_keys.retired_at, EXCLUDED.retired_at)"
            ),
            {
                "kid": k.kid,
                "pk": k.public_key,
                "created": _time(k.created_at),
                "retired": _time(k.retired_at),
            },
        )


async def published_keys(conn: AsyncConnection) -> dict[str, Any]:
    rows = (await conn.execute(text("SELECT * FROM log_keys ORDER BY created_at, kid"))).all()
    return {
        "keys": [
            PublicKey(
                r.kid,
                bytes(r.public_key),
                rfc3339(r.created_at),
                None if r.retired_at is None else rfc3339(r.retired_at),
            ).jwk()
            for r in rows
        ]
    }


# --- integration -------------------------------------------------------------------------


@dataclass(frozen=True)
class Integrated:
    community_id: uuid.UUID
    tree_size: int
    added: int


def _optional_text(value: Any) -> str | None:
    if value is None:
        return None
    return rfc3339(value) if isinstance(value, datetime) else str(value)


def canonical_of_rows(tx: Mapping[str, Any], legs: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """The canonical transaction straight from its database rows (the integrator's bulk
    path). Equal to ``canonical_transaction(ledger.transaction_view(...))``: every receipt
    check compares the two, as does ``timebank audit``."""
    entries = sorted(
        (
            {
                "account_id": str(e["account_id"]),
                "asset": e["asset"],
                "direction": e["direction"],
                "layer": e["layer"],
                "amount": e["amount"],
            }
            for e in legs
        ),
        key=ledger.entry_order,
    )
    return {
        "id": str(tx["id"]),
        "community_id": str(tx["community_id"]),
        "kind": tx["kind"],
        "phase": tx["phase"],
        "memo": tx["memo"],
        "reason": tx["reason"],
        "pending_id": _optional_text(tx["pending_id"]),
        "reverses_id": _optional_text(tx["reverses_id"]),
        "timeout_at": _optional_text(tx["timeout_at"]),
        "created_at": rfc3339(tx["created_at"]),
        "entries": entries,
    }


async def canonical_bytes(conn: AsyncConnection, ids: Sequence[uuid.UUID | str]) -> dict[str, bytes]:
    """JCS bytes of the canonical form of each transaction, read from the ledger."""
    raw = await driver(conn)
    # Identifiers come back as text: the canonical form wants text, and asyncpg's UUID
    # objects are slow to hash and decode (a third of the integrator's time otherwise).
    wanted = [str(i) for i in ids]
    txs = await raw.fetch(
        "SELECT id::text, community_id::text, kind, phase, memo, reason, pending_id::text, reverses_id::text, "
        "timeout_at, created_at FROM transactions WHERE id = ANY($1::text[]::uuid[])",
        wanted,
    )
    legs: dict[str, list[Any]] = {}
    for e in await raw.fetch(
        "SELECT transaction_id::text, account_id::text, asset, direction, layer, amount FROM entries "
        "WHERE transaction_id = ANY($1::text[]::uuid[])",
        wanted,
    ):
        legs.setdefault(e[0], []).append(e)
    out: dict[str, bytes] = {}
    for n, t in enumerate(txs, 1):
        out[t[0]] = canonical_json(canonical_of_rows(t, legs.get(t[0], ())))
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return out


async def _fetch_nodes(
    conn: AsyncConnection, community_id: uuid.UUID, nodes: set[merkle.Node]
) -> dict[merkle.Node, bytes]:
    if not nodes:
        return {}
    levels, idxs = zip(*sorted(nodes), strict=True)
    rows = (
        await conn.execute(
            text(
                "SELECT n.level, n.idx, n.hash FROM log_nodes n "
                "JOIN unnest(CAST(:levels AS smallint[]), CAST(:idxs AS bigint[])) AS w(level, idx) "
                "ON n.level = w.level AND n.idx = w.idx WHERE n.community_id = :c"
            ),
            {"c": community_id, "levels": list(levels), "idxs": list(idxs)},
        )
    ).all()
    found = {(r.level, r.idx): bytes(r.hash) for r in rows}
    missing = nodes - found.keys()
    assert not missing, f"log of {community_id} lacks stored nodes {sorted(missing)[:5]}"
    return found


# A leaf's hash is its level-0 node.
LEAF_HASH = "JOIN log_nodes n ON n.community_id = l.community_id AND n.level = 0 AND n.idx = l.idx"


async def latest_checkpoint(conn: AsyncConnection, community_id: uuid.UUID) -> Any:
    return (
        await conn.execute(
            text("SELECT * FROM log_checkpoints WHERE community_id = :c ORDER BY tree_size DESC LIMIT 1"),
            {"c": community_id},
        )
    ).first()


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
    locked = (
        await conn.execute(
            text("SELECT pg_try_advisory_xact_lock(hashtextextended('timebank.log:' || :c, 0))"),
            {"c": str(community_id)},
        )
    ).scalar_one()
    if not locked:
        return None
    last = await latest_checkpoint(conn, community_id)
    raw = await driver(conn)
    queued = await raw.fetch(
        "SELECT seq, transaction_id::text FROM log_queue WHERE community_id = $1 ORDER BY seq LIMIT $2",
        community_id,
        max_batch,
    )
    if not queued and last is not None:
        return None
    size = 0 if last is None else last.tree_size
    frontier = merkle.Frontier(
        size, await _fetch_nodes(conn, community_id, set(merkle.perfect_nodes(0, size)) if size else set())
    )
    # TigerBeetle-style assertion: never extend a tree that disagrees with what was signed.
    assert last is None or frontier.root() == bytes(last.root_hash), (
        f"log of {community_id}: stored tree != checkpoint"
    )

    ids = [q[1] for q in queued]
    data = await canonical_bytes(conn, ids)
    assert len(data) == len(ids), f"queued transactions missing from the ledger: {set(ids) - data.keys()}"
    leaves: list[tuple[int, str, bytes]] = []
    nodes: list[tuple[merkle.Node, bytes]] = []
    for n, tx_id in enumerate(ids, 1):
        leaf = leaf_hash(data[tx_id])
        leaves.append((frontier.size, tx_id, leaf))
        nodes.extend(frontier.append(leaf))
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)  # the integrator shares the event loop with requests
    if leaves:
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
            [q[0] for q in queued],
        )
    root = frontier.root()
    await raw.execute(
        "INSERT INTO log_checkpoints (community_id, tree_size, root_hash, note, kid) VALUES ($1, $2, $3, $4, $5)",
        community_id,
        frontier.size,
        root,
        signer.checkpoint(origin(origin_prefix, community_id), frontier.size, root),
        signer.kid,
    )
    return Integrated(community_id, frontier.size, len(leaves))


async def communities_to_integrate(conn: AsyncConnection) -> list[uuid.UUID]:
    rows = await conn.execute(
        text(
            "SELECT c.id FROM communities c WHERE EXISTS (SELECT 1 FROM log_queue q WHERE q.community_id = c.id) "
            "OR NOT EXISTS (SELECT 1 FROM log_checkpoints k WHERE k.community_id = c.id) ORDER BY c.id"
        )
    )
    return [r.id for r in rows]


async def integrate_all(
    engine: Any, signer: Signer, origin_prefix: str, max_batch: int = 10_000
) -> list[Integrated]:
    """One pass over every community with something to integrate (each in its own transaction)."""
    done: list[Integrated] = []
    async with engine.connect() as conn:
        todo = await communities_to_integrate(conn)
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


# --- proofs ------------------------------------------------------------------------------


def log_community(principal: Principal | None, community_id: uuid.UUID | None) -> uuid.UUID:
    if community_id is not None:
        return community_id
    if principal is not None:
        return principal.community_id
    raise BadRequest("name the log with community_id= (or send an API key of that community)")


async def _tree_size(conn: AsyncConnection, community_id: uuid.UUID) -> int:
    last = await latest_checkpoint(conn, community_id)
    if last is None:
        raise NotFound(f"community {community_id} has no log yet")
    return int(last.tree_size)


def _check_size(size: int, tree_size: int, what: str) -> None:
    if not 0 <= size <= tree_size:
        raise BadRequest(f"{what} must be from 0 to {tree_size}, the size of the latest checkpoint")


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
    where, arg = ("idx = :v", index) if index is not None else ("transaction_id = :v", transaction_id)
    leaf = (
        await conn.execute(
            text(
                f"SELECT l.idx, l.transaction_id, n.hash AS leaf_hash FROM log_leaves l {LEAF_HASH} "
                f"WHERE l.community_id = :c AND l.{where}"
            ),
            {"c": community_id, "v": arg},
        )
    ).first()
    if leaf is None:
        raise NotFound(
            "no such entry in this log (a new transaction is integrated within "
            f"{MAXIMUM_MERGE_DELAY_SECONDS} s)"
        )
    if leaf.idx >= size:
        raise BadRequest(f"entry {leaf.idx} is not in a tree of size {size}")
    proof = await _prove(conn, community_id, merkle.inclusion_ranges(leaf.idx, size))
    return {
        "index": leaf.idx,
        "tree_size": size,
        "leaf_hash": b64(bytes(leaf.leaf_hash)),
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
    proof = await _prove(conn, community_id, merkle.consistency_ranges(first, second))
    return {"first": first, "second": second, "proof": [b64(h) for h in proof]}


async def _prove(conn: AsyncConnection, community_id: uuid.UUID, ranges: list[merkle.Range]) -> list[bytes]:
    hashes = await _fetch_nodes(conn, community_id, merkle.nodes_for(ranges))
    return [merkle.range_hash(r, hashes) for r in ranges]


async def checkpoint_note(conn: AsyncConnection, community_id: uuid.UUID, size: int | None) -> str:
    if size is None:
        row = await latest_checkpoint(conn, community_id)
    else:
        row = (
            await conn.execute(
                text("SELECT * FROM log_checkpoints WHERE community_id = :c AND tree_size = :s"),
                {"c": community_id, "s": size},
            )
        ).first()
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
    rows = (
        await conn.execute(
            text(
                "SELECT tree_size, root_hash, kid, created_at FROM log_checkpoints WHERE community_id = :c "
                "AND tree_size > :after ORDER BY tree_size LIMIT :n"
            ),
            {"c": community_id, "after": -1 if after is None else after, "n": limit + 1},
        )
    ).all()
    items = [
        {
            "tree_size": r.tree_size,
            "root_hash": b64(bytes(r.root_hash)),
            "kid": r.kid,
            "created_at": rfc3339(r.created_at),
        }
        for r in rows[:limit]
    ]
    return items, (str(rows[limit - 1].tree_size) if len(rows) > limit else None)


# --- receipts ------------------------------------------------------------------------------


async def receipt(
    conn: AsyncConnection, principal: Principal, tx_id: uuid.UUID, signer: Signer, origin_prefix: str
) -> dict[str, Any]:
    view = await ledger.get_transaction(conn, principal, tx_id)  # 404 unless this key may read it
    tx = canonical_transaction(view)
    leaf = leaf_hash(canonical_json(tx))
    logged = (
        await conn.execute(
            text(
                f"SELECT l.idx, n.hash AS leaf_hash FROM log_leaves l {LEAF_HASH} WHERE l.transaction_id = :t"
            ),
            {"t": tx_id},
        )
    ).first()
    log_origin = origin(origin_prefix, principal.community_id)
    log: dict[str, Any] | None = None
    if logged is not None:
        if bytes(logged.leaf_hash) != leaf:
            # The ledger no longer says what the log recorded: the receipt shows both,
            # and any verifier will refuse it.
            logs.log.error("transaction differs from its log leaf", transaction_id=str(tx_id))
            leaf = bytes(logged.leaf_hash)
        last = await latest_checkpoint(conn, principal.community_id)
        if last is not None and last.tree_size > logged.idx:
            proof = await _prove(
                conn, principal.community_id, merkle.inclusion_ranges(logged.idx, last.tree_size)
            )
            log = {
                "index": logged.idx,
                "tree_size": last.tree_size,
                "inclusion_proof": [b64(h) for h in proof],
                "checkpoint": last.note,
            }
    body: dict[str, Any] = {
        "transaction": tx,
        "leaf_hash": b64(leaf),
        "set": signed_entry_timestamp(signer, log_origin, tx, leaf),
    }
    if log is not None:
        body["log"] = log
    return body

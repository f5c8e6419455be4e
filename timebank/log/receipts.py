"""A transaction's receipt: its canonical form, leaf hash and signed entry timestamp,
with an inclusion proof under the latest checkpoint once it is integrated
(docs/receipts.md; verify.py checks it offline)."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank import logs
from timebank.core.access import Principal
from timebank.ledger import service as ledger
from timebank.log import merkle, queries
from timebank.log.canonical import canonical_json, canonical_transaction
from timebank.log.keys import Signer
from timebank.log.proofs import prove
from timebank.log.timestamps import origin, signed_entry_timestamp
from timebank.log.verify import b64, leaf_hash


async def _log_section(
    conn: AsyncConnection, community_id: uuid.UUID, leaf: queries.LoggedLeaf
) -> dict[str, Any] | None:
    """Where the leaf is in the latest checkpoint, with the proof (None until it is in one)."""
    last = await queries.latest_checkpoint(conn, community_id)
    if last is None or last.tree_size <= leaf.idx:
        return None
    proof = await prove(conn, community_id, merkle.inclusion_ranges(leaf.idx, last.tree_size))
    return {
        "index": leaf.idx,
        "tree_size": last.tree_size,
        "inclusion_proof": [b64(h) for h in proof],
        "checkpoint": last.note,
    }


async def receipt(
    conn: AsyncConnection, principal: Principal, tx_id: uuid.UUID, signer: Signer, origin_prefix: str
) -> dict[str, Any]:
    view = await ledger.get_transaction(conn, principal, tx_id)  # 404 unless this key may read it
    tx = canonical_transaction(view)
    leaf = leaf_hash(canonical_json(tx))
    logged = await queries.leaf_of(conn, tx_id)
    log: dict[str, Any] | None = None
    if logged is not None:
        if logged.leaf_hash != leaf:
            # The ledger no longer says what the log recorded: the receipt shows both,
            # and any verifier will refuse it.
            logs.log.error("transaction differs from its log leaf", transaction_id=str(tx_id))
            leaf = logged.leaf_hash
        log = await _log_section(conn, principal.community_id, logged)
    body: dict[str, Any] = {
        "transaction": tx,
        "leaf_hash": b64(leaf),
        "set": signed_entry_timestamp(signer, origin(origin_prefix, principal.community_id), tx, leaf),
    }
    if log is not None:
        body["log"] = log
    return body

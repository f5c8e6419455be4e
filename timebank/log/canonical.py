"""The canonical form of a transaction: the RFC 8785 (JCS) bytes its log leaf hashes.

One home for what a leaf commits to (docs/receipts.md, "The canonical transaction"),
whether it is made from a transaction's API view (receipts, signed entry timestamps)
or straight from its database rows (the integrator's and the audit's bulk path).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from json.encoder import encode_basestring  # type: ignore[attr-defined]
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.db import driver
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger

encode_str = encode_basestring  # JSON.stringify's string escaping (ensure_ascii=False)

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
    return "null" if value is None else encode_str(value)


def canonical_json(tx: Mapping[str, Any]) -> bytes:
    """JCS bytes of a canonical transaction, written out for its one fixed shape.

    The same bytes as ``verify.jcs(tx)`` (members in sorted order, strings escaped by
    the JSON encoder JCS uses, integers within ±2^53 as amounts are at most
    ledger.MAX_AMOUNT), about ten times faster: every transfer's response and every
    leaf of the log goes through here. tests/log/test_merkle.py holds them equal.
    """
    assert len(tx) == len(CANONICAL_FIELDS), "canonical transaction with other members"
    entries = ",".join(
        f'{{"account_id":{encode_str(e["account_id"])},"amount":{int(e["amount"])},"asset":{encode_str(e["asset"])},'
        f'"direction":{encode_str(e["direction"])},"layer":{encode_str(e["layer"])}}}'
        for e in tx["entries"]
    )
    return (
        f'{{"community_id":{encode_str(tx["community_id"])},"created_at":{encode_str(tx["created_at"])},'
        f'"entries":[{entries}],"id":{encode_str(tx["id"])},"kind":{encode_str(tx["kind"])},'
        f'"memo":{_json_str(tx["memo"])},"pending_id":{_json_str(tx["pending_id"])},'
        f'"phase":{encode_str(tx["phase"])},"reason":{_json_str(tx["reason"])},'
        f'"reverses_id":{_json_str(tx["reverses_id"])},"timeout_at":{_json_str(tx["timeout_at"])}}}'
    ).encode()


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
    txs, legs = await ledger_queries.canonical_rows(await driver(conn), [str(i) for i in ids])
    out: dict[str, bytes] = {}
    for n, t in enumerate(txs, 1):
        out[t[0]] = canonical_json(canonical_of_rows(t, legs.get(t[0], ())))
        if n % YIELD_EVERY == 0:
            await asyncio.sleep(0)
    return out

"""The log's name and its signed entry timestamp (``set``): the promise, signed at once
with every created transaction and receipt, that the transaction enters the named log
within the maximum merge delay.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from timebank.log.canonical import canonical_json, canonical_transaction, encode_str
from timebank.log.keys import Signer
from timebank.log.verify import b64, leaf_hash

# Seconds within which every committed transaction is in a signed checkpoint. The
# integrator runs at least this often (TIMEBANK_LOG_INTERVAL_MS is capped below it).
MAXIMUM_MERGE_DELAY_SECONDS = 2


def origin(prefix: str, community_id: uuid.UUID | str) -> str:
    """The origin (name) of a community's log: ``<TIMEBANK_LOG_ORIGIN>/<community id>``."""
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
        f'{{"community_id":{encode_str(tx["community_id"])},"integrated_at":{encode_str(tx["created_at"])},'
        f'"leaf_hash":"{leaf_b64}","log_origin":{encode_str(log_origin)},'
        f'"maximum_merge_delay_seconds":{MAXIMUM_MERGE_DELAY_SECONDS},"transaction_id":{encode_str(tx["id"])}}}'
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

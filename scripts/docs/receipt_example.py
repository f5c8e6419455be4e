#!/usr/bin/env python
"""Print the worked example of docs/receipts.md, computed by the project's own code.

Everything is deterministic (a published example key, fixed ids and times), so the
numbers in the document can be reproduced by hand; tests/log/test_docs_example.py
checks that the document still shows exactly what this prints.

    .venv/bin/python scripts/docs/receipt_example.py
"""

from __future__ import annotations

import hashlib
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from timebank.log import merkle
from timebank.log.canonical import canonical_json, canonical_of_rows
from timebank.log.keys import Signer
from timebank.log.timestamps import origin, signed_entry_timestamp
from timebank.log.verify import b64, leaf_hash, node_hash, public_jwk

# NOT A REAL KEY: its seed is printed right here. Never sign anything real with it.
EXAMPLE_SEED = hashlib.sha256(b"timebank docs example key").digest()
COMMUNITY = "0b9c6a7e-1d2f-4e3a-8b5c-6d7e8f9a0b1c"
PREFIX = "timebank.example.org/log"


def transaction(n: int, amount: int, memo: str | None) -> dict:
    row = {
        "id": f"6f0c2a43-7f5e-4c55-9d47-2b1c7e0d9a1{n}",
        "community_id": COMMUNITY,
        "kind": "transfer",
        "phase": "posted",
        "memo": memo,
        "reason": None,
        "pending_id": None,
        "reverses_id": None,
        "timeout_at": None,
        "created_at": datetime(2026, 11, 22, 8, 52, 15 + n, 123456, UTC),
    }
    legs = [
        {
            "account_id": "a4d2c8e0-5b6f-4a1d-9e3c-7f8a9b0c1d2e",
            "asset": "HOUR",
            "direction": "debit",
            "layer": "posted",
            "amount": amount,
        },
        {
            "account_id": "c1e3a5b7-9d2f-4c6e-8a0b-1d3f5a7c9e2b",
            "asset": "HOUR",
            "direction": "credit",
            "layer": "posted",
            "amount": amount,
        },
    ]
    return canonical_of_rows(row, legs)


def main() -> None:
    signer = Signer(Ed25519PrivateKey.from_private_bytes(EXAMPLE_SEED))
    txs = [transaction(0, 60, "陪王奶奶买菜"), transaction(1, 30, None), transaction(2, 90, "修水管 🔧")]
    data = [canonical_json(t) for t in txs]
    leaves = [leaf_hash(d) for d in data]
    frontier = merkle.Frontier(0, {})
    for leaf in leaves:
        frontier.append(leaf)
    root = frontier.root()
    log_origin = origin(PREFIX, COMMUNITY)
    note = signer.checkpoint(log_origin, 3, root)
    set_ = signed_entry_timestamp(signer, log_origin, txs[2], leaves[2])
    print("## example key (public JWK)")
    print(json.dumps(public_jwk(signer.public_key), indent=2))
    print("## transaction 2, canonical bytes (UTF-8)")
    print(data[2].decode())
    print("## leaf hashes")
    for i, leaf in enumerate(leaves):
        print(f"leaf {i}: {b64(leaf)}  (hex {leaf.hex()})")
    print("## tree of size 3")
    n01 = node_hash(leaves[0], leaves[1])
    print(f"node(0..1) = SHA-256(0x01 || leaf 0 || leaf 1) = {b64(n01)}")
    print(f"root(3)    = SHA-256(0x01 || node(0..1) || leaf 2) = {b64(root)}")
    print(f"inclusion proof of index 2 in size 3: [{b64(n01)}]")
    print("## checkpoint")
    print(note, end="")
    print("## set of transaction 2")
    print(json.dumps(set_, indent=2, ensure_ascii=False))


if __name__ == "__main__":
    main()

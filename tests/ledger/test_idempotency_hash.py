"""The request fingerprint's fast encoding gives the very bytes of the json.dumps it replaced:
a key's stored fingerprint must match its retry after an upgrade."""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from datetime import UTC, datetime
from typing import Any

from timebank.core.access import Principal
from timebank.core.roles import Role
from timebank.ledger.idempotency import _plain, request_hash

PRINCIPAL = Principal(uuid.uuid4(), uuid.uuid4(), Role.ADMIN, None)
CHARS = [chr(i) for i in range(0x300)] + ["\u2028", "\u2029", "\ufeff", "\U0001f600", "中", "社", "\x7f"]


def _reference(method: str, path: str, body: Any) -> bytes:
    canonical = json.dumps(
        {"principal": str(PRINCIPAL.key_id), "method": method, "path": path, "body": body},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    )
    return hashlib.sha256(canonical.encode()).digest()


def _text(rng: random.Random) -> str:
    return "".join(rng.choice(CHARS) for _ in range(rng.randint(0, 12)))


def test_plain_bodies_hash_as_json_dumps_did() -> None:
    rng = random.Random(19)
    for _ in range(3000):
        memo = _text(rng)
        body = {
            "from_account": str(uuid.uuid4()),
            "to_account": str(uuid.uuid4()),
            "asset": "HOUR",
            "amount": rng.randint(-(2**63), 2**63 - 1),
            "legs": [{"debit": _text(rng), "credit": "b", "asset": "POINT", "amount": 1}]
            if rng.random() < 0.5
            else None,
            "memo": memo if rng.random() < 0.8 else None,
            "kind": "transfer",
            "pending": {"timeout_seconds": 60} if rng.random() < 0.3 else None,
            _text(rng): [True, False, None, memo],
        }
        assert _plain(body)
        assert request_hash(PRINCIPAL, "POST", "/v1/transfers", body) == _reference(
            "POST", "/v1/transfers", body
        )


def test_other_bodies_keep_json_dumps() -> None:
    for body in (
        None,
        {"hours": 1.5},
        {"at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
        {"id": uuid.uuid4()},
        {"big": 2**70},
        {"tags": ("a", "b")},
        {"code": "ABC", "qr": False},
    ):
        assert request_hash(PRINCIPAL, "POST", "/v1/x", body) == _reference("POST", "/v1/x", body)
    assert not _plain({"hours": 1.5}) and not _plain({"id": uuid.uuid4()}) and not _plain({"big": 2**70})

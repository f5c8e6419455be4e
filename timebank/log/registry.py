"""The published signing keys (``log_keys``): what anyone verifies receipts,
checkpoints, certificates and vouchers with, retired keys included.

The one reader of the registry for every package (the log's key set, the audit,
redemption's voucher checks); private keys never come here (see keys.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.log import queries
from timebank.log.keys import PublicKey, Signer


def _time(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


async def register_keys(conn: AsyncConnection, keys: Iterable[PublicKey]) -> None:
    """Publish public keys (idempotent; a retirement, once recorded, stays)."""
    for k in keys:
        await queries.register_key(conn, k.kid, k.public_key, _time(k.created_at), _time(k.retired_at))


async def published_keys(conn: AsyncConnection, signer: Signer | None = None) -> dict[str, bytes]:
    """{kid: raw Ed25519 public key} of every published key, and the signer's own
    (which a process uses before its lifespan has registered it)."""
    keys = {k.kid: bytes(k.public_key) for k in await queries.keys(conn)}
    if signer is not None:
        keys[signer.kid] = signer.public_key
    return keys


async def key_set(conn: AsyncConnection) -> dict[str, Any]:
    """The JWK set served at /v1/log/keys, oldest key first."""
    return {
        "keys": [
            PublicKey(
                k.kid,
                bytes(k.public_key),
                rfc3339(k.created_at),
                None if k.retired_at is None else rfc3339(k.retired_at),
            ).jwk()
            for k in await queries.keys(conn)
        ]
    }

"""Response shapes of the transparency log: receipts, proofs, keys, checkpoints."""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    pass


from timebank.schemas.ledger import Entry, SignedEntryTimestamp
from timebank.schemas.openapi import Out


class CanonicalTransaction(Out):
    """The object whose RFC 8785 bytes are the transaction's Merkle leaf (docs/receipts.md)."""

    id: str
    community_id: str
    kind: str
    phase: str
    memo: str | None
    reason: str | None
    pending_id: str | None
    reverses_id: str | None
    timeout_at: str | None
    created_at: str
    entries: list[Entry]


class ReceiptLog(Out):
    index: int
    tree_size: int
    inclusion_proof: list[str]
    checkpoint: str


class Receipt(Out):
    transaction: CanonicalTransaction
    leaf_hash: str
    set: SignedEntryTimestamp
    log: ReceiptLog | None = None


class InclusionProof(Out):
    index: int
    tree_size: int
    leaf_hash: str
    transaction_id: str
    proof: list[str]


class ConsistencyProof(Out):
    first: int
    second: int
    proof: list[str]


class Jwk(Out):
    kty: Literal["OKP"]
    crv: Literal["Ed25519"]
    x: str
    kid: str
    alg: Literal["EdDSA"]
    use: Literal["sig"]
    created_at: str
    retired_at: str | None = None


class KeySet(Out):
    keys: list[Jwk]


class CheckpointInfo(Out):
    tree_size: int
    root_hash: str
    kid: str
    created_at: str


class CheckpointPage(Out):
    items: list[CheckpointInfo]
    next_cursor: str | None

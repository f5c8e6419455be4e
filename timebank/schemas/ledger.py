"""Response shapes of the ledger and the community: transactions, accounts, parties, keys."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    pass


from timebank.schemas.openapi import Out


class Entry(Out):
    account_id: str
    asset: Literal["HOUR", "POINT"]
    direction: Literal["debit", "credit"]
    layer: Literal["posted", "pending", "release"]
    amount: int


class SetPayload(Out):
    community_id: str
    transaction_id: str
    leaf_hash: str
    integrated_at: str
    log_origin: str
    maximum_merge_delay_seconds: int


class SignedEntryTimestamp(Out):
    """Ed25519 signature (kid) over the JCS bytes of payload: the log's promise to include the leaf."""

    payload: SetPayload
    kid: str
    signature: str


class Transaction(Out):
    id: str
    community_id: str
    kind: str
    status: Literal["posted", "pending", "voided", "expired"]
    phase: Literal["posted", "pending", "post", "void", "expire"]
    memo: str | None
    entries: list[Entry]
    created_at: str
    seq: int
    pending_id: str | None = None
    reverses_id: str | None = None
    reason: str | None = None
    timeout_at: str | None = None
    resolved_by: str | None = None
    reversed_by: str | None = None
    set: SignedEntryTimestamp | None = None  # in the answer to the request that created it


class BatchResult(Out):
    index: int
    idempotency_key: str
    status: Literal["created", "replayed", "rejected"]
    replayed: bool
    transaction: Transaction | None = None  # created or replayed: with its signed entry timestamp
    problem: dict[str, Any] | None = None  # rejected: the problem+json it would have had alone


class BatchAnswer(Out):
    created: int
    replayed: int
    rejected: int
    results: list[BatchResult]


class Balance(Out):
    posted: int
    pending: int
    available: int
    pending_credits: int
    credit_limit: int


class MemberBalance(Balance):
    account_id: str


class Account(Balance):
    id: str
    community_id: str
    asset: Literal["HOUR", "POINT"]
    owner: dict[str, str]
    flags: list[str]
    debits_posted: int
    credits_posted: int
    debits_pending: int
    credits_pending: int
    created_at: str


class AccountEntry(Out):
    id: int
    transaction_id: str
    kind: str
    phase: str
    asset: str
    direction: str
    layer: str
    amount: int
    memo: str | None
    created_at: str


class EntryPage(Out):
    items: list[AccountEntry]
    next_cursor: str | None


class Community(Out):
    id: str
    name: str
    timezone: str
    created_at: str
    accounts: dict[str, dict[str, str]]


class Party(Out):
    id: str
    kind: Literal["member", "organisation", "merchant"]
    accounts: dict[str, str]
    created_at: str
    display_name: str | None = None
    name: str | None = None
    external_ref: str | None = None
    # members, on GET /v1/members/{id}: approved service and the star level it gives
    lifetime_minutes: int | None = None
    star_level: int | None = None
    minutes_to_next_level: int | None = None


class PartyPage(Out):
    items: list[Party]
    next_cursor: str | None


class ApiKeyCreated(Out):
    id: str
    key: str
    role: str
    label: str | None
    prefix: str
    created_at: str
    subject_id: str | None = None


class ApiKeyInfo(Out):
    id: str
    role: str
    subject_id: str | None
    label: str | None
    prefix: str
    created_at: str
    revoked_at: str | None


class ApiKeyList(Out):
    items: list[ApiKeyInfo]

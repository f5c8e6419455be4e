"""Response shapes, for the OpenAPI schema and for contract tests.

Services build plain dicts; routes declare these as their response types so the
schema documents every field, and tests convert real responses into them strictly,
so the documentation cannot drift from what the API sends.
"""

from __future__ import annotations

from typing import Any, Literal

import msgspec
from litestar.openapi.datastructures import ResponseSpec

from timebank.problems import PROBLEM_MEDIA_TYPE


class Out(msgspec.Struct, forbid_unknown_fields=True):
    """Base of the response shapes: a field the API sends but does not document fails the contract tests."""


class Problem(msgspec.Struct):
    """RFC 9457 problem details; extra members (e.g. account_id, errors) may follow."""

    type: str
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None


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


class ServiceRecord(Out):
    id: str
    member_id: str
    organisation_id: str
    activity: str
    category: str
    place: str
    started_at: str
    ended_at: str
    minutes: int
    beneficiary: str | None
    content: str | None
    external_ref: str | None
    status: Literal["submitted", "approved", "rejected", "reversed"]
    recorded_at: str
    points: int | None
    transaction_id: str | None
    reject_reason: str | None
    decided_at: str | None
    duplicate: bool | None = None  # in import and create answers: an existing record with that external_ref


class ImportedRecord(ServiceRecord):
    line: int = 0


class ImportRejection(Out):
    line: int
    reason: str


class ImportResult(Out):
    accepted: list[ImportedRecord]
    rejected: list[ImportRejection]


class ServiceRecordPage(Out):
    items: list[ServiceRecord]
    next_cursor: str | None


class Decision(Out):
    """An approval or an approved correction: the record and the ledger transaction it made."""

    record: ServiceRecord
    transaction: Transaction


class Correction(Out):
    id: str
    record_id: str
    reason: str
    status: Literal["requested", "approved", "rejected"]
    requested_by: str
    requested_at: str
    decided_by: str | None
    decided_at: str | None
    transaction_id: str | None


class PolicyCategory(Out):
    code: str
    name: str


class PolicyRounding(Out):
    unit_minutes: int
    mode: Literal["down", "nearest", "up"]


class PolicyExpiry(Out):
    kind: Literal["months_after_credit", "end_of_next_year"]
    months: int


class PolicyBody(Out):
    points_per_hour: int
    tier_multipliers: dict[str, str]
    star_thresholds_hours: list[int]
    daily_cap_minutes: int
    rounding: PolicyRounding
    points_expiry: PolicyExpiry
    categories: list[PolicyCategory]
    trusted_organisations: list[str]
    voucher_seconds: int


class PolicyVersion(Out):
    version: int
    policy: PolicyBody
    changed_by: str | None
    changed_at: str | None


class PolicyHistory(Out):
    items: list[PolicyVersion]


class SignedCertificate(Out):
    """A certificate of service; signature: Ed25519 (kid) over the JCS bytes of certificate."""

    certificate: dict[str, Any]
    kid: str
    signature: str


class PointsLot(Out):
    id: str
    points: int
    remaining: int
    credited_at: str
    expires_at: str
    transaction_id: str
    record_id: str | None


class MemberPoints(Out):
    member_id: str
    account_id: str
    balance: int
    available: int
    lots: list[PointsLot]


class RewardLimit(Out):
    count: int
    period: Literal["day", "week", "month", "quarter", "year"]


class Eligibility(Out):
    """For a resident: may they redeem it now, at what price, and if not, why."""

    may_redeem: bool
    reasons: list[Literal["not_active", "not_valid_yet", "no_longer_valid", "star_level", "out_of_stock",
                          "limit_reached", "insufficient_points"]]
    price_points: int
    star_level: int


class Reward(Out):
    """stock: units still free to redeem (null: unlimited); held: reserved by open vouchers."""

    id: str
    merchant_id: str
    title: str
    description: str | None
    price_points: int
    star_prices: dict[str, int]
    min_star: int
    stock: int | None
    held: int
    redeemed: int
    limit: RewardLimit | None
    valid_from: str | None
    valid_until: str | None
    active: bool
    created_at: str
    updated_at: str
    eligibility: Eligibility | None = None


class RewardPage(Out):
    items: list[Reward]
    next_cursor: str | None


class Redemption(Out):
    """code and qr (a signed token, see docs/api.md) come with the answer that made the voucher."""

    id: str
    status: Literal["held", "confirmed", "cancelled", "expired"]
    reward_id: str
    merchant_id: str
    member_id: str
    price_points: int
    star_level: int
    expires_at: str
    created_at: str
    hold_id: str
    resolution_id: str | None
    resolved_at: str | None
    title: str | None = None
    code: str | None = None
    qr: str | None = None
    transaction: Transaction | None = None


class RedemptionPage(Out):
    items: list[Redemption]
    next_cursor: str | None


class MemberToken(Out):
    token: str
    expires_at: str


class StatementItem(Out):
    redemption_id: str
    confirmed_at: str
    reward_id: str
    title: str
    member_id: str
    points: int
    transaction_id: str


class StatementTotals(Out):
    redemptions: int
    points: int


class Statement(Out):
    merchant_id: str
    timezone: str
    items: list[StatementItem]
    totals: StatementTotals
    from_: str = msgspec.field(name="from")
    to: str


class JobRun(Out):
    job: str
    scope: str
    period: str
    status: Literal["running", "done", "failed"]
    attempts: int
    worker: str
    started_at: str
    finished_at: str | None
    counts: dict[str, Any]
    error: str | None


class JobRunList(Out):
    items: list[JobRun]


class Notification(Out):
    """payload: {"type": "points_expiring", "lot_id", "points", "days", "expires_at", ...}, as the webhook gets it."""

    id: str
    kind: Literal["points_expiring"]
    member_id: str
    payload: dict[str, Any]
    created_at: str
    delivered_at: str | None
    attempts: int


class NotificationPage(Out):
    items: list[Notification]
    next_cursor: str | None


def problems(*statuses: int) -> dict[int, ResponseSpec]:
    return {
        s: ResponseSpec(Problem, description="application/problem+json", media_type=PROBLEM_MEDIA_TYPE,
                        generate_examples=False)
        for s in statuses
    }

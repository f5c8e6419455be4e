"""Response shapes of service records, the policy, certificates and points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Literal

from litestar.openapi.datastructures import ResponseSpec

if TYPE_CHECKING:
    pass


from timebank.schemas.ledger import Transaction
from timebank.schemas.openapi import Out


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
    source: Literal["activity", "entered", "import"]
    back_filled: bool  # entered without a check-in (补录): source is not "activity"
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


# POST /v1/service-records answers 200 (not 201) with the record that already has the external_ref.
EXISTING_RECORD = {
    200: ResponseSpec(
        ServiceRecord,
        description="A record with this external_ref already exists: that record, with duplicate: true",
        generate_examples=False,
    )
}


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
    public_page: bool
    withdraw_deadline_hours: int
    backfilled_points: bool


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

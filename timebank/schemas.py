"""Request limits and response shapes, for the OpenAPI schema and for contract tests.

Services build plain dicts; routes declare these as their response types so the
schema documents every field, and tests convert real responses into them strictly,
so the documentation cannot drift from what the API sends.

The limits below are what the service enforces: request bodies annotate their fields
with them (``msgspec.Meta``, which Litestar both validates and writes into the
schema as maxLength / minimum / maximum / maxItems), query and header parameters use
the ``Parameter`` aliases. A service may check more (a rule of the bank, a setting),
never less. Numbers stay below 2**53 so that the schema (and JavaScript) holds them
exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar._openapi.schema_generation.plugins.struct import StructSchemaPlugin
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIFormat, OpenAPIMediaType, OpenAPIType, Operation, RequestBody, Schema
from litestar.params import Parameter

from timebank.core.problems import PROBLEM_MEDIA_TYPE

if TYPE_CHECKING:
    from litestar._openapi.schema_generation import SchemaCreator
    from litestar.typing import FieldDefinition

# --- limits ----------------------------------------------------------------------

MAX_AMOUNT = 10**12  # ledger.service.MAX_AMOUNT: one movement, a credit limit
MAX_POINTS = 1_000_000_000  # redemption.rules.MAX_POINTS: a reward's price
MAX_STOCK = 1_000_000_000  # redemption.rules.MAX_STOCK
MAX_LEGS = 64  # ledger.service.MAX_LEGS
MAX_NAME = 200  # community.service.MAX_NAME: names, labels, external refs; record texts
MAX_MEMO = 500  # ledger.service.MAX_MEMO: memos and reasons
MAX_DESCRIPTION = 2000  # a reward's description, a service record's content
MAX_CATEGORY = 50  # volunteer.policy: a category's code or name
MAX_TOKEN = 2000  # a signed voucher QR or member token (about 300 characters)
MAX_CODE = 64  # a voucher code as typed at the counter (8 characters, maybe with spaces and dashes)
MAX_IDEMPOTENCY_KEY = 255  # ledger.idempotency.MAX_KEY_LENGTH
MAX_CURSOR = 100  # every next_cursor is shorter
PAGE_MAX = 500  # settings.page_max (TIMEBANK_PAGE_MAX may lower it, not raise it)
MAX_HOLD_SECONDS = 366 * 24 * 3600  # ceiling of TIMEBANK_HOLD_MAX_TIMEOUT_SECONDS (default 7 days)
MAX_SAFE_INT = 2**53 - 1  # tree sizes and indexes of the log
# request_max_body_size of every JSON route (the largest real one, 64 legs, is ~15 KB); the CSV
# import keeps the app's TIMEBANK_MAX_BODY_BYTES and checks TIMEBANK_IMPORT_MAX_BYTES itself.
JSON_BODY_MAX = 64 * 1024

# What the edge refuses anywhere (timebank/edge.py), said in the schema as well: control
# characters (JSON text may hold tab, CR and LF; a parameter none) and years outside
# 1900-2199 (dates and times are documented as RFC 3339 within those years; msgspec does
# not apply a pattern to them, the edge refuses the years). Patterns are ECMA-262 (the
# schema's) and Python (msgspec's and Litestar's) alike.
TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f\\u007f]*$"
PARAM_PATTERN = "^[^\\u0000-\\u001f\\u007f]*$"
_DATE = "(19|2[01])[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])"  # 1900 to 2199
_TIME = "([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\\.[0-9]{1,6})?(Z|[+-]([01][0-9]|2[0-3]):[0-5][0-9])"
_UUID = "[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
DATE_PATTERN = f"^{_DATE}$"
DATETIME_PATTERN = f"^{_DATE}T{_TIME}$"  # RFC 3339 with its offset
# Litestar drops a zero bound of an optional field from the schema (a falsy value): say it again.
ZERO_MIN = {"extra": {"minimum": 0}}


def _text(max_length: int, min_length: int = 0, description: str | None = None) -> Any:
    return Annotated[
        str,
        msgspec.Meta(
            min_length=min_length, max_length=max_length, pattern=TEXT_PATTERN, description=description
        ),
    ]


Amount = Annotated[
    int, msgspec.Meta(ge=1, le=MAX_AMOUNT, description="whole minutes (HOUR) or points (POINT)")
]
CreditLimit = Annotated[int, msgspec.Meta(ge=0, le=MAX_AMOUNT, extra_json_schema=ZERO_MIN)]
HoldSeconds = Annotated[
    int,
    msgspec.Meta(
        ge=1, le=MAX_HOLD_SECONDS, description="at most TIMEBANK_HOLD_MAX_TIMEOUT_SECONDS (default 604800)"
    ),
]
LEGS = msgspec.Meta(min_length=1, max_length=MAX_LEGS)  # Annotated[list[Leg], LEGS]
Name = _text(MAX_NAME, 1)
Label = _text(MAX_NAME)
ExternalRef = _text(MAX_NAME, 1)
Text = _text(MAX_NAME)
RequiredText = _text(MAX_NAME, 1)
Memo = _text(MAX_MEMO)
Reason = _text(MAX_MEMO, 1)
Description = _text(MAX_DESCRIPTION)
CategoryName = _text(MAX_CATEGORY, 1, description="a category's code or name")
Title = _text(MAX_NAME, 1)
Token = _text(MAX_TOKEN)
Code = _text(MAX_CODE)
Points = Annotated[int, msgspec.Meta(ge=1, le=MAX_POINTS)]
Stock = Annotated[int, msgspec.Meta(ge=0, le=MAX_STOCK, extra_json_schema=ZERO_MIN)]
StarLevel = Annotated[int, msgspec.Meta(ge=0, le=5, extra_json_schema=ZERO_MIN)]
LimitCount = Annotated[int, msgspec.Meta(ge=1, le=1000)]
Period = Literal["day", "week", "month", "quarter", "year"]  # redemption.rules.PERIODS
StarPrices = Annotated[
    dict[str, Points],
    msgspec.Meta(
        max_length=5,
        extra_json_schema={
            "description": 'a price per star level, keyed "1" to "5"',
            "extra": {
                "max_properties": 5,
                "property_names": Schema(enum=["1", "2", "3", "4", "5"]),
                "additional_properties": Schema(type=OpenAPIType.INTEGER, minimum=1, maximum=MAX_POINTS),
            },
        },
    ),
]
DateTime = Annotated[
    datetime,
    msgspec.Meta(
        extra_json_schema={
            "description": "RFC 3339 with a time zone, from 1900 to 2199",
            "extra": {"pattern": DATETIME_PATTERN},
        }
    ),
]

# Query, path and header parameters (Litestar validates these as well).
# Idempotency-Key: 1 to 255 printable characters, not blank (ledger.idempotency.check_key answers
# its own problem types; only the length is Litestar's). Parameter(header=..., **IDEMPOTENCY_KEY_LIMITS)
IDEMPOTENCY_KEY_LIMITS: dict[str, Any] = {
    "max_length": MAX_IDEMPOTENCY_KEY,
    "schema_extra": {"min_length": 1, "pattern": "^[ -~]*[!-~][ -~]*$"},  # e.g. a UUID
}
PageLimit = Annotated[
    int | None, Parameter(ge=1, le=PAGE_MAX, description=f"page size, 1 to {PAGE_MAX} (default 50)")
]
# The next_cursor of the previous page: a number, an id, or a time and an id.
IntCursor = Annotated[
    str | None, Parameter(max_length=18, pattern="^[0-9]*$", description="next_cursor of the previous page")
]
UuidCursor = Annotated[
    str | None,
    Parameter(max_length=36, pattern=f"^({_UUID})?$", description="next_cursor of the previous page"),
]
RecordCursor = Annotated[
    str | None,
    Parameter(
        max_length=MAX_CURSOR,
        pattern=f"^({_DATE}T{_TIME}_{_UUID})?$",
        description="next_cursor of the previous page",
    ),
]
TreeSize = Annotated[
    int | None, Parameter(ge=0, le=MAX_SAFE_INT, schema_extra={"minimum": 0})
]  # also a leaf index
ProofSize = Annotated[int, Parameter(ge=1, le=MAX_SAFE_INT)]
CodeQuery = Annotated[
    str, Parameter(max_length=MAX_CODE, pattern=PARAM_PATTERN, description="the voucher's code")
]
CategoryQuery = Annotated[
    str | None,
    Parameter(max_length=MAX_CATEGORY, pattern=PARAM_PATTERN, description="a category's code or name"),
]
RecordStatus = Literal["submitted", "approved", "rejected", "reversed"]
CertificateNumber = Annotated[
    str, Parameter(max_length=40, pattern=PARAM_PATTERN, description="the number printed on the certificate")
]
Since = Annotated[datetime | None, Parameter(schema_extra={"pattern": DATETIME_PATTERN})]
Until = Annotated[datetime | None, Parameter(schema_extra={"pattern": DATETIME_PATTERN})]
DateFrom = Annotated[
    date, Parameter(query="from", schema_extra={"pattern": DATE_PATTERN}, description="the first day")
]
DateTo = Annotated[
    date, Parameter(query="to", schema_extra={"pattern": DATE_PATTERN}, description="the last day")
]


def job_name(names: Any) -> Any:
    """The ``job`` query parameter: one of the scheduled jobs' names."""
    return Annotated[str | None, Parameter(max_length=MAX_CATEGORY, schema_extra={"enum": sorted(names)})]


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
    reasons: list[
        Literal[
            "not_active",
            "not_valid_yet",
            "no_longer_valid",
            "star_level",
            "out_of_stock",
            "limit_reached",
            "insufficient_points",
        ]
    ]
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


def documented(
    *,
    answers: dict[str, Schema] | None = None,
    body: dict[str, Schema] | None = None,
    body_description: str | None = None,
    required_headers: tuple[str, ...] = (),
) -> type[Operation]:
    """An ``operation_class`` for what Litestar cannot say itself: a success answer that may also
    come in other media types (CSV, PDF, a signed note), a body that is not JSON (a CSV file),
    a header the route requires but checks itself (for its own problem type)."""

    @dataclass
    class _Operation(Operation):
        def __post_init__(self) -> None:
            if answers and self.responses:
                success = next(code for code in self.responses if code.startswith("2"))
                response = self.responses[success]
                response.content = {
                    **(response.content or {}),  # type: ignore[union-attr]
                    **{media: OpenAPIMediaType(schema=s) for media, s in answers.items()},
                }
            if body:
                self.request_body = RequestBody(
                    content={media: OpenAPIMediaType(schema=s) for media, s in body.items()},
                    description=body_description,
                    required=True,
                )
            for parameter in self.parameters or ():
                if getattr(parameter, "param_in", None) == "header" and parameter.name in required_headers:
                    parameter.required = True  # type: ignore[union-attr]

    return _Operation


# The routes that move value answer 400 idempotency-key-required without the header.
IDEMPOTENT = documented(required_headers=("Idempotency-Key",))


TEXT = Schema(type=OpenAPIType.STRING)  # a text answer or body
BINARY = Schema(type=OpenAPIType.STRING, format=OpenAPIFormat.BINARY)


class StrictStructs(StructSchemaPlugin):
    """Litestar's schema for msgspec structs, plus ``additionalProperties: false`` for a struct with
    ``forbid_unknown_fields`` (every request body here, every response shape): what such a
    struct refuses, or would never send, the schema says is not there. Register it first in
    ``Litestar(plugins=[...])``."""

    def to_openapi_schema(self, field_definition: FieldDefinition, schema_creator: SchemaCreator) -> Schema:
        schema = super().to_openapi_schema(field_definition, schema_creator)
        if field_definition.type_.__struct_config__.forbid_unknown_fields:
            schema.additional_properties = False
        return schema


PROBLEM_DESCRIPTIONS = {
    400: "The request is not valid: a parameter or the body breaks the schema or a rule (or the edge refused "
    "it: an unknown Host, a control character, an integer beyond 64 bits, a date out of range, deep JSON)",
    401: "No valid API key (`Authorization: Bearer tbk_...`)",
    403: "The key's role may not do this",
    404: "No such resource (also what another community's objects look like)",
    409: "The request conflicts with the current state (or an Idempotency-Key was used for another request)",
    413: "The request body is larger than this route accepts",
    422: "The request breaks a rule of the bank",
    429: "Too many failed authentications from this address; retry later",
    503: "The database is unavailable; retry later",
}
# What any route may answer: the edge refuses malformed requests (400) and every route
# reads the database (503). Routes that need a key may also answer 401, 403 and 429.
ALWAYS = (400, 503)
WITH_A_KEY = (401, 403, 429)


class HealthChecks(Out):
    database: str  # "ok", or the kind of error that kept the service from its database
    audit: dict[str, Any] | None = None  # the last nightly audit: status, period, finished_at, failed_checks


class Health(Out):
    status: Literal["ok", "unavailable"]
    checks: HealthChecks | None = None


READY_RESPONSES = {
    503: ResponseSpec(
        Health,
        description="The service cannot reach its database (take it out of rotation)",
        generate_examples=False,
    ),
}


def problems(*statuses: int, public: bool = False) -> dict[int, ResponseSpec]:
    """The problem+json answers of a route, for its ``responses=``: the statuses it names
    (404 for a route that finds an object, 409, 413 for a route with a body, 422 ...), plus
    those every route can give, plus 401/403/429 unless the route is ``public``."""
    wanted = set(statuses) | set(ALWAYS) | (set() if public else set(WITH_A_KEY))
    return {
        s: ResponseSpec(
            Problem,
            description=PROBLEM_DESCRIPTIONS.get(s, "application/problem+json"),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for s in sorted(wanted)
    }

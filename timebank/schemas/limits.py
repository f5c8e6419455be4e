"""Request limits: what the service enforces, as the types and parameters routes declare.

Bodies annotate their fields with these (``msgspec.Meta``, which Litestar both validates
and writes into the schema as maxLength / minimum / maximum / maxItems); query and header
parameters use the ``Parameter`` aliases. A service may check more (a rule of the bank, a
setting), never less. Numbers stay below 2**53 so that the schema (and JavaScript) holds
them exactly.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Annotated, Any, Literal

import msgspec
from litestar.openapi.spec import OpenAPIType, Schema
from litestar.params import Parameter

if TYPE_CHECKING:
    pass


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
BATCH_BODY_MAX = 1024 * 1024  # POST /v1/transfers/batch: up to 1,000 transfers of about 400 bytes
MAX_BATCH = 1000

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
IdempotencyKeyField = _text(
    MAX_IDEMPOTENCY_KEY, 1, description="like the Idempotency-Key header: unique per intended transfer"
)
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

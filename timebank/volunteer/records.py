"""What a service record is at the edges: the shape submitted, the views answered, the errors.

Shared by every step of the package (recording, approval, corrections, reading), so
each of them shows a record, and fails, the same way.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, Conflict, DomainError


class ImportTooLarge(DomainError):
    slug, status, title = "payload-too-large", 413, "The request body is too large"


class RecordAlreadyResolved(Conflict):
    slug, title = "record-already-resolved", "The service record was already approved, rejected or reversed"


class FourEyes(DomainError):
    slug, status, title = "four-eyes", 403, "A second admin must decide on this correction"


@dataclass(slots=True)  # an import holds many at once: no __dict__ each (memory, and GC pauses)
class RecordIn:
    """One service record as submitted (from JSON or a CSV row)."""

    activity: str
    category: str
    place: str
    started_at: datetime
    ended_at: datetime
    member_id: uuid.UUID | None = None
    member_ref: str | None = None
    organisation_id: uuid.UUID | None = None
    beneficiary: str | None = None
    content: str | None = None
    external_ref: str | None = None
    line: int | None = None  # CSV line, for the report
    # 'activity' (made at an activity's check-out), 'entered' or 'import' (back-filled, 补录)
    source: str = "entered"


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def _id(value: uuid.UUID | None) -> str | None:
    return None if value is None else str(value)


def record_view(row: Any) -> dict[str, Any]:
    """A service record (a SQLAlchemy row or an asyncpg record) as the API shows it."""
    rec = row if isinstance(row, asyncpg.Record) else row._mapping
    return {
        "id": str(rec["id"]),
        "member_id": str(rec["member_id"]),
        "organisation_id": str(rec["organisation_id"]),
        "activity": rec["activity"],
        "category": rec["category"],
        "place": rec["place"],
        "started_at": rfc3339(rec["started_at"]),
        "ended_at": rfc3339(rec["ended_at"]),
        "minutes": rec["minutes"],
        "beneficiary": rec["beneficiary"],
        "content": rec["content"],
        "external_ref": rec["external_ref"],
        "status": rec["status"],
        "recorded_at": rfc3339(rec["recorded_at"]),
        "points": rec["points"],
        "transaction_id": _id(rec["transaction_id"]),
        "reject_reason": rec["reject_reason"],
        "decided_at": _stamp(rec["decided_at"]),
        "source": rec["source"],
        "back_filled": is_back_filled(rec["source"]),
    }


def is_back_filled(source: str) -> bool:
    """Whether a record was entered without a check-in (补录): any not made by an activity."""
    return source != "activity"


def reversal_view(row: Any) -> dict[str, Any]:
    """A correction (four eyes) as the API shows it."""
    return {
        "id": str(row.id),
        "record_id": str(row.record_id),
        "reason": row.reason,
        "status": row.status,
        "requested_by": str(row.requested_by),
        "requested_at": rfc3339(row.requested_at),
        "decided_by": _id(row.decided_by),
        "decided_at": _stamp(row.decided_at),
        "transaction_id": _id(row.transaction_id),
    }


def decision_reason(value: str | None, what: str) -> str:
    """The reason given for a rejection or a correction, trimmed (1 to 500 characters)."""
    value = (value or "").strip()
    if not 1 <= len(value) <= 500:
        raise BadRequest(f"{what} needs a reason of 1 to 500 characters")
    return value

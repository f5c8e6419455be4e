"""Reading service records: who may see which (residents their own, recorders their
organisation's, admins and auditors all), one record or pages of them, newest first.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.cursors import after_time_id, time_id_cursor
from timebank.core.problems import BadRequest, Forbidden, NotFound
from timebank.core.roles import Role
from timebank.volunteer import queries
from timebank.volunteer.queries import RecordFilter
from timebank.volunteer.records import record_view

STATUSES = ("submitted", "approved", "rejected", "reversed")


def _may_read(principal: Principal, rec: Any) -> bool:
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return True
    if principal.role is Role.RECORDER:
        return rec.organisation_id == principal.subject_id
    return principal.role is Role.RESIDENT and rec.member_id == principal.subject_id


async def get_record(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> Any:
    rec = await queries.find_record(conn, principal.community_id, record_id)
    if rec is None or not _may_read(principal, rec):
        raise NotFound(f"service record {record_id} not found")
    return rec


def _scoped(principal: Principal, f: RecordFilter) -> RecordFilter:
    """The filter narrowed to what the principal may read (a 404 for anything else)."""
    if principal.role is Role.RESIDENT:
        if f.member_id not in (None, principal.subject_id):
            raise NotFound(f"member {f.member_id} not found")
        f.member_id = principal.subject_id
    elif principal.role is Role.RECORDER:
        if f.organisation_id not in (None, principal.subject_id):
            raise NotFound(f"organisation {f.organisation_id} not found")
        f.organisation_id = principal.subject_id
    elif principal.role is Role.MERCHANT:
        raise Forbidden("merchant keys do not read service records")
    if f.status is not None and f.status not in STATUSES:
        raise BadRequest("status is submitted, approved, rejected or reversed")
    return f


async def records_page(
    conn: AsyncConnection,
    principal: Principal,
    *,
    member_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    status: str | None = None,
    category: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first. Residents see their own records, recorders their organisation's."""
    f = _scoped(principal, RecordFilter(member_id, organisation_id, status, category, since, until))
    f.after = after_time_id(cursor)
    rows = await queries.records_newest_first(conn, principal.community_id, f, limit + 1)
    items = [record_view(r) for r in rows[:limit]]
    nxt = time_id_cursor(rows[limit - 1].started_at, rows[limit - 1].id) if len(rows) > limit else None
    return items, nxt

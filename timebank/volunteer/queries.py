"""Every read and write of the volunteer package's tables, for it and for other packages.

The package owns ``service_records``, ``service_reversals`` and ``certificates``
(``models.py``); no other package queries them directly.

One way of reading throughout, as in the ledger: SQLAlchemy Core statements on the
SQLModel table classes (``select(ServiceRecord)``, ``insert``, ``update``) run on the
caller's ``AsyncConnection``. They return ``Row`` objects whose attributes are the
model's columns: no ORM session or identity map, since every caller already holds a
connection in its transaction and reads each row once.

The batch statements of an import (up to 20,000 rows: ``unnest`` inserts and updates,
the duplicate and busy-time lookups) are SQL constants run through asyncpg directly
(``asyncpg.Record``, same column names): encoding that many parameters through
SQLAlchemy would hold the event loop far longer.

The parties this package reads come from ``timebank.community.queries``, the points
lots it names from ``timebank.points.queries``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy import Date, Row, Select, Time, and_, any_, cast, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.db import driver, uuid_array
from timebank.volunteer.models import Certificate, ServiceRecord, ServiceReversal

_RECORDS = select(ServiceRecord)
_RECORD_COLUMNS = tuple(ServiceRecord.__table__.c)  # type: ignore[attr-defined]
_REVERSAL_COLUMNS = tuple(ServiceReversal.__table__.c)  # type: ignore[attr-defined]
_OPEN = "requested"

# --- batches of an import (asyncpg) ---------------------------------------------------

_BY_REFS = (
    "SELECT s.* FROM service_records s JOIN unnest($1::uuid[], $2::text[]) AS k(org, ref) "
    "ON s.organisation_id = k.org AND s.external_ref = k.ref"
)
_BUSY = (
    "SELECT member_id, started_at, ended_at FROM service_records WHERE member_id = ANY($1::uuid[]) "
    "AND status IN ('submitted', 'approved') AND started_at < $3 AND ended_at > $2"
)
_INSERT = (
    "INSERT INTO service_records (id, community_id, member_id, organisation_id, activity, category, "
    "place, started_at, ended_at, minutes, beneficiary, content, external_ref, source, recorded_by) "
    "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], "
    "$7::text[], $8::timestamptz[], $9::timestamptz[], $10::int[], $11::text[], $12::text[], "
    "$13::text[], $14::text[], $15::uuid[]) RETURNING *"
)
_BY_IDS = "SELECT * FROM service_records WHERE id = ANY($1::uuid[])"
_APPROVE_MANY = (
    "UPDATE service_records s SET status = 'approved', decided_by = $1, decided_at = now(), "
    "policy_version = $2, points = d.points, transaction_id = d.tx "
    "FROM unnest($3::uuid[], $4::bigint[], $5::uuid[]) AS d(id, points, tx) "
    "WHERE s.id = d.id"
)


@dataclass(slots=True)
class NewRecord:
    """The columns of a record about to be written (its id chosen beforehand)."""

    id: uuid.UUID
    member_id: uuid.UUID
    organisation_id: uuid.UUID
    activity: str
    category: str
    place: str
    started_at: datetime
    ended_at: datetime
    minutes: int
    beneficiary: str | None
    content: str | None
    external_ref: str | None
    source: str


async def records_by_refs(conn: AsyncConnection, keys: Sequence[tuple[uuid.UUID, str]]) -> list[Any]:
    """The records with these (organisation_id, external_ref) pairs (asyncpg records)."""
    raw = await driver(conn)
    return list(await raw.fetch(_BY_REFS, [k[0] for k in keys], [k[1] for k in keys]))


async def busy_times(
    conn: AsyncConnection, member_ids: Sequence[uuid.UUID], lo: datetime, hi: datetime
) -> list[Any]:
    """(member_id, started_at, ended_at) of the volunteers' live records that touch [lo, hi)."""
    return list(await (await driver(conn)).fetch(_BUSY, member_ids, lo, hi))


async def insert_records(
    conn: AsyncConnection, community_id: uuid.UUID, recorded_by: uuid.UUID, rows: Sequence[NewRecord]
) -> list[Any]:
    """Write the records in one statement, as submitted; the stored rows (asyncpg records)."""
    n = len(rows)
    columns = [[getattr(r, name) for r in rows] for name in NewRecord.__slots__]  # type: ignore[attr-defined]
    head, tail = columns[0], columns[1:]
    return list(await (await driver(conn)).fetch(_INSERT, head, [community_id] * n, *tail, [recorded_by] * n))


async def records_by_ids(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> list[Any]:
    return list(await (await driver(conn)).fetch(_BY_IDS, list(ids)))


async def approve_many(
    conn: AsyncConnection,
    decided_by: uuid.UUID,
    policy_version: int,
    decided: Sequence[tuple[uuid.UUID, int, uuid.UUID]],
) -> None:
    """Mark records approved in one statement: (record id, points, transaction id) each."""
    await (await driver(conn)).execute(
        _APPROVE_MANY,
        decided_by,
        policy_version,
        [d[0] for d in decided],
        [d[1] for d in decided],
        [d[2] for d in decided],
    )


# --- service records ---------------------------------------------------------------------


async def lifetime_minutes_of(conn: AsyncConnection, member_ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Each volunteer's approved service in minutes, ever (absent: none approved)."""
    stmt = (
        select(ServiceRecord.member_id, func.sum(ServiceRecord.minutes).label("minutes"))
        .where(ServiceRecord.member_id == any_(uuid_array(member_ids)), ServiceRecord.status == "approved")
        .group_by(ServiceRecord.member_id)
    )
    return {r.member_id: int(r.minutes) for r in await conn.execute(stmt)}


async def lifetime_minutes(conn: AsyncConnection, member_id: uuid.UUID) -> int:
    """A volunteer's approved service in minutes, ever (what star levels count)."""
    return (await lifetime_minutes_of(conn, [member_id])).get(member_id, 0)


async def find_record(
    conn: AsyncConnection, community_id: uuid.UUID, record_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    """A record of the community, or None; ``lock``: FOR UPDATE (deciders queue here)."""
    stmt = _RECORDS.where(ServiceRecord.id == record_id, ServiceRecord.community_id == community_id)
    return (await conn.execute(stmt.with_for_update() if lock else stmt)).first()


async def mark_approved(
    conn: AsyncConnection,
    record_id: uuid.UUID,
    *,
    decided_by: uuid.UUID,
    policy_version: int,
    points: int,
    transaction_id: uuid.UUID,
) -> None:
    await conn.execute(
        update(ServiceRecord)
        .where(ServiceRecord.id == record_id)
        .values(
            status="approved",
            decided_by=decided_by,
            decided_at=func.now(),
            policy_version=policy_version,
            points=points,
            transaction_id=transaction_id,
        )
    )


async def mark_rejected(
    conn: AsyncConnection, record_id: uuid.UUID, reason: str, decided_by: uuid.UUID
) -> Row[Any]:
    stmt = (
        update(ServiceRecord)
        .where(ServiceRecord.id == record_id)
        .values(status="rejected", reject_reason=reason, decided_by=decided_by, decided_at=func.now())
        .returning(*_RECORD_COLUMNS)
    )
    return (await conn.execute(stmt)).one()


async def mark_reversed(conn: AsyncConnection, record_id: uuid.UUID) -> None:
    await conn.execute(update(ServiceRecord).where(ServiceRecord.id == record_id).values(status="reversed"))


async def record_of_transaction(
    conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID
) -> Row[Any] | None:
    """The record credited (or reversed) by a ledger transaction."""
    stmt = (
        _RECORDS.outerjoin(ServiceReversal, ServiceReversal.record_id == ServiceRecord.id)
        .where(ServiceRecord.community_id == community_id)
        .where(or_(ServiceRecord.transaction_id == tx_id, ServiceReversal.transaction_id == tx_id))
    )
    return (await conn.execute(stmt)).first()


@dataclass(slots=True)
class RecordFilter:
    """Which records a page shows (None: any), and where the previous page stopped."""

    member_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    status: str | None = None
    category: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    after: tuple[datetime, uuid.UUID] | None = None


def _filtered(community_id: uuid.UUID, f: RecordFilter) -> Select[Any]:
    s = ServiceRecord
    given = [
        (f.member_id, lambda v: s.member_id == v),
        (f.organisation_id, lambda v: s.organisation_id == v),
        (f.status, lambda v: s.status == v),
        (f.category, lambda v: s.category == v),
        (f.since, lambda v: s.started_at >= v),
        (f.until, lambda v: s.started_at < v),
        (f.after, lambda v: tuple_(s.started_at, s.id) < tuple_(*v)),
    ]
    return _RECORDS.where(s.community_id == community_id, *(cond(v) for v, cond in given if v is not None))


async def records_newest_first(
    conn: AsyncConnection, community_id: uuid.UUID, f: RecordFilter, n: int
) -> list[Row[Any]]:
    """Up to ``n`` records matching ``f``, newest first (by start, then id)."""
    stmt = _filtered(community_id, f).order_by(
        ServiceRecord.started_at.desc(),  # type: ignore[attr-defined]
        ServiceRecord.id.desc(),  # type: ignore[attr-defined]
    )
    return list((await conn.execute(stmt.limit(n))).all())


async def approved_in_period(
    conn: AsyncConnection, member_id: uuid.UUID, start: datetime, end: datetime
) -> list[Row[Any]]:
    """A volunteer's approved records that started in [start, end), in time order."""
    s = ServiceRecord
    stmt = (
        select(s.id, s.started_at, s.activity, s.category, s.minutes, s.organisation_id)
        .where(s.member_id == member_id, s.status == "approved", s.started_at >= start, s.started_at < end)
        .order_by(s.started_at, s.id)
    )
    return list((await conn.execute(stmt)).all())


# --- corrections -----------------------------------------------------------------------


async def open_reversal(
    conn: AsyncConnection, record_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    """The correction of a record waiting for its second admin, or None."""
    stmt = select(ServiceReversal).where(
        ServiceReversal.record_id == record_id, ServiceReversal.status == _OPEN
    )
    return (await conn.execute(stmt.with_for_update() if lock else stmt)).first()


async def insert_reversal(
    conn: AsyncConnection, community_id: uuid.UUID, record_id: uuid.UUID, reason: str, by: uuid.UUID
) -> Row[Any]:
    stmt = (
        ServiceReversal.__table__.insert()  # type: ignore[attr-defined]
        .values(community_id=community_id, record_id=record_id, reason=reason, requested_by=by)
        .returning(*_REVERSAL_COLUMNS)
    )
    return (await conn.execute(stmt)).one()


async def decide_reversal(
    conn: AsyncConnection, reversal_id: uuid.UUID, by: uuid.UUID, transaction_id: uuid.UUID | None
) -> Row[Any]:
    """Approve (with the reversal's transaction) or reject (without one) a correction."""
    stmt = (
        update(ServiceReversal)
        .where(ServiceReversal.id == reversal_id)
        .values(
            status="rejected" if transaction_id is None else "approved",
            decided_by=by,
            decided_at=func.now(),
            transaction_id=transaction_id,
        )
        .returning(*_REVERSAL_COLUMNS)
    )
    return (await conn.execute(stmt)).one()


# --- certificates ----------------------------------------------------------------------


async def certificate_by_content(
    conn: AsyncConnection, member_id: uuid.UUID, content_hash: bytes
) -> Row[Any] | None:
    stmt = select(Certificate).where(
        Certificate.member_id == member_id, Certificate.content_hash == content_hash
    )
    return (await conn.execute(stmt)).first()


async def certificate_by_number(conn: AsyncConnection, number: str) -> Row[Any] | None:
    return (await conn.execute(select(Certificate).where(Certificate.number == number))).first()


async def insert_certificate(conn: AsyncConnection, values: dict[str, Any]) -> None:
    """Keep a certificate; one for the same member and content already kept wins."""
    stmt = (
        pg_insert(Certificate)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["member_id", "content_hash"])
    )
    await conn.execute(stmt)


# --- the staff's queues (console) ------------------------------------------------------


@dataclass(slots=True)
class Signals:
    """What makes a waiting record worth a second look (``queue.py`` sets the thresholds).

    Night is local time in the community's zone: a record that starts before
    ``night_until`` or at/after ``night_from``, ends after ``night_from``, or runs past
    midnight.
    """

    zone: str
    long_minutes: int
    late_after: timedelta
    night_from: time
    night_until: time


def _signal_columns(sig: Signals) -> tuple[Any, Any, Any]:
    s = ServiceRecord
    start, end = func.timezone(sig.zone, s.started_at), func.timezone(sig.zone, s.ended_at)
    start_t, end_t = cast(start, Time), cast(end, Time)
    long_ = s.minutes >= sig.long_minutes
    night = or_(
        start_t < sig.night_until,
        start_t >= sig.night_from,
        end_t > sig.night_from,
        cast(start, Date) != cast(end, Date),
    )
    late = s.recorded_at > s.ended_at + sig.late_after
    return long_, night, late


def _with_signals(sig: Signals) -> Select[Any]:
    long_, night, late = _signal_columns(sig)
    return select(*_RECORD_COLUMNS, long_.label("long"), night.label("night"), late.label("late"))


@dataclass(slots=True)
class WaitingFilter:
    """Which submitted records a page of the approval queue shows, in which order, and
    where the previous page stopped (``after``: the sort key of its last record)."""

    organisation_id: uuid.UUID | None = None
    category: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    min_minutes: int | None = None
    flagged: bool = False
    sort: str = "oldest"  # oldest | newest | longest
    after: tuple[Any, ...] | None = None


def _waiting_where(community_id: uuid.UUID, f: WaitingFilter, sig: Signals) -> list[Any]:
    s = ServiceRecord
    given = [
        (f.organisation_id, lambda v: s.organisation_id == v),
        (f.category, lambda v: s.category == v),
        (f.since, lambda v: s.started_at >= v),
        (f.until, lambda v: s.started_at < v),
        (f.min_minutes, lambda v: s.minutes >= v),
    ]
    where = [s.community_id == community_id, s.status == "submitted"]
    where += [cond(v) for v, cond in given if v is not None]
    if f.flagged:
        where.append(or_(*_signal_columns(sig)))
    return where


async def waiting_records(
    conn: AsyncConnection, community_id: uuid.UUID, f: WaitingFilter, sig: Signals, n: int
) -> list[Row[Any]]:
    """Up to ``n`` submitted records matching ``f`` in its order, each with its signals
    (``long``, ``night``, ``late``)."""
    s = ServiceRecord
    stmt = _with_signals(sig).where(*_waiting_where(community_id, f, sig))
    if f.sort == "longest":
        if f.after is not None:
            minutes, started, ident = f.after
            stmt = stmt.where(
                or_(
                    s.minutes < minutes,
                    and_(s.minutes == minutes, tuple_(s.started_at, s.id) > (started, ident)),
                )
            )
        order = (s.minutes.desc(), s.started_at, s.id)  # type: ignore[attr-defined]
    elif f.sort == "newest":
        if f.after is not None:
            stmt = stmt.where(tuple_(s.started_at, s.id) < tuple_(*f.after))
        order = (s.started_at.desc(), s.id.desc())  # type: ignore[attr-defined]
    else:
        if f.after is not None:
            stmt = stmt.where(tuple_(s.started_at, s.id) > tuple_(*f.after))
        order = (s.started_at, s.id)
    return list((await conn.execute(stmt.order_by(*order).limit(n))).all())


async def count_waiting(
    conn: AsyncConnection, community_id: uuid.UUID, f: WaitingFilter, sig: Signals
) -> int:
    """How many submitted records match ``f`` (its order and position aside)."""
    stmt = select(func.count()).select_from(ServiceRecord).where(*_waiting_where(community_id, f, sig))
    return int((await conn.execute(stmt)).scalar_one())


async def records_with_signals(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Sequence[uuid.UUID], sig: Signals
) -> list[Row[Any]]:
    """The community's records among ``ids``, each with its signals (any order)."""
    stmt = _with_signals(sig).where(
        ServiceRecord.community_id == community_id, ServiceRecord.id == any_(uuid_array(ids))
    )
    return list((await conn.execute(stmt)).all())


_REVERSAL_AS = tuple(c.label(f"reversal_{c.name}") for c in _REVERSAL_COLUMNS)


async def open_reversals(
    conn: AsyncConnection, community_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, n: int
) -> list[Row[Any]]:
    """Up to ``n`` corrections waiting for a second admin, oldest request first: each
    with its record's columns and its own as ``reversal_<column>``."""
    r = ServiceReversal
    stmt = (
        select(*_RECORD_COLUMNS, *_REVERSAL_AS)
        .join(ServiceRecord, ServiceRecord.id == r.record_id)
        .where(r.community_id == community_id, r.status == _OPEN)
    )
    if after is not None:
        stmt = stmt.where(tuple_(r.requested_at, r.id) > tuple_(*after))
    stmt = stmt.order_by(r.requested_at, r.id).limit(n)
    return list((await conn.execute(stmt)).all())


async def reversals_of_record(conn: AsyncConnection, record_id: uuid.UUID) -> list[Row[Any]]:
    """Every correction asked for a record, oldest first (decided or not)."""
    stmt = (
        select(ServiceReversal)
        .where(ServiceReversal.record_id == record_id)
        .order_by(ServiceReversal.requested_at, ServiceReversal.id)
    )
    return list((await conn.execute(stmt)).all())

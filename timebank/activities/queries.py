"""Every read and write of ``activities`` and ``activity_signups``.

Typed SQLAlchemy Core statements on the models of ``models.py``, run on the caller's
connection; reads answer ``Row``s whose attributes are the columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Row, and_, func, insert, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.activities.models import Activity, ActivitySignup

_ACTIVITY = tuple(Activity.__table__.c)  # type: ignore[attr-defined]
_SIGNUP = tuple(ActivitySignup.__table__.c)  # type: ignore[attr-defined]


async def insert_activity(conn: AsyncConnection, values: dict[str, Any]) -> Row[Any]:
    return (await conn.execute(insert(Activity).values(**values).returning(*_ACTIVITY))).one()


async def find_activity(
    conn: AsyncConnection, community_id: uuid.UUID, activity_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    """The community's activity; with ``lock``, held until the transaction ends (sign-ups,
    withdrawals and changes of one activity queue here, so its capacity holds)."""
    stmt = select(Activity).where(Activity.id == activity_id, Activity.community_id == community_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def update_activity(conn: AsyncConnection, activity_id: uuid.UUID, values: dict[str, Any]) -> Row[Any]:
    stmt = update(Activity).where(Activity.id == activity_id).values(**values).returning(*_ACTIVITY)
    return (await conn.execute(stmt)).one()


@dataclass(slots=True)
class ActivityFilter:
    """Which activities a list shows: the community's, maybe one organisation's, a
    category, starting in [since, until), after the previous page's last one."""

    community_id: uuid.UUID
    organisation_id: uuid.UUID | None = None
    category: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    published_only: bool = False
    after: tuple[datetime, uuid.UUID] | None = None


async def activities_page(conn: AsyncConnection, f: ActivityFilter, limit: int) -> Sequence[Row[Any]]:
    """Up to ``limit`` activities matching ``f``, soonest first."""
    a = Activity
    where = [a.community_id == f.community_id]
    if f.organisation_id is not None:
        where.append(a.organisation_id == f.organisation_id)
    if f.category is not None:
        where.append(a.category == f.category)
    if f.since is not None:
        where.append(a.starts_at >= f.since)
    if f.until is not None:
        where.append(a.starts_at < f.until)
    if f.published_only:
        where.append(a.status == "published")
    if f.after is not None:
        where.append(tuple_(a.starts_at, a.id) > tuple_(*f.after))
    stmt = select(a).where(*where).order_by(a.starts_at, a.id).limit(limit)
    return (await conn.execute(stmt)).all()


# --- sign-ups and attendance ----------------------------------------------------------


async def find_signup(
    conn: AsyncConnection, activity_id: uuid.UUID, member_id: uuid.UUID, *, lock: bool = False
) -> Row[Any] | None:
    stmt = select(ActivitySignup).where(
        ActivitySignup.activity_id == activity_id, ActivitySignup.member_id == member_id
    )
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).first()


async def places_taken(conn: AsyncConnection, activity_id: uuid.UUID) -> tuple[int, int]:
    """(signed up, the highest position so far) of an activity: read under its lock."""
    s = ActivitySignup
    stmt = select(func.count().filter(s.status == "signed_up"), func.coalesce(func.max(s.position), 0)).where(
        s.activity_id == activity_id
    )
    taken, top = (await conn.execute(stmt)).one()
    return int(taken), int(top)


async def upsert_signup(
    conn: AsyncConnection, activity_id: uuid.UUID, member_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    """Write a sign-up: a new row, or a withdrawn one taken up again (under the activity's lock)."""
    s = ActivitySignup
    existing = await find_signup(conn, activity_id, member_id)
    if existing is None:
        stmt = insert(s).values(activity_id=activity_id, member_id=member_id, **values)
    else:
        stmt = update(s).where(s.activity_id == activity_id, s.member_id == member_id).values(**values)
    return (await conn.execute(stmt.returning(*_SIGNUP))).one()


async def update_signup(
    conn: AsyncConnection, activity_id: uuid.UUID, member_id: uuid.UUID, values: dict[str, Any]
) -> Row[Any]:
    s = ActivitySignup
    stmt = update(s).where(s.activity_id == activity_id, s.member_id == member_id).values(**values)
    return (await conn.execute(stmt.returning(*_SIGNUP))).one()


async def first_waiting(conn: AsyncConnection, activity_id: uuid.UUID) -> Row[Any] | None:
    """The waiting volunteer who signed up first (read under the activity's lock)."""
    s = ActivitySignup
    stmt = select(s).where(s.activity_id == activity_id, s.status == "waiting").order_by(s.position).limit(1)
    return (await conn.execute(stmt)).first()


async def signups_of(conn: AsyncConnection, activity_id: uuid.UUID) -> Sequence[Row[Any]]:
    """Every sign-up of an activity, in the order they came."""
    s = ActivitySignup
    return (await conn.execute(select(s).where(s.activity_id == activity_id).order_by(s.position))).all()


async def signed_up_members(conn: AsyncConnection, activity_id: uuid.UUID) -> list[uuid.UUID]:
    s = ActivitySignup
    stmt = select(s.member_id).where(s.activity_id == activity_id, s.status == "signed_up")
    return list((await conn.execute(stmt.order_by(s.position))).scalars())


def _no_show(now: datetime) -> Any:
    """A late withdrawal, or a place kept and never used at an activity that is over."""
    s, a = ActivitySignup, Activity
    return or_(
        and_(s.status == "withdrawn", s.late_withdrawal),
        and_(s.status == "signed_up", s.checked_in_at.is_(None), a.ends_at < now, a.status == "published"),
    )


async def no_show_count(conn: AsyncConnection, member_id: uuid.UUID, now: datetime) -> int:
    s, a = ActivitySignup, Activity
    stmt = (
        select(func.count())
        .select_from(s.__table__.join(a.__table__, a.id == s.activity_id))  # type: ignore[attr-defined]
        .where(s.member_id == member_id, _no_show(now))
    )
    return int((await conn.execute(stmt)).scalar_one())


async def lock_due_reminders(
    conn: AsyncConnection, community_id: uuid.UUID, lo: datetime, hi: datetime
) -> Sequence[Row[Any]]:
    """Signed-up volunteers not yet reminded of a published activity starting in [lo, hi),
    locked (a concurrent run skips them): (activity_id, member_id, title, place, starts_at)."""
    s, a = ActivitySignup, Activity
    stmt = (
        select(s.activity_id, s.member_id, a.title, a.place, a.starts_at)
        .join(a, a.id == s.activity_id)
        .where(
            a.community_id == community_id,
            a.status == "published",
            a.starts_at >= lo,
            a.starts_at < hi,
            s.status == "signed_up",
            s.reminded_at.is_(None),
        )
        .order_by(a.starts_at, s.activity_id, s.position)
        .with_for_update(of=s, skip_locked=True)
    )
    return (await conn.execute(stmt)).all()


async def mark_reminded(
    conn: AsyncConnection, pairs: Sequence[tuple[uuid.UUID, uuid.UUID]], now: datetime
) -> None:
    if not pairs:
        return
    s = ActivitySignup
    await conn.execute(
        update(s).where(tuple_(s.activity_id, s.member_id).in_(list(pairs))).values(reminded_at=now)
    )


async def counts_of(
    conn: AsyncConnection, activity_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, tuple[int, int]]:
    """(signed up, waiting) of each activity (absent: nobody yet)."""
    if not activity_ids:
        return {}
    s = ActivitySignup
    stmt = (
        select(
            s.activity_id,
            func.count().filter(s.status == "signed_up"),
            func.count().filter(s.status == "waiting"),
        )
        .where(s.activity_id.in_(list(activity_ids)))
        .group_by(s.activity_id)
    )
    return {r[0]: (int(r[1]), int(r[2])) for r in (await conn.execute(stmt)).all()}


async def member_signups(conn: AsyncConnection, member_id: uuid.UUID, limit: int) -> Sequence[Row[Any]]:
    """A member's sign-ups with their activities' title and times, latest activity first."""
    s, a = ActivitySignup, Activity
    stmt = (
        select(s, a.title, a.starts_at, a.ends_at, a.status.label("activity_status"))
        .join(a, a.id == s.activity_id)
        .where(s.member_id == member_id)
        .order_by(a.starts_at.desc(), a.id)
        .limit(limit)
    )
    return (await conn.execute(stmt)).all()

"""Activities: publish, change, cancel, list and show; who organises one.

Every function takes the ``Principal`` who acts, so the API and (later) the pages ask
the same questions the same way. An activity's organiser is the recorder of its
organisation, or an admin. Sign-ups are in ``signups.py``, attendance and the records
that follow it in ``attendance.py``, the day-before reminders in ``reminders.py``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.activities import queries
from timebank.activities.queries import ActivityFilter
from timebank.community import queries as parties
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.cursors import after_time_id, time_id_cursor
from timebank.core.policy import current_policy
from timebank.core.problems import Conflict, DomainError, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.notifications.service import notify
from timebank.volunteer.records import decision_reason

STAFF = (Role.ADMIN, Role.AUDITOR, Role.RECORDER)
FIELDS = (
    "title",
    "category",
    "description",
    "place",
    "lat",
    "lon",
    "radius_m",
    "starts_at",
    "ends_at",
    "capacity",
    "signup_opens_at",
    "signup_closes_at",
    "min_star",
)


class ActivityCancelled(DomainError):
    slug, status, title = "activity-cancelled", 409, "The activity was cancelled"


class InvalidActivity(DomainError):
    slug, status, title = "invalid-activity", 422, "The activity breaks a rule"


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def activity_view(row: Any, counts: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    signed_up, waiting = counts
    return {
        "id": str(row.id),
        "organisation_id": None if row.organisation_id is None else str(row.organisation_id),
        "title": row.title,
        "category": row.category,
        "description": row.description,
        "place": row.place,
        "lat": row.lat,
        "lon": row.lon,
        "radius_m": row.radius_m,
        "starts_at": rfc3339(row.starts_at),
        "ends_at": rfc3339(row.ends_at),
        "capacity": row.capacity,
        "signup_opens_at": _stamp(row.signup_opens_at),
        "signup_closes_at": _stamp(row.signup_closes_at),
        "min_star": row.min_star,
        "status": row.status,
        "cancel_reason": row.cancel_reason,
        "created_at": rfc3339(row.created_at),
        "signed_up": signed_up,
        "waiting": waiting,
        "places_left": max(row.capacity - signed_up, 0),
    }


def is_organiser(principal: Principal, activity: Any) -> bool:
    if principal.is_admin:
        return True
    return principal.role is Role.RECORDER and principal.subject_id == activity.organisation_id


def require_organiser(principal: Principal, activity: Any) -> None:
    principal.require_writer()
    if not is_organiser(principal, activity):
        raise Forbidden("only the activity's organisation (its recorder) or an admin may do that")


async def find(
    conn: AsyncConnection, principal: Principal, activity_id: uuid.UUID, *, lock: bool = False
) -> Any:
    """The community's activity (locked, if asked); else a 404."""
    row = await queries.find_activity(conn, principal.community_id, activity_id, lock=lock)
    if row is None:
        raise NotFound(f"activity {activity_id} not found")
    return row


def require_open(activity: Any) -> None:
    if activity.status == "cancelled":
        raise ActivityCancelled(f"activity {activity.id} was cancelled: {activity.cancel_reason}")


@dataclass
class ActivityIn:
    """An activity's fields as given (all of them to publish, some to change)."""

    values: dict[str, Any] = field(default_factory=dict)
    organisation_id: uuid.UUID | None = None


def _check_shape(v: dict[str, Any]) -> None:
    """The rules among the fields of a whole activity (after a change, too)."""
    if v["ends_at"] <= v["starts_at"]:
        raise InvalidActivity("ends_at must be after starts_at")
    if (v["lat"] is None) != (v["lon"] is None):
        raise InvalidActivity("lat and lon come together")
    if v["radius_m"] is not None and v["lat"] is None:
        raise InvalidActivity("a radius needs the place's lat and lon")
    opens, closes = v["signup_opens_at"], v["signup_closes_at"]
    if opens is not None and closes is not None and closes <= opens:
        raise InvalidActivity("signup_closes_at must be after signup_opens_at")
    if closes is not None and closes > v["ends_at"]:
        raise InvalidActivity("sign-up must close before the activity ends")
    for name in ("title", "place"):
        if not (v[name] or "").strip():
            raise InvalidActivity(f"{name} is required")


async def _category(conn: AsyncConnection, community_id: uuid.UUID, given: str) -> str:
    _, policy, _ = await current_policy(conn, community_id)
    code = policy.category_code(given.strip())
    if code is None:
        raise InvalidActivity(
            f"category {given!r} is not one of the community's categories "
            f"({', '.join(c.code for c in policy.categories)})"
        )
    return code


async def _organisation(conn: AsyncConnection, principal: Principal, given: uuid.UUID | None) -> uuid.UUID:
    """A recorder's activity is its organisation's; an admin names one of the community's.

    A service record needs an organisation (the database requires it), so an activity,
    whose attendance becomes records, has one too.
    """
    if principal.role is Role.RECORDER:
        if given not in (None, principal.subject_id):
            raise Forbidden("a recorder publishes activities of its own organisation only")
        return principal.subject_id  # type: ignore[return-value]
    if given is None:
        raise InvalidActivity("organisation_id is required: the organisation its records are credited by")
    known = await parties.parties_of_kind(conn, principal.community_id, PartyKind.ORGANISATION, {given})
    if not known:
        raise InvalidActivity(f"organisation {given} is not an organisation of this community")
    return given


async def create(conn: AsyncConnection, principal: Principal, given: ActivityIn) -> dict[str, Any]:
    principal.require_writer()
    if principal.role not in (Role.ADMIN, Role.RECORDER):
        raise Forbidden("only admins and recorders publish activities")
    v = {name: given.values.get(name) for name in FIELDS}
    _check_shape(v)
    v["category"] = await _category(conn, principal.community_id, v["category"])
    org = await _organisation(conn, principal, given.organisation_id)
    row = await queries.insert_activity(
        conn,
        {**v, "community_id": principal.community_id, "organisation_id": org, "created_by": principal.key_id},
    )
    return activity_view(row)


async def change(
    conn: AsyncConnection,
    principal: Principal,
    activity_id: uuid.UUID,
    changes: dict[str, Any],
    now: datetime,
) -> dict[str, Any]:
    """Change some fields; a larger capacity moves the waiting list up (notified)."""
    activity = await find(conn, principal, activity_id, lock=True)
    require_organiser(principal, activity)
    require_open(activity)
    v = {name: getattr(activity, name) for name in FIELDS} | changes
    _check_shape(v)
    if "category" in changes:
        v["category"] = await _category(conn, principal.community_id, v["category"])
    signed_up, _ = (await queries.counts_of(conn, [activity_id])).get(activity_id, (0, 0))
    if v["capacity"] < signed_up:
        raise Conflict(f"{signed_up} volunteers are signed up: the capacity cannot be less")
    row = await queries.update_activity(conn, activity_id, {k: v[k] for k in changes})
    await fill_places(conn, row, now)
    return await show(conn, principal, activity_id)


async def cancel(
    conn: AsyncConnection, principal: Principal, activity_id: uuid.UUID, reason: str, now: datetime
) -> dict[str, Any]:
    """Cancel with a reason; everyone signed up or waiting is told."""
    reason = decision_reason(reason, "a cancellation")
    activity = await find(conn, principal, activity_id, lock=True)
    require_organiser(principal, activity)
    require_open(activity)
    row = await queries.update_activity(conn, activity_id, {"status": "cancelled", "cancel_reason": reason})
    told = [s.member_id for s in await queries.signups_of(conn, activity_id) if s.status != "withdrawn"]
    await notify(
        conn, principal.community_id, "activity_cancelled", told, notice_payload(row, reason=reason), now
    )
    return await show(conn, principal, activity_id)


async def fill_places(conn: AsyncConnection, activity: Any, now: datetime) -> list[uuid.UUID]:
    """Move the waiting list up, first come first served, while places are free (under
    the activity's lock); the promoted are told. Who was promoted."""
    signed_up, _ = (await queries.counts_of(conn, [activity.id])).get(activity.id, (0, 0))
    promoted: list[uuid.UUID] = []
    while signed_up < activity.capacity:
        first = await queries.first_waiting(conn, activity.id)
        if first is None:
            break
        await queries.update_signup(conn, activity.id, first.member_id, {"status": "signed_up"})
        promoted.append(first.member_id)
        signed_up += 1
    payload = notice_payload(activity)
    await notify(conn, activity.community_id, "activity_promoted", promoted, payload, now)
    return promoted


def notice_payload(activity: Any, **extra: Any) -> dict[str, Any]:
    """What a notice about an activity says of it."""
    return {
        "activity_id": str(activity.id),
        "title": activity.title,
        "place": activity.place,
        "starts_at": rfc3339(activity.starts_at),
        **extra,
    }


async def show(conn: AsyncConnection, principal: Principal, activity_id: uuid.UUID) -> dict[str, Any]:
    """An activity with its places; a resident also sees their own sign-up."""
    activity = await find(conn, principal, activity_id)
    counts = (await queries.counts_of(conn, [activity_id])).get(activity_id, (0, 0))
    view = activity_view(activity, counts)
    if principal.role is Role.RESIDENT and principal.subject_id is not None:
        mine = await queries.find_signup(conn, activity_id, principal.subject_id)
        view["my_signup"] = None if mine is None else mine.status
    return view


async def listing(
    conn: AsyncConnection,
    principal: Principal,
    f: ActivityFilter,
    cursor: str | None,
    limit: int,
    now: datetime,
) -> tuple[list[dict[str, Any]], str | None]:
    """A page of activities, soonest first: residents see the community's published ones
    that have not ended (from ``since`` or now); a recorder its organisation's; admins
    and auditors all. ``f.category`` may be a code or a name."""
    f.community_id = principal.community_id
    f.after = after_time_id(cursor)
    if f.category is not None:
        _, policy, _ = await current_policy(conn, principal.community_id)
        f.category = policy.category_code(f.category.strip()) or f.category
    if principal.role is Role.RECORDER:
        f.organisation_id = principal.subject_id
    elif principal.role not in (Role.ADMIN, Role.AUDITOR):
        f.published_only = True
        f.since = now if f.since is None or f.since < now else f.since  # upcoming only
    rows = await queries.activities_page(conn, f, limit + 1)
    page = rows[:limit]
    counts = await queries.counts_of(conn, [r.id for r in page])
    items = [activity_view(r, counts.get(r.id, (0, 0))) for r in page]
    nxt = time_id_cursor(page[-1].starts_at, page[-1].id) if len(rows) > limit else None
    return items, nxt

"""Signing up for an activity and withdrawing: capacity holds under any concurrency.

Every sign-up and withdrawal of an activity locks the activity's row first (FOR
UPDATE), then counts and writes in the same transaction: concurrent sign-ups queue
on the lock, so the count each one reads is the truth, and the places never overflow.
A full activity puts the volunteer on its waiting list (``position``: the order they
came); a withdrawal moves the first waiting one up, in the same transaction.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.activities import queries
from timebank.activities.service import fill_places, find, is_organiser, require_open
from timebank.community.service import member_exists
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.policy import current_policy
from timebank.core.problems import Conflict, DomainError, Forbidden, NotFound
from timebank.core.roles import Role
from timebank.volunteer.standing import standing


class SignupClosed(DomainError):
    slug, status, title = "signup-closed", 409, "Sign-up for this activity is not open"


class StarLevelTooLow(DomainError):
    slug, status, title = "star-level-too-low", 403, "The activity asks for a higher star level"


def _stamp(value: datetime | None) -> str | None:
    return None if value is None else rfc3339(value)


def signup_view(row: Any) -> dict[str, Any]:
    return {
        "activity_id": str(row.activity_id),
        "member_id": str(row.member_id),
        "status": row.status,
        "position": row.position,
        "signed_up_at": rfc3339(row.signed_up_at),
        "withdrawn_at": _stamp(row.withdrawn_at),
        "late_withdrawal": row.late_withdrawal,
        "checked_in_at": _stamp(row.checked_in_at),
        "check_in_manual": row.check_in_manual,
        "checked_out_at": _stamp(row.checked_out_at),
        "check_out_manual": row.check_out_manual,
        "record_id": None if row.record_id is None else str(row.record_id),
    }


def _volunteer(principal: Principal, activity: Any, member_id: uuid.UUID | None) -> uuid.UUID:
    """Whom a sign-up (or withdrawal) is for: a resident acts for themself; the activity's
    organiser (or an admin) for a resident they name."""
    principal.require_writer()
    if principal.role is Role.RESIDENT:
        if member_id not in (None, principal.subject_id):
            raise Forbidden("a resident signs up (and withdraws) themself only")
        return principal.subject_id  # type: ignore[return-value]
    if not is_organiser(principal, activity):
        raise Forbidden("only the volunteer, the activity's organisation or an admin may do that")
    if member_id is None:
        raise Forbidden("name the volunteer: member_id")
    return member_id


def _window_open(activity: Any, now: datetime) -> None:
    closes = activity.signup_closes_at or activity.starts_at
    if activity.signup_opens_at is not None and now < activity.signup_opens_at:
        raise SignupClosed(f"sign-up opens at {rfc3339(activity.signup_opens_at)}")
    if now >= closes:
        raise SignupClosed(f"sign-up closed at {rfc3339(closes)}")


async def _star_level_ok(conn: AsyncConnection, activity: Any, member_id: uuid.UUID) -> None:
    if not activity.min_star:
        return
    level = (await standing(conn, activity.community_id, member_id))["star_level"]
    if level < activity.min_star:
        raise StarLevelTooLow(f"the activity asks for {activity.min_star} stars; the volunteer has {level}")


async def sign_up(
    conn: AsyncConnection,
    principal: Principal,
    activity_id: uuid.UUID,
    member_id: uuid.UUID | None,
    now: datetime,
) -> tuple[dict[str, Any], bool]:
    """Sign a volunteer up, or put them on the waiting list: (their sign-up, whether new).

    Signing up again answers the sign-up that exists (nothing changes).
    """
    activity = await find(conn, principal, activity_id, lock=True)  # sign-ups of it queue here
    member = _volunteer(principal, activity, member_id)
    await member_exists(conn, principal, member)
    existing = await queries.find_signup(conn, activity_id, member)
    if existing is not None and existing.status != "withdrawn":
        return signup_view(existing), False
    require_open(activity)
    _window_open(activity, now)
    await _star_level_ok(conn, activity, member)
    taken, top = await queries.places_taken(conn, activity_id)
    row = await queries.upsert_signup(
        conn,
        activity_id,
        member,
        {
            "community_id": principal.community_id,
            "status": "signed_up" if taken < activity.capacity else "waiting",
            "position": top + 1,  # a withdrawn volunteer who comes back queues again
            "signed_up_at": now,
            "withdrawn_at": None,
            "late_withdrawal": False,
        },
    )
    return signup_view(row), True


async def withdraw(
    conn: AsyncConnection, principal: Principal, activity_id: uuid.UUID, member_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """Withdraw a sign-up; the first waiting volunteer takes the place (and is told).

    A volunteer with a place who withdraws later than the policy's deadline before the
    start (``withdraw_deadline_hours``) counts as a no-show; leaving the waiting list never does.
    """
    activity = await find(conn, principal, activity_id, lock=True)
    member = _volunteer(principal, activity, member_id)
    row = await queries.find_signup(conn, activity_id, member)
    if row is None or row.status == "withdrawn":
        raise NotFound(f"member {member} is not signed up for activity {activity_id}")
    if row.checked_in_at is not None:
        raise Conflict("the volunteer has checked in: check them out instead")
    _, policy, _ = await current_policy(conn, principal.community_id)
    late = row.status == "signed_up" and now > activity.starts_at - timedelta(
        hours=policy.withdraw_deadline_hours
    )
    row = await queries.update_signup(
        conn, activity_id, member, {"status": "withdrawn", "withdrawn_at": now, "late_withdrawal": late}
    )
    promoted = await fill_places(conn, activity, now) if activity.status == "published" else []
    return {**signup_view(row), "promoted": [str(m) for m in promoted]}

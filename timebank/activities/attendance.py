"""Check-in and check-out (by the QR's token, its code, or by hand), and the service
record that follows a check-out; the attendance of an activity and members' no-shows.

A volunteer's sign-up row is their attendance: it is locked (FOR UPDATE) for every
check-in and check-out, so a double scan, a retry or two phones at once queue there
and the second one finds the first one's work. The record is made at check-out, in the
same transaction, through ``recording.record_many`` (the same rules, the same approval
for a trusted organisation), with ``external_ref`` ``activity:{activity}:{member}``,
unique per organisation in the database: even a path that skipped the lock could not
credit one attendance twice.
"""

from __future__ import annotations

import csv
import io
import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.activities import queries, tokens
from timebank.activities.service import find, require_open, require_organiser
from timebank.activities.signups import signup_view
from timebank.community import queries as parties
from timebank.community.service import member_exists
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, DomainError, Forbidden
from timebank.core.roles import Role
from timebank.volunteer import recording
from timebank.volunteer.records import RecordIn

CHECK_MARGIN = timedelta(hours=1)  # scans are taken from an hour before the start to an hour after the end
DOUBLE_SCAN = timedelta(minutes=2)  # a second scan this soon after check-in is the same arrival
EARTH_RADIUS_M = 6_371_008.8


class OutsideTime(DomainError):
    slug, status, title = (
        "check-in-outside-time",
        422,
        "Check-in is open from an hour before to an hour after",
    )


class OutsideRadius(DomainError):
    slug, status, title = "check-in-outside-radius", 422, "The phone is too far from the activity's place"


class NotSignedUp(DomainError):
    slug, status, title = "not-signed-up", 422, "The volunteer has no place at this activity"


class RecordRefused(DomainError):
    slug, status, title = (
        "attendance-record-refused",
        422,
        "The service record of this attendance breaks a rule",
    )


def distance_m(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """The great-circle distance (haversine), in metres."""
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    h = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * EARTH_RADIUS_M * math.asin(math.sqrt(h))


def scan_url(public_url: str, activity_id: uuid.UUID, token: str) -> str:
    """The URL the QR holds: any phone camera opens it (the page that takes it is the web's)."""
    return f"{public_url.rstrip('/')}/a/{activity_id}/scan?t={token}"


async def check_in_code(
    conn: AsyncConnection,
    principal: Principal,
    activity_id: uuid.UUID,
    key: bytes,
    public_url: str,
    now: datetime,
) -> dict[str, Any]:
    """What the organiser shows now: the QR's URL, the 6-digit code, when they expire."""
    activity = await find(conn, principal, activity_id)
    require_organiser(principal, activity)
    require_open(activity)
    window = tokens.window_of(now)
    return {
        "url": scan_url(public_url, activity_id, tokens.make_token(key, activity_id, window)),
        "code": tokens.make_code(key, activity_id, window),
        "expires_at": rfc3339(tokens.window_ends(window)),
        "refresh_seconds": tokens.WINDOW_SECONDS,
    }


@dataclass
class Scan:
    """What a volunteer's phone sends: the QR's token or the typed code, maybe where it is."""

    token: str | None = None
    code: str | None = None
    lat: float | None = None
    lon: float | None = None


def _in_time(activity: Any, at: datetime) -> None:
    if not activity.starts_at - CHECK_MARGIN <= at <= activity.ends_at + CHECK_MARGIN:
        raise OutsideTime(
            f"check-in and check-out are from {rfc3339(activity.starts_at - CHECK_MARGIN)} "
            f"to {rfc3339(activity.ends_at + CHECK_MARGIN)}"
        )


def _in_radius(activity: Any, scan: Scan) -> None:
    if activity.radius_m is None or scan.lat is None or scan.lon is None:
        return  # no place to be near, or the phone keeps its location to itself
    away = distance_m(activity.lat, activity.lon, scan.lat, scan.lon)
    if away > activity.radius_m:
        raise OutsideRadius(f"the phone is {away:.0f} m from the place; at most {activity.radius_m} m")


def _proof(key: bytes, activity_id: uuid.UUID, scan: Scan, now: datetime) -> None:
    if scan.token:
        tokens.check_token(key, activity_id, scan.token, now)
    elif scan.code:
        tokens.check_code(key, activity_id, scan.code, now)
    else:
        raise BadRequest("send the QR's token or the 6-digit code")


async def _locked_place(conn: AsyncConnection, activity_id: uuid.UUID, member_id: uuid.UUID) -> Any:
    row = await queries.find_signup(conn, activity_id, member_id, lock=True)
    if row is None or row.status != "signed_up":
        state = (
            "is waiting for a place" if row is not None and row.status == "waiting" else "is not signed up"
        )
        raise NotSignedUp(f"member {member_id} {state} at activity {activity_id}")
    return row


async def scan(
    conn: AsyncConnection,
    principal: Principal,
    activity_id: uuid.UUID,
    given: Scan,
    key: bytes,
    now: datetime,
) -> dict[str, Any]:
    """A signed-up volunteer's scan: the first checks in, the next checks out (and makes the
    record); a second scan within two minutes of check-in is the same arrival."""
    if principal.role is not Role.RESIDENT or principal.subject_id is None:
        raise Forbidden("a volunteer scans with their own sign-in")
    activity = await find(conn, principal, activity_id)
    require_open(activity)
    _proof(key, activity_id, given, now)
    _in_time(activity, now)
    _in_radius(activity, given)
    row = await _locked_place(conn, activity_id, principal.subject_id)
    if row.checked_in_at is None:
        row = await queries.update_signup(conn, activity_id, row.member_id, {"checked_in_at": now})
        return _answer("checked_in", row)
    if row.checked_out_at is not None:
        return _answer("already_checked_out", row)
    if now - row.checked_in_at < DOUBLE_SCAN:
        return _answer("already_checked_in", row)
    return _answer("checked_out", await _check_out(conn, principal, activity, row, now, now, manual=False))


def _answer(result: str, row: Any) -> dict[str, Any]:
    return {"result": result, "attendance": signup_view(row)}


def _recorder(principal: Principal, activity: Any) -> Principal:
    """Who records an attendance's service: the activity's organisation, whoever's scan or
    hand closed it (``recorded_by`` keeps the key that did)."""
    return Principal(principal.key_id, principal.community_id, Role.RECORDER, activity.organisation_id)


async def _check_out(
    conn: AsyncConnection,
    principal: Principal,
    activity: Any,
    row: Any,
    at: datetime,
    now: datetime,
    *,
    manual: bool,
) -> Any:
    """Check out (the row is locked) and record the time present, clipped to the activity.

    If the record breaks a rule (overlap, daily cap) nothing is written: the volunteer
    stays checked in, and the organiser may confirm another end time.
    """
    start, end = max(row.checked_in_at, activity.starts_at), min(at, activity.ends_at)
    values: dict[str, Any] = {"checked_out_at": at, "check_out_manual": manual}
    if end > start:  # present while the activity ran: that time is service
        item = RecordIn(
            activity=activity.title,
            category=activity.category,
            place=activity.place,
            started_at=start,
            ended_at=end,
            member_id=row.member_id,
            organisation_id=activity.organisation_id,
            external_ref=f"activity:{activity.id}:{row.member_id}",
            source="activity",
        )
        out = await recording.record_many(conn, _recorder(principal, activity), [item], now=now)
        if out.rejected:
            raise RecordRefused(out.rejected[0]["reason"])
        values["record_id"] = uuid.UUID(out.accepted[0]["id"])
    return await queries.update_signup(conn, activity.id, row.member_id, values)


async def check_by_hand(
    conn: AsyncConnection,
    principal: Principal,
    activity_id: uuid.UUID,
    member_id: uuid.UUID,
    step: str,
    at: datetime | None,
    now: datetime,
) -> dict[str, Any]:
    """The organiser checks a volunteer in or out (no phone, or an end time confirmed
    after the activity); marked manual. Doing it again answers what was done."""
    activity = await find(conn, principal, activity_id)
    require_organiser(principal, activity)
    require_open(activity)
    await member_exists(conn, principal, member_id)
    at = at or now
    if at > now:
        raise BadRequest("the time cannot be in the future")
    _in_time(activity, at)
    row = await _locked_place(conn, activity_id, member_id)
    if step == "check-in":
        if row.checked_in_at is not None:
            return _answer("already_checked_in", row)
        row = await queries.update_signup(
            conn, activity_id, member_id, {"checked_in_at": at, "check_in_manual": True}
        )
        return _answer("checked_in", row)
    if row.checked_in_at is None:
        raise NotSignedUp(f"member {member_id} has not checked in: check them in first")
    if row.checked_out_at is not None:
        return _answer("already_checked_out", row)
    if at <= row.checked_in_at:
        raise BadRequest(f"the end time must be after the check-in at {rfc3339(row.checked_in_at)}")
    return _answer("checked_out", await _check_out(conn, principal, activity, row, at, now, manual=True))


def _state(row: Any, activity: Any, now: datetime) -> str:
    """One word for where a volunteer stands: waiting, withdrawn, no_show, signed_up,
    present (in, not out), needs_end_time (in, not out, and the activity is over), attended."""
    if row.status != "signed_up":
        return "no_show" if row.late_withdrawal else row.status
    if row.checked_in_at is None:
        return "no_show" if activity.ends_at < now and activity.status == "published" else "signed_up"
    if row.checked_out_at is None:
        return "needs_end_time" if activity.ends_at < now else "present"
    return "attended"


async def attendance(
    conn: AsyncConnection, principal: Principal, activity_id: uuid.UUID, now: datetime
) -> dict[str, Any]:
    """The organiser's (and auditors') view: every sign-up with its state and times, and
    the counts; those checked in but not out after the end wait for an end time."""
    activity = await find(conn, principal, activity_id)
    if principal.role is not Role.AUDITOR:
        require_organiser(principal, activity)
    rows = await queries.signups_of(conn, activity_id)
    names = await parties.names_in_community(conn, principal.community_id, {r.member_id for r in rows})
    items = [
        {**signup_view(r), "display_name": names.get(r.member_id, ""), "state": _state(r, activity, now)}
        for r in rows
    ]
    counts: dict[str, int] = {}
    for item in items:
        counts[item["state"]] = counts.get(item["state"], 0) + 1
    return {
        "activity_id": str(activity_id),
        "ended": activity.ends_at < now,
        "counts": counts,
        "items": items,
    }


CSV_COLUMNS = (
    ("member_id", "成员编号"),
    ("display_name", "姓名"),
    ("state", "状态"),
    ("position", "顺序"),
    ("signed_up_at", "报名时间"),
    ("checked_in_at", "签到时间"),
    ("check_in_manual", "手动签到"),
    ("checked_out_at", "签退时间"),
    ("check_out_manual", "手动签退"),
    ("record_id", "服务记录"),
)


def attendance_csv(view: dict[str, Any]) -> bytes:
    """The attendance as CSV: UTF-8 with a BOM (so a spreadsheet reads the Chinese), a
    header row of both names."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow([f"{zh} {en}" for en, zh in CSV_COLUMNS])
    for item in view["items"]:
        writer.writerow(["" if item[en] is None else item[en] for en, _ in CSV_COLUMNS])
    return ("\ufeff" + out.getvalue()).encode()


async def member_activities(
    conn: AsyncConnection, principal: Principal, member_id: uuid.UUID, now: datetime, limit: int = 100
) -> dict[str, Any]:
    """A member's sign-ups (latest activity first) and no-show count: staff see anyone's,
    a resident their own."""
    await member_exists(conn, principal, member_id)
    if principal.role is Role.MERCHANT:
        raise Forbidden("merchant keys do not read activities")
    rows = await queries.member_signups(conn, member_id, limit)
    items = [
        {**signup_view(r), "title": r.title, "starts_at": rfc3339(r.starts_at), "ends_at": rfc3339(r.ends_at)}
        for r in rows
    ]
    return {
        "member_id": str(member_id),
        "no_shows": await queries.no_show_count(conn, member_id, now),
        "items": items,
    }

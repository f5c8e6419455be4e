"""The staff's queues, read: records waiting for a decision (filtered, sorted, each with
what it would earn and why it may deserve a second look), corrections waiting for a
second admin, and one record's history of decisions.

Reads only: the decisions themselves are ``approval.py``'s and ``corrections.py``'s,
which the console calls exactly as the API does.

"Flagged" (the service keeps no flag on a record; the recording checks refuse what
breaks a rule, so a waiting record broke none): a waiting record is flagged when it is

* long: at least half the policy's daily cap (6 h under the default 12 h cap);
* at night: any part of it between 22:00 and 06:00 in the community's time zone;
* late: recorded more than 30 days after the service ended.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as parties
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.cursors import after_time_id, time_id_cursor
from timebank.core.policy import Policy, current_policy
from timebank.core.problems import BadRequest, Forbidden
from timebank.core.roles import Role
from timebank.volunteer import queries, reading
from timebank.volunteer.queries import Signals, WaitingFilter
from timebank.volunteer.records import is_back_filled, record_view, reversal_view

SORTS = ("oldest", "newest", "longest")
FLAGS = ("long", "night", "late")
LONG_SHARE = 2  # a record of at least 1/LONG_SHARE of the daily cap is long
NIGHT_FROM, NIGHT_UNTIL = time(22), time(6)
LATE_DAYS = 30
MAX_DECISION = 100  # records one form decides at once


def _staff(principal: Principal) -> None:
    if principal.role not in (Role.ADMIN, Role.AUDITOR):
        raise Forbidden("only staff and the supervisory board read the queues")


async def _signals(conn: AsyncConnection, community_id: uuid.UUID, policy: Policy) -> Signals:
    zone = await community_zone(conn, community_id)
    return Signals(
        zone=zone.key,
        long_minutes=max(1, policy.daily_cap_minutes // LONG_SHARE),
        late_after=timedelta(days=LATE_DAYS),
        night_from=NIGHT_FROM,
        night_until=NIGHT_UNTIL,
    )


def _cursor(sort: str, row: Any) -> str:
    head = f"{row.minutes}_" if sort == "longest" else ""
    return f"{head}{rfc3339(row.started_at)}_{row.id}"


def _after(sort: str, cursor: str | None) -> tuple[Any, ...] | None:
    """Where the previous page stopped: its ``next_cursor`` (the sort key of its last record)."""
    if not cursor:
        return None
    try:
        parts = cursor.split("_")
        if sort == "longest":
            minutes, stamp, ident = parts
            return int(minutes), datetime.fromisoformat(stamp), uuid.UUID(ident)
        stamp, ident = parts
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except ValueError:
        raise BadRequest("cursor is the next_cursor of a previous page") from None


async def _items(
    conn: AsyncConnection, community_id: uuid.UUID, rows: list[Any], policy: Policy
) -> list[dict[str, Any]]:
    """Records as the queue shows them: the API's view, the names of the volunteer and the
    organisation, the signals that flag it, and what approving it would credit now
    (the policy's points at the volunteer's star level, as ``approval.approve`` computes)."""
    lifetime = await queries.lifetime_minutes_of(conn, {r.member_id for r in rows})
    names = await parties.names_in_community(
        conn, community_id, {r.member_id for r in rows} | {r.organisation_id for r in rows}
    )
    items = []
    for r in rows:
        star = policy.star_level(lifetime.get(r.member_id, 0))
        items.append(
            {
                **record_view(r),
                "member_name": names.get(r.member_id, ""),
                "organisation_name": names.get(r.organisation_id, ""),
                "flags": [f for f in FLAGS if getattr(r, f)],
                "star_level": star,
                "points_if_approved": policy.record_points(r.minutes, star, is_back_filled(r.source)),
            }
        )
    return items


async def waiting_page(
    conn: AsyncConnection, principal: Principal, f: WaitingFilter, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None, int]:
    """A page of the submitted records matching ``f``: (items, next cursor, how many match)."""
    _staff(principal)
    if f.sort not in SORTS:
        raise BadRequest("sort is oldest, newest or longest")
    _, policy, _ = await current_policy(conn, principal.community_id)
    sig = await _signals(conn, principal.community_id, policy)
    f.after = _after(f.sort, cursor)
    rows = await queries.waiting_records(conn, principal.community_id, f, sig, limit + 1)
    items = await _items(conn, principal.community_id, rows[:limit], policy)
    nxt = _cursor(f.sort, rows[limit - 1]) if len(rows) > limit else None
    f.after = None
    return items, nxt, await queries.count_waiting(conn, principal.community_id, f, sig)


async def records_for_decision(
    conn: AsyncConnection, principal: Principal, ids: list[uuid.UUID]
) -> list[dict[str, Any]]:
    """The records a form names, in its order, as the queue shows them (whatever their
    status now); the community's only (others are left out, as not found)."""
    _staff(principal)
    if len(ids) > MAX_DECISION:
        raise BadRequest(f"at most {MAX_DECISION} records at once")
    _, policy, _ = await current_policy(conn, principal.community_id)
    sig = await _signals(conn, principal.community_id, policy)
    rows = {r.id: r for r in await queries.records_with_signals(conn, principal.community_id, ids, sig)}
    return await _items(conn, principal.community_id, [rows[i] for i in ids if i in rows], policy)


async def record_history(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    """One record for the staff: the queue's view of it, who recorded and decided it, its
    corrections (the open one, if any) and its history of decisions, oldest first.

    ``by`` is the id of the person (or API key) who acted.
    """
    _staff(principal)
    rec = await reading.get_record(conn, principal, record_id)
    _, policy, _ = await current_policy(conn, principal.community_id)
    sig = await _signals(conn, principal.community_id, policy)
    (row,) = await queries.records_with_signals(conn, principal.community_id, [rec.id], sig)
    (item,) = await _items(conn, principal.community_id, [row], policy)
    item.update(
        recorded_by=rec.recorded_by,
        decided_by=rec.decided_by,
        policy_version=rec.policy_version,
        flags=item["flags"] if rec.status == "submitted" else [],
    )
    reversals = await queries.reversals_of_record(conn, rec.id)
    history: list[dict[str, Any]] = [{"what": "recorded", "at": rec.recorded_at, "by": rec.recorded_by}]
    if rec.decided_at is not None:
        history.append(
            {
                "what": "rejected" if rec.status == "rejected" else "approved",
                "at": rec.decided_at,
                "by": rec.decided_by,
                "reason": rec.reject_reason,
                "points": rec.points,
                "transaction_id": None if rec.transaction_id is None else str(rec.transaction_id),
            }
        )
    for rv in reversals:
        history.append(
            {
                "what": "correction_requested",
                "at": rv.requested_at,
                "by": rv.requested_by,
                "reason": rv.reason,
            }
        )
        if rv.decided_at is not None:
            history.append(
                {
                    "what": "correction_approved" if rv.status == "approved" else "correction_refused",
                    "at": rv.decided_at,
                    "by": rv.decided_by,
                    "transaction_id": None if rv.transaction_id is None else str(rv.transaction_id),
                }
            )
    blank = {"by": None, "reason": None, "points": None, "transaction_id": None}
    history = sorted(({**blank, **e} for e in history), key=lambda e: e["at"])
    waiting = next((r for r in reversals if r.status == "requested"), None)
    return {
        "record": item,
        "reversals": [reversal_view(r) for r in reversals],
        "open_reversal": None if waiting is None else reversal_view(waiting),
        "history": history,
    }


async def corrections_waiting(
    conn: AsyncConnection, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """Corrections waiting for a second admin, oldest request first: each its record as the
    queue shows it, with ``correction`` (the API's view of it)."""
    _staff(principal)
    rows = await queries.open_reversals(conn, principal.community_id, after_time_id(cursor), limit + 1)
    page = rows[:limit]
    names = await parties.names_in_community(
        conn, principal.community_id, {r.member_id for r in page} | {r.organisation_id for r in page}
    )
    items = []
    for r in page:
        m = r._mapping
        correction = {k.removeprefix("reversal_"): v for k, v in m.items() if k.startswith("reversal_")}
        items.append(
            {
                **record_view(r),
                "member_name": names.get(r.member_id, ""),
                "organisation_name": names.get(r.organisation_id, ""),
                "correction": reversal_view(SimpleNamespace(**correction)),
            }
        )
    last = rows[limit - 1] if len(rows) > limit else None
    nxt = None if last is None else time_id_cursor(last.reversal_requested_at, last.reversal_id)
    return items, nxt

"""The reports: service, points and merchants of a period ``[from, to)`` of local dates.

For the community's admins and auditors. Each report reads one REPEATABLE READ snapshot
(the caller's connection, see ``snapshot.py``), so its figures agree with each other
and with the entries at ``generated_at``.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.policy import current_policy
from timebank.core.problems import BadRequest, Forbidden
from timebank.core.roles import Role
from timebank.reports import queries

MAX_PERIOD_DAYS = 3660  # ten years: any period a report is asked for
EXPIRING_WINDOWS = (30, 90)


def _may_read(principal: Principal) -> uuid.UUID:
    """The community whose reports the principal may read (its admins and auditors)."""
    if principal.role not in (Role.ADMIN, Role.AUDITOR):
        raise Forbidden("reports are for the community's admins and auditors")
    return principal.community_id


async def _period(
    conn: AsyncConnection, community_id: uuid.UUID, first: date, end: date
) -> tuple[ZoneInfo, datetime, datetime, dict[str, Any]]:
    """Check the period; the zone, the period's instants and its header."""
    if end <= first or (end - first).days > MAX_PERIOD_DAYS:
        raise BadRequest(f"to is after from (to is not included), at most {MAX_PERIOD_DAYS} days")
    tz = await community_zone(conn, community_id)
    start = datetime.combine(first, time(0), tz)
    stop = datetime.combine(end, time(0), tz)
    now = await queries.database_now(conn)
    header = {
        "from": first.isoformat(),
        "to": end.isoformat(),
        "timezone": tz.key,
        "generated_at": rfc3339(now),
    }
    return tz, start, stop, header


def _by_name(names: dict[str, str]) -> Any:
    return lambda item: (names[item[0]], item[0])


def _group(key: str, name: str | None, sums: dict[str, int]) -> dict[str, Any]:
    return {
        "key": key,
        "name": name,
        "credited_minutes": sums["credited"],
        "reversed_minutes": sums["reversed"],
        "net_minutes": sums["credited"] - sums["reversed"],
        "records": sums["records"],
    }


async def service_report(
    conn: AsyncConnection, principal: Principal, first: date, end: date
) -> dict[str, Any]:
    """The service report for the principal's community (admins and auditors)."""
    return await service_figures(conn, _may_read(principal), first, end)


async def service_figures(
    conn: AsyncConnection, community_id: uuid.UUID, first: date, end: date
) -> dict[str, Any]:
    """Minutes credited by approved service (less reversals) by organisation, category and
    month; active and new volunteers; the star levels of the volunteers now."""
    tz, start, stop, header = await _period(conn, community_id, first, end)
    _, policy, _ = await current_policy(conn, community_id)
    names = {c.code: c.name for c in policy.categories}
    zero = {"credited": 0, "reversed": 0, "records": 0}
    by_org: dict[str, dict[str, int]] = defaultdict(lambda: dict(zero))
    org_names: dict[str, str] = {}
    by_category: dict[str, dict[str, int]] = defaultdict(lambda: dict(zero))
    by_month: dict[str, dict[str, int]] = defaultdict(lambda: dict(zero))
    total = dict(zero)
    for r in await queries.service_groups(conn, community_id, start, stop, tz.key):
        org_names[str(r.organisation_id)] = r.organisation
        for sums in (by_org[str(r.organisation_id)], by_category[r.category], by_month[r.month], total):
            sums["credited"] += int(r.credited)
            sums["reversed"] += int(r.reversed)
            sums["records"] += int(r.records)
    volunteers = await queries.volunteers(conn, community_id, start, stop)
    active = sum(1 for v in volunteers if v.active)
    new = sum(1 for v in volunteers if start <= v.first_credit < stop)
    levels = [0] * 6
    for v in volunteers:
        levels[policy.star_level(int(v.now))] += 1
    crossings = await _crossings(conn, policy, volunteers)
    return {
        **header,
        "totals": {
            "credited_minutes": total["credited"],
            "reversed_minutes": total["reversed"],
            "net_minutes": total["credited"] - total["reversed"],
            "records": total["records"],
            "active_volunteers": int(active),
            "new_volunteers": int(new),
        },
        "by_organisation": [
            _group(k, org_names[k], v) for k, v in sorted(by_org.items(), key=_by_name(org_names))
        ],
        "by_category": [_group(k, names.get(k), v) for k, v in sorted(by_category.items())],
        "by_month": [_group(k, None, v) for k, v in sorted(by_month.items())],
        "star_levels": [{"level": n, "volunteers": count} for n, count in enumerate(levels)],
        "star_crossings": crossings,
    }


async def _crossings(conn: AsyncConnection, policy: Any, volunteers: list[Any]) -> list[dict[str, Any]]:
    """The volunteers whose star level at the period's end is above their level at its
    start (by their approved service less reversals, the policy's thresholds now)."""
    rises = [
        (v.member_id, policy.star_level(int(v.before)), policy.star_level(int(v.at_end))) for v in volunteers
    ]
    rises = [r for r in rises if r[2] > r[1]]
    names = await queries.member_names(conn, [r[0] for r in rises]) if rises else {}
    return sorted(
        (
            {"member_id": str(m), "name": names.get(m), "from_level": low, "to_level": high}
            for m, low, high in rises
        ),
        key=lambda c: (-c["to_level"], c["name"] or "", c["member_id"]),
    )


# The points report's flows, in the order its table lists them.
POINT_FLOWS = (
    "issued",
    "service_reversed",
    "redeemed",
    "expired",
    "donated",
    "adjusted",
    "crossed_in",
    "crossed_out",
)


def _flows(rows: list[Any]) -> dict[str, int]:
    """The period's points by what they are, from the posted POINT entries' classes."""
    out = dict.fromkeys((*POINT_FLOWS, "members_net_change"), 0)
    for r in rows:
        points = int(r.points)
        signed = points if r.direction == "credit" else -points
        member = r.holder == "member"
        if member:
            out["members_net_change"] += signed
        if r.kind == "service_credit" and member:
            out["issued"] += signed
        elif r.kind == "reversal" and r.reverses_kind == "service_credit" and member:
            out["service_reversed"] -= signed
        elif r.kind == "redemption" and r.holder == "merchant":
            out["redeemed"] += signed
        elif r.kind == "expiry" and r.holder == "expired":
            out["expired"] += signed
        elif r.kind == "donation" and r.holder == "fund":
            out["donated"] += signed
        elif r.kind == "adjustment" and member:
            out["adjusted"] += signed
        elif r.kind in ("crossing", "redemption") and r.holder == "clearing":
            # 通存通兑: what left for (credited to clearing) or came from (debited) other
            # communities of the district, transfers and redemptions at their merchants alike
            out["crossed_out" if signed > 0 else "crossed_in"] += abs(signed)
    return out


async def points_report(
    conn: AsyncConnection, principal: Principal, first: date, end: date
) -> dict[str, Any]:
    """The points report for the principal's community (admins and auditors)."""
    return await points_figures(conn, _may_read(principal), first, end)


async def points_figures(
    conn: AsyncConnection, community_id: uuid.UUID, first: date, end: date
) -> dict[str, Any]:
    """Points issued, reversed, redeemed (by merchant, by reward), expired, donated and
    adjusted in the period; the members' balances (the liability) at its start and end;
    what open lots will expire in the next 30 and 90 days."""
    _, start, stop, header = await _period(conn, community_id, first, end)
    now = await queries.database_now(conn)
    rows = await queries.redemptions(conn, community_id, start, stop)
    by_merchant: dict[str, dict[str, Any]] = {}
    for r in rows:
        m = by_merchant.setdefault(
            str(r.merchant_id),
            {"merchant_id": str(r.merchant_id), "name": r.merchant, "redemptions": 0, "points": 0},
        )
        m["redemptions"] += int(r.redemptions)
        m["points"] += int(r.points)
    return {
        **header,
        **_flows(await queries.point_flows(conn, community_id, start, stop)),
        "outstanding_at_start": await queries.outstanding(conn, community_id, start),
        "outstanding": await queries.outstanding(conn, community_id, stop),
        "expiring": [
            {"days": d, "points": await queries.expiring(conn, community_id, now, now + timedelta(days=d))}
            for d in EXPIRING_WINDOWS
        ],
        "redeemed_by_merchant": list(by_merchant.values()),
        "redeemed_by_reward": [
            {
                "reward_id": str(r.reward_id),
                "merchant_id": str(r.merchant_id),
                "title": r.title,
                "redemptions": int(r.redemptions),
                "points": int(r.points),
            }
            for r in rows
        ],
    }


async def merchants_report(
    conn: AsyncConnection, principal: Principal, first: date, end: date
) -> dict[str, Any]:
    """The merchants report for the principal's community (admins and auditors)."""
    return await merchants_figures(conn, _may_read(principal), first, end)


async def merchants_figures(
    conn: AsyncConnection, community_id: uuid.UUID, first: date, end: date
) -> dict[str, Any]:
    """Every merchant: its confirmed redemptions and their points, and every point it received."""
    _, start, stop, header = await _period(conn, community_id, first, end)
    redeemed: dict[uuid.UUID, list[int]] = defaultdict(lambda: [0, 0])
    for r in await queries.redemptions(conn, community_id, start, stop):
        redeemed[r.merchant_id][0] += int(r.redemptions)
        redeemed[r.merchant_id][1] += int(r.points)
    merchants = [
        {
            "merchant_id": str(r.merchant_id),
            "name": r.merchant,
            "redemptions": redeemed[r.merchant_id][0],
            "redeemed_points": redeemed[r.merchant_id][1],
            "points_received": int(r.received),
        }
        for r in await queries.merchant_receipts(conn, community_id, start, stop)
    ]
    return {
        **header,
        "merchants": merchants,
        "totals": {
            "redemptions": sum(m["redemptions"] for m in merchants),
            "redeemed_points": sum(m["redeemed_points"] for m in merchants),
            "points_received": sum(m["points_received"] for m in merchants),
        },
    }


async def _headline_of(
    conn: AsyncConnection, community_id: uuid.UUID, first: date, end: date
) -> dict[str, Any]:
    service = await service_figures(conn, community_id, first, end)
    points = await points_figures(conn, community_id, first, end)
    return {
        "from": first.isoformat(),
        "to": end.isoformat(),
        "net_minutes": service["totals"]["net_minutes"],
        "volunteers": service["totals"]["active_volunteers"],
        "points_issued": points["issued"] - points["service_reversed"],
        "points_redeemed": points["redeemed"],
        "points_expired": points["expired"],
    }


async def headline(conn: AsyncConnection, community_id: uuid.UUID) -> dict[str, Any]:
    """The public page's figures: this month and all time, each exactly what the reports
    say for that period (the same functions), plus the partner merchants now. Aggregates
    only: no name, no member id."""
    tz = await community_zone(conn, community_id)
    today = (await queries.database_now(conn)).astimezone(tz).date()
    founded = (await queries.founded(conn, community_id)).astimezone(tz).date()
    tomorrow = today + timedelta(days=1)
    return {
        "timezone": tz.key,
        "generated_at": rfc3339(await queries.database_now(conn)),
        "this_month": await _headline_of(conn, community_id, today.replace(day=1), tomorrow),
        "all_time": await _headline_of(conn, community_id, min(founded, today), tomorrow),
        "merchants": await queries.merchant_count(conn, community_id),
    }

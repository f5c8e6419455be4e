"""Districts: creation, joining by consent, trust lines, point rates and positions.

A district is a ledger of its own (a ``communities`` row of kind 'district', see
migration 0011). A community joins when both the district's admin and the
community's admin agreed, in either order; joining opens the community's position
accounts in the district's ledger and its ``clearing`` accounts in its own. A
district admin sees communities and figures, never a member: nothing here reads a
party of a community.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community.service import insert_key
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, Conflict, Forbidden, NotFound
from timebank.core.roles import Role
from timebank.core.terms import Asset, SystemRole
from timebank.districts import queries
from timebank.ledger import queries as ledger_queries
from timebank.ledger.legs import MAX_AMOUNT

MAX_NAME = 200
MAX_RATE = 1_000_000


def require_district_admin(principal: Principal) -> uuid.UUID:
    if principal.role is not Role.DISTRICT_ADMIN:
        raise Forbidden("only a district admin may do that")
    return principal.community_id


def check_limit(value: int, field: str) -> int:
    if not 0 <= value <= MAX_AMOUNT:
        raise BadRequest(f"{field} must be from 0 to {MAX_AMOUNT}")
    return value


async def create_district(
    conn: AsyncConnection,
    name: str,
    timezone: str = "Asia/Shanghai",
    hour_limit: int = 0,
    point_limit: int = 0,
) -> dict[str, Any]:
    """A district with its ledger's exchange accounts and a first district admin key (shown once)."""
    name = (name or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise BadRequest(f"name is 1 to {MAX_NAME} characters")
    district_id = await queries.insert_district(
        conn, name, timezone, check_limit(hour_limit, "hour_limit"), check_limit(point_limit, "point_limit")
    )
    for asset in Asset:
        await ledger_queries.open_account(
            conn, district_id, asset.value, guarded=False, system_role=SystemRole.EXCHANGE.value
        )
    key = await insert_key(conn, district_id, Role.DISTRICT_ADMIN, None, "first district admin key", None)
    return {"district_id": str(district_id), "admin_key": key["key"], "admin_key_id": key["id"]}


def membership_view(row: Any, name: str | None = None) -> dict[str, Any]:
    status = "joined" if row.joined_at else ("invited" if row.district_consent_at else "asked")
    view = {
        "district_id": str(row.district_id),
        "community_id": str(row.community_id),
        "status": status,
        "district_consent_at": rfc3339(row.district_consent_at) if row.district_consent_at else None,
        "community_consent_at": rfc3339(row.community_consent_at) if row.community_consent_at else None,
        "joined_at": rfc3339(row.joined_at) if row.joined_at else None,
        "limits": {Asset.HOUR.value: row.hour_limit, Asset.POINT.value: row.point_limit},
        "points_per_unit": row.points_per_unit,
    }
    if name is not None:
        view["name"] = name
    return view


async def consent(
    conn: AsyncConnection, principal: Principal, district_id: uuid.UUID, community_id: uuid.UUID
) -> dict[str, Any]:
    """One side's consent to a community joining a district; the second consent joins it.

    The district's admin consents for the district, the community's admin for the
    community; nobody else may. Consenting again changes nothing.
    """
    if principal.role is Role.DISTRICT_ADMIN and principal.community_id == district_id:
        side = "district_consent_at"
    elif principal.role is Role.ADMIN and principal.community_id == community_id:
        side = "community_consent_at"
    else:
        raise Forbidden("a community joins a district by its own admin's and the district admin's consent")
    district = await queries.district(conn, district_id)
    target = await queries.community(conn, community_id)
    if district is None:
        raise NotFound(f"district {district_id} not found")
    if target is None or target.kind != "community":
        raise NotFound(f"community {community_id} not found")
    row = await queries.membership(conn, community_id, lock=True)
    if row is not None and row.district_id != district_id:
        raise Conflict("this community already belongs to (or asked to join) another district")
    if row is None:
        await queries.insert_membership(
            conn,
            district_id=district_id,
            community_id=community_id,
            hour_limit=district.default_hour_limit,
            point_limit=district.default_point_limit,
            **{side: _now()},
        )
    elif getattr(row, side) is None:
        await queries.update_membership(conn, community_id, **{side: _now()})
    row = await queries.membership(conn, community_id, lock=True)
    assert row is not None
    if row.joined_at is None and row.district_consent_at and row.community_consent_at:
        await _join(conn, district_id, community_id, target.name)
        row = await queries.membership(conn, community_id)
    return membership_view(row, target.name)


def _now() -> Any:
    from sqlalchemy import func

    return func.now()


async def _join(conn: AsyncConnection, district_id: uuid.UUID, community_id: uuid.UUID, name: str) -> None:
    """Open the community's position accounts in the district and its clearing accounts at home."""
    party_id = await queries.insert_party(conn, district_id, name, community_id)
    for asset in Asset:
        # Unguarded: the limits hold both ways, checked by the crossing under the locks.
        await ledger_queries.open_account(conn, district_id, asset.value, guarded=False, party_id=party_id)
        await ledger_queries.open_account(
            conn, community_id, asset.value, guarded=False, system_role=SystemRole.CLEARING.value
        )
    await queries.update_membership(conn, community_id, party_id=party_id, joined_at=_now())


async def set_limits(
    conn: AsyncConnection, principal: Principal, community_id: uuid.UUID, limits: dict[str, int]
) -> dict[str, Any]:
    """Set a member community's trust line per asset. Lowering it below the position
    refuses further crossings that way until the position comes back; it moves nothing."""
    district_id = require_district_admin(principal)
    row = await queries.membership(conn, community_id, lock=True)
    if row is None or row.district_id != district_id:
        raise NotFound(f"community {community_id} is not in this district")
    values: dict[str, int] = {}
    for asset, value in limits.items():
        if asset not in (Asset.HOUR.value, Asset.POINT.value):
            raise BadRequest("limits are given per asset: HOUR (minutes) and POINT")
        values["hour_limit" if asset == Asset.HOUR.value else "point_limit"] = check_limit(
            value, f"{asset} limit"
        )
    if not values:
        raise BadRequest("give a limit for HOUR, POINT or both")
    await queries.update_membership(conn, community_id, **values)
    target = await queries.community(conn, community_id)
    return membership_view(await queries.membership(conn, community_id), target.name if target else None)


async def set_points_value(
    conn: AsyncConnection, principal: Principal, community_id: uuid.UUID, points_per_unit: int
) -> dict[str, Any]:
    """How many of this community's points make one district point. Points cross from
    A to B at ``A's value : B's value``: one value per community, so no round trip or
    cycle of crossings can gain points (rates set per pair could: A:B 1:2, B:C 1:2,
    C:A 1:1 would turn 100 of A's points into 400)."""
    district_id = require_district_admin(principal)
    if not 1 <= points_per_unit <= MAX_RATE:
        raise BadRequest(f"points_per_unit must be a whole number from 1 to {MAX_RATE}")
    row = await queries.membership(conn, community_id, lock=True)
    if row is None or row.district_id != district_id or row.joined_at is None:
        raise NotFound(f"community {community_id} has not joined this district")
    await queries.update_membership(conn, community_id, points_per_unit=points_per_unit)
    target = await queries.community(conn, community_id)
    return membership_view(await queries.membership(conn, community_id), target.name if target else None)


def points_rate_between(sender: Any, recipient: Any) -> tuple[int, int]:
    """(sender's points, recipient's points) worth each other, from the two
    communities' memberships (their ``points_per_unit``), in lowest terms."""
    a, b = sender.points_per_unit, recipient.points_per_unit
    g = math.gcd(a, b)
    return a // g, b // g


async def points_rate(
    conn: AsyncConnection, district_id: uuid.UUID, sender: uuid.UUID, recipient: uuid.UUID
) -> tuple[int, int]:
    """The rate from ``sender``'s points to ``recipient``'s (both joined to ``district_id``)."""
    members = await queries.memberships(conn, [sender, recipient])
    for c in (sender, recipient):
        if c not in members or members[c].district_id != district_id:
            raise NotFound(f"community {c} is not in this district")
    return points_rate_between(members[sender], members[recipient])


def rates_of(rows: list[Any]) -> list[dict[str, Any]]:
    """Every pair's rate among the joined communities (derived from their values)."""
    joined = sorted((r for r in rows if r.joined_at is not None), key=lambda r: str(r.community_id))
    out = []
    for n, a in enumerate(joined):
        for b in joined[n + 1 :]:
            ap, bp = points_rate_between(a, b)
            out.append(
                {
                    "community_a": str(a.community_id),
                    "community_b": str(b.community_id),
                    "a_points": ap,
                    "b_points": bp,
                }
            )
    return out


async def positions(conn: AsyncConnection, district_id: uuid.UUID) -> list[dict[str, Any]]:
    """Every joined community's position per asset (credits − debits of its district
    account, in its own units), with its limit and its clearing balance at home."""
    accounts = await queries.position_accounts(conn, district_id)
    out = []
    for row in await queries.members_of(conn, district_id):
        if row.joined_at is None:
            continue
        clearing = {
            r.asset: r
            for r in await ledger_queries.system_accounts(conn, row.community_id)
            if r.system_role == SystemRole.CLEARING.value
        }
        item: dict[str, Any] = {"community_id": str(row.community_id), "name": row.name, "assets": {}}
        for asset in Asset:
            acc = accounts[(row.community_id, asset.value)]
            item["assets"][asset.value] = {
                "position": acc.credits_posted - acc.debits_posted,
                "limit": row.hour_limit if asset is Asset.HOUR else row.point_limit,
                "account_id": str(acc.id),
                "clearing_account_id": str(clearing[asset.value].id) if asset.value in clearing else None,
            }
        out.append(item)
    return out


async def district_view(conn: AsyncConnection, district_id: uuid.UUID) -> dict[str, Any]:
    d = await queries.district(conn, district_id)
    if d is None:
        raise NotFound(f"district {district_id} not found")
    exchange = {
        r.asset: str(r.id)
        for r in await ledger_queries.system_accounts(conn, district_id)
        if r.system_role == SystemRole.EXCHANGE.value
    }
    members = await queries.members_of(conn, district_id)
    return {
        "id": str(d.id),
        "name": d.name,
        "timezone": d.timezone,
        "created_at": rfc3339(d.created_at),
        "default_limits": {Asset.HOUR.value: d.default_hour_limit, Asset.POINT.value: d.default_point_limit},
        "exchange_accounts": exchange,
        "communities": [membership_view(r, r.name) for r in members],
        "rates": rates_of(members),
    }


async def community_district(conn: AsyncConnection, community_id: uuid.UUID) -> dict[str, Any] | None:
    """What a community's people may know of its district: its name, the other joined
    communities (names are public), this community's status and position."""
    row = await queries.membership(conn, community_id)
    if row is None:
        return None
    d = await queries.district(conn, row.district_id)
    assert d is not None
    view: dict[str, Any] = {
        "district_id": str(d.id),
        "name": d.name,
        "status": membership_view(row)["status"],
        "limits": membership_view(row)["limits"],
        "communities": [
            {"id": str(r.community_id), "name": r.name}
            for r in await queries.members_of(conn, row.district_id)
            if r.joined_at is not None and r.community_id != community_id
        ],
    }
    if row.joined_at is not None:
        accounts = await queries.position_accounts(conn, row.district_id)
        view["position"] = {
            asset.value: accounts[(community_id, asset.value)].credits_posted
            - accounts[(community_id, asset.value)].debits_posted
            for asset in Asset
        }
    return view

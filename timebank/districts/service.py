"""Districts: creation, joining by consent, trust lines, point rates and positions.

A district is a ledger of its own (a ``communities`` row of kind 'district', see
migration 0011). A community joins when both the district's admin and the
community's admin agreed, in either order; joining opens the community's position
accounts in the district's ledger and its ``clearing`` accounts in its own. A
district admin sees communities and figures, never a member: nothing here reads a
party of a community.
"""

from __future__ import annotations

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


def pair(a: uuid.UUID, b: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID, bool]:
    """The pair in its stored order, and whether (a, b) was swapped to get it."""
    return (a, b, False) if a < b else (b, a, True)


async def set_rate(
    conn: AsyncConnection,
    principal: Principal,
    community_a: uuid.UUID,
    community_b: uuid.UUID,
    a_points: int,
    b_points: int,
) -> dict[str, Any]:
    """``a_points`` of community A's points are worth ``b_points`` of B's (both ways)."""
    district_id = require_district_admin(principal)
    if community_a == community_b:
        raise BadRequest("a rate is between two different communities")
    for value, field in ((a_points, "a_points"), (b_points, "b_points")):
        if not 1 <= value <= MAX_RATE:
            raise BadRequest(f"{field} must be a whole number from 1 to {MAX_RATE}")
    members = await queries.memberships(conn, [community_a, community_b])
    for c in (community_a, community_b):
        if c not in members or members[c].district_id != district_id or members[c].joined_at is None:
            raise NotFound(f"community {c} has not joined this district")
    first, second, swapped = pair(community_a, community_b)
    ap, bp = (b_points, a_points) if swapped else (a_points, b_points)
    await queries.set_rate(conn, district_id, first, second, ap, bp, principal.key_id)
    return rate_view(first, second, ap, bp)


def rate_view(a: uuid.UUID, b: uuid.UUID, ap: int, bp: int) -> dict[str, Any]:
    return {"community_a": str(a), "community_b": str(b), "a_points": ap, "b_points": bp}


async def points_rate(
    conn: AsyncConnection, district_id: uuid.UUID, sender: uuid.UUID, recipient: uuid.UUID
) -> tuple[int, int]:
    """(sender's points, recipient's points) that are worth each other; 1:1 unless set."""
    first, second, swapped = pair(sender, recipient)
    row = await queries.rate(conn, district_id, first, second)
    if row is None:
        return 1, 1
    return (row.b_points, row.a_points) if swapped else (row.a_points, row.b_points)


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
    return {
        "id": str(d.id),
        "name": d.name,
        "timezone": d.timezone,
        "created_at": rfc3339(d.created_at),
        "default_limits": {Asset.HOUR.value: d.default_hour_limit, Asset.POINT.value: d.default_point_limit},
        "exchange_accounts": exchange,
        "communities": [membership_view(r, r.name) for r in await queries.members_of(conn, district_id)],
        "rates": [
            rate_view(r.community_a, r.community_b, r.a_points, r.b_points)
            for r in await queries.rates(conn, district_id)
        ],
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

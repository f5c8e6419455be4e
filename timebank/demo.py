"""Demo data for an empty database: 华锦社区 with an organisation, a merchant, members,
funds, a few service records (four approved, one waiting for approval), three
rewards of the merchant, and a person to sign in as for each role (random passwords,
printed by `serve` and saved beside the keys). With it, the district 华锦街道: 华锦社区
and a small neighbour, 锦绣社区, joined by both sides' consent, a district admin to sign
in as, and two crossings so the district's pages have figures."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.community import service as community
from timebank.core.access import Principal
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset, Kind
from timebank.db import MIGRATION_LOCK_KEY
from timebank.districts import crossing
from timebank.districts import service as districts
from timebank.ledger import service as ledger
from timebank.people import accounts
from timebank.redemption import rewards
from timebank.volunteer import approval, recording
from timebank.volunteer.records import RecordIn

DEMO_NAME = "华锦社区"
DISTRICT_NAME = "华锦街道"
NEIGHBOUR_NAME = "锦绣社区"
MEMBERS = [("李秀英", 600, 120), ("王建国", 300, 60), ("张伟", 90, 30), ("陈静", 0, 0)]
# (member, days ago, hours, activity, category)
SERVICE = [
    (0, 20, 2, "陪独居老人聊天", "volunteer_service"),
    (0, 13, 3, "社区义诊引导", "culture_health"),
    (1, 12, 1.5, "邻里修水管", "neighbour_aid"),
    (2, 6, 2, "日间照料送餐", "day_care"),
    (0, 2, 2, "法律咨询值班", "legal_aid"),
]


async def seed_if_empty(engine: AsyncEngine) -> dict[str, Any] | None:
    """Create the demo community when there is no community at all; returns its keys."""
    async with engine.begin() as conn:
        # Replicas starting together: only one seeds (transaction-level advisory lock).
        await conn.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY + 1})
        if (await conn.execute(text("SELECT EXISTS (SELECT 1 FROM communities)"))).scalar_one():
            return None
        created = await community.create_community(conn, DEMO_NAME)
        community_id = uuid.UUID(created["community_id"])
        admin = Principal(uuid.UUID(created["admin_key_id"]), community_id, Role.ADMIN, None)
        org = await community.create_party(conn, community_id, PartyKind.ORGANISATION, "华锦社区志愿服务队")
        shop = await community.create_party(conn, community_id, PartyKind.MERCHANT, "华锦爱心超市")
        members = await _members_with_balances(conn, admin)
        await _service_records(conn, admin, members, org)
        await _rewards(conn, admin, shop)
        resident = await community.issue_key(
            conn, admin, "resident", uuid.UUID(members[0]["id"]), "demo resident"
        )
        logins = await _people(conn, admin, members, org, shop)
        resident_principal = Principal(
            uuid.UUID(resident["id"]), community_id, Role.RESIDENT, uuid.UUID(members[0]["id"])
        )
        district = await _district(conn, admin, resident_principal, members)
        logins["district_admin"] = district.pop("login")
        return {
            "logins": logins,
            "community_id": created["community_id"],
            **district,
            "admin_key": created["admin_key"],
            "resident_key": resident["key"],
            "organisation_id": org["id"],
            "merchant_id": shop["id"],
            "member_ids": [m["id"] for m in members],
        }


def _password() -> str:
    """A password a newcomer can type from the terminal: three groups of four."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i
    return "-".join("".join(secrets.choice(alphabet) for _ in range(4)) for _ in range(3))


async def _people(
    conn: AsyncConnection,
    admin: Principal,
    members: list[dict[str, Any]],
    org: dict[str, Any],
    shop: dict[str, Any],
) -> dict[str, dict[str, str]]:
    """A person to sign in as, for each role: (role, subject, name, login)."""
    logins = {}
    for role, subject, name, login in (
        ("resident", members[0]["id"], members[0]["display_name"], "13800000001"),
        ("merchant", shop["id"], "华锦爱心超市店员", "huajin-shop"),
        ("admin", None, "社工 周晓燕", "huajin-staff"),
        ("recorder", org["id"], "志愿服务队 记录员", "huajin-team"),
        ("auditor", members[1]["id"], members[1]["display_name"], "huajin-board"),
    ):
        password = _password()
        await accounts.create_person(
            conn,
            admin,
            role=role,
            subject_id=None if subject is None else uuid.UUID(subject),
            display_name=name,
            login=login,
            password=password,
        )
        logins[role] = {"login": login, "password": password, "name": name}
    # a neighbour to give hours to (邻里互助), without a password: staff give them a sign-in card
    await accounts.create_person(
        conn,
        admin,
        role="resident",
        subject_id=uuid.UUID(members[2]["id"]),
        display_name=members[2]["display_name"],
        login="13800000003",
        password=None,
    )
    return logins


async def _district(
    conn: AsyncConnection, admin: Principal, resident: Principal, members: list[dict[str, Any]]
) -> dict[str, Any]:
    """华锦街道 with 华锦社区 and 锦绣社区 joined (the district's and each community's
    consent, through the services), its admin, and two crossings: an hour from 李秀英
    to her mother in 锦绣社区, and points from 锦绣社区's fund to 王建国."""
    created = await districts.create_district(conn, DISTRICT_NAME, hour_limit=6000, point_limit=5000)
    district_id = uuid.UUID(created["district_id"])
    office = Principal(uuid.UUID(created["admin_key_id"]), district_id, Role.DISTRICT_ADMIN, None)
    neighbour = await community.create_community(conn, NEIGHBOUR_NAME)
    neighbour_id = uuid.UUID(neighbour["community_id"])
    neighbour_admin = Principal(uuid.UUID(neighbour["admin_key_id"]), neighbour_id, Role.ADMIN, None)
    mother = await community.create_party(conn, neighbour_id, PartyKind.MEMBER, "李桂兰")
    view = await community.community_view(conn, neighbour_id)
    fund = uuid.UUID(view["accounts"]["fund"]["POINT"])
    seed = ledger.Movement(uuid.UUID(view["accounts"]["issuance"]["POINT"]), fund, Asset.POINT, 1000)
    await ledger.transfer(conn, neighbour_admin, [seed], kind=Kind.ADJUSTMENT, memo="演示数据：社区基金")
    for joining, its_admin in ((admin.community_id, admin), (neighbour_id, neighbour_admin)):
        await districts.consent(conn, office, district_id, joining)
        await districts.consent(conn, its_admin, district_id, joining)
    hour = crossing.CrossingRequest(
        to_community_id=neighbour_id,
        asset=Asset.HOUR,
        amount=60,
        to_party_id=uuid.UUID(mother["id"]),
        memo="给妈妈的一小时",
    )
    await crossing.cross(conn, resident, hour, None)  # type: ignore[arg-type]
    points = crossing.CrossingRequest(
        to_community_id=admin.community_id,
        asset=Asset.POINT,
        amount=40,
        from_account_id=fund,
        to_party_id=uuid.UUID(members[1]["id"]),
        memo="锦绣社区感谢王师傅修水管",
    )
    await crossing.cross(conn, neighbour_admin, points, None)  # type: ignore[arg-type]
    password = _password()
    name, login = "华锦街道 管理员", "huajin-office"
    await accounts.create_person(
        conn,
        office,
        role=Role.DISTRICT_ADMIN.value,
        subject_id=None,
        display_name=name,
        login=login,
        password=password,
    )
    return {
        "login": {"login": login, "password": password, "name": name},
        "district_id": created["district_id"],
        "neighbour_community_id": neighbour["community_id"],
    }


async def _members_with_balances(conn: AsyncConnection, admin: Principal) -> list[dict[str, Any]]:
    """The members with opening hours and points, and a community fund to give from."""
    view = await community.community_view(conn, admin.community_id)
    issuance = view["accounts"]["issuance"]
    members = []
    for name, minutes, points in MEMBERS:
        member = await community.create_party(conn, admin.community_id, PartyKind.MEMBER, name)
        members.append(member)
        moves = [
            ledger.Movement(uuid.UUID(issuance[a]), uuid.UUID(member["accounts"][a]), Asset(a), n)
            for a, n in (("HOUR", minutes), ("POINT", points))
            if n
        ]
        if moves:
            await ledger.transfer(conn, admin, moves, kind=Kind.ADJUSTMENT, memo="演示数据：期初余额")
    fund = ledger.Movement(
        uuid.UUID(issuance["POINT"]), uuid.UUID(view["accounts"]["fund"]["POINT"]), Asset.POINT, 5000
    )
    await ledger.transfer(conn, admin, [fund], kind=Kind.ADJUSTMENT, memo="演示数据：社区基金")
    return members


async def _service_records(
    conn: AsyncConnection, admin: Principal, members: list[dict[str, Any]], org: dict[str, Any]
) -> None:
    """A few weeks of recorded service: approved (credits hours and points), one waiting."""
    now = datetime.now(UTC)
    items = [
        RecordIn(
            activity=activity,
            category=category,
            place="华锦社区日间照料中心",
            started_at=now - timedelta(days=days, hours=3),
            ended_at=now - timedelta(days=days, hours=3 - hours),
            member_id=uuid.UUID(members[n]["id"]),
            organisation_id=uuid.UUID(org["id"]),
            external_ref=f"demo-{i}",
        )
        for i, (n, days, hours, activity, category) in enumerate(SERVICE)
    ]
    out = await recording.record_many(conn, admin, items, now=now)
    for record in out.accepted[:-1]:
        await approval.approve(conn, admin, uuid.UUID(record["id"]), claim=None)


async def _rewards(conn: AsyncConnection, admin: Principal, shop: dict[str, Any]) -> None:
    """The merchant's love-exchange shelf (爱心兑换): better prices from three stars up."""
    for title, price, stock, extra in (
        ("十斤大米", 100, 20, {"star_prices": {"3": 80}}),
        ("食用油一桶", 60, None, {"limit": rewards.LimitIn(1, "month")}),
        ("理发一次", 30, None, {}),
    ):
        reward = rewards.RewardIn(
            merchant_id=uuid.UUID(shop["id"]), title=title, price_points=price, stock=stock, **extra
        )
        await rewards.create_reward(conn, admin, reward)

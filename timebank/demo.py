"""Demo data for an empty database: 华锦社区 with an organisation, a merchant, members and funds."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.community import service as community
from timebank.community.models import PartyKind, Role
from timebank.db import MIGRATION_LOCK_KEY
from timebank.ledger import service as ledger
from timebank.ledger.models import Asset, Kind
from timebank.security import Principal

DEMO_NAME = "华锦社区"
MEMBERS = [("李秀英", 600, 120), ("王建国", 300, 60), ("张伟", 90, 30), ("陈静", 0, 0)]


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
        view = await community.community_view(conn, community_id)
        org = await community.create_party(conn, community_id, PartyKind.ORGANISATION, "华锦社区志愿服务队")
        shop = await community.create_party(conn, community_id, PartyKind.MERCHANT, "华锦爱心超市")
        members = []
        for name, minutes, points in MEMBERS:
            member = await community.create_party(conn, community_id, PartyKind.MEMBER, name)
            members.append(member)
            moves = [
                ledger.Movement(uuid.UUID(view["accounts"]["issuance"][a]), uuid.UUID(member["accounts"][a]), Asset(a), n)
                for a, n in (("HOUR", minutes), ("POINT", points))
                if n
            ]
            if moves:
                await ledger.transfer(conn, admin, moves, kind=Kind.ADJUSTMENT, memo="演示数据：期初余额")
        # Seed the community fund so the demo has something to give out.
        await ledger.transfer(
            conn,
            admin,
            [ledger.Movement(uuid.UUID(view["accounts"]["issuance"]["POINT"]),
                             uuid.UUID(view["accounts"]["fund"]["POINT"]), Asset.POINT, 5000)],
            kind=Kind.ADJUSTMENT,
            memo="演示数据：社区基金",
        )
        resident = await community.issue_key(conn, admin, "resident", uuid.UUID(members[0]["id"]), "demo resident")
        return {
            "community_id": created["community_id"],
            "admin_key": created["admin_key"],
            "resident_key": resident["key"],
            "organisation_id": org["id"],
            "merchant_id": shop["id"],
            "member_ids": [m["id"] for m in members],
        }

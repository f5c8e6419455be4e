"""Many members with many points lots, fast: for the expiry benchmark and job tests.

Lots get their expiry from the policy at the time of their credit, so each round of
credits runs under a policy with its own ``points_expiry.months``.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.community.service import create_community, create_party
from timebank.core.ids import uuid7
from timebank.core.policy import PointsExpiry, Policy, set_policy
from timebank.core.roles import PartyKind
from timebank.core.terms import Asset, SystemRole
from timebank.db import driver
from timebank.ledger import queries as ledger_queries
from timebank.ledger.posting import post_batch

BATCH = 500


async def seed_lots(
    engine: AsyncEngine, *, members: int, months: list[int], points: int = 10, name: str = "积分社区"
) -> dict[str, Any]:
    """A community with ``members`` members, each credited ``points`` once per entry of ``months``."""
    async with engine.begin() as conn:
        created = await create_community(conn, name)
        community_id = uuid.UUID(created["community_id"])
        admin_key = uuid.UUID(created["admin_key_id"])
        accounts = [
            uuid.UUID(
                (await create_party(conn, community_id, PartyKind.MEMBER, f"居民{i}"))["accounts"]["POINT"]
            )
            for i in range(members)
        ]
        issuance = await ledger_queries.system_account_id(
            conn, community_id, SystemRole.ISSUANCE, Asset.POINT
        )
    for m in months:
        async with engine.begin() as conn:
            await set_policy(
                conn, community_id, Policy(points_expiry=PointsExpiry("months_after_credit", m)), admin_key
            )
        for start in range(0, members, BATCH):
            async with engine.begin() as conn:
                requests = [
                    _points_move(community_id, "adjustment", issuance, account, points)
                    for account in accounts[start : start + BATCH]
                ]
                answers = await post_batch(await driver(conn), requests)
                assert all(a["code"] == "ok" for a in answers)
    return {
        "community_id": community_id,
        "admin_key": created["admin_key"],
        "admin_key_id": admin_key,
        "accounts": accounts,
    }


async def donate(
    engine: AsyncEngine, community_id: uuid.UUID, accounts: list[uuid.UUID], points: int
) -> None:
    """Each of ``accounts`` gives ``points`` to the community fund (lots spent oldest first)."""
    async with engine.connect() as conn:
        fund = await ledger_queries.system_account_id(conn, community_id, SystemRole.FUND, Asset.POINT)
        await conn.rollback()
        for start in range(0, len(accounts), BATCH):
            async with conn.begin():
                requests = [
                    _points_move(community_id, "donation", a, fund, points)
                    for a in accounts[start : start + BATCH]
                ]
                answers = await post_batch(await driver(conn), requests)
                assert all(a["code"] == "ok" for a in answers), answers[0]


def _points_move(
    community_id: uuid.UUID, kind: str, debit: uuid.UUID, credit: uuid.UUID, points: int
) -> tuple[Any, ...]:
    """One ``ledger_request`` (as ``ledger.movement`` builds them): ``points`` from debit to
    credit, posted at once, with no idempotency key (seeding runs once)."""
    legs = [(debit, "POINT", "debit", "posted", points), (credit, "POINT", "credit", "posted", points)]
    return (
        uuid7(),
        community_id,
        kind,
        "posted",
        "seed",
        None,
        None,
        None,
        None,
        None,
        None,
        None,
        legs,
    )

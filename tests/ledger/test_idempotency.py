"""The idempotency mechanism itself: actions that write and then fail, races, crashes."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from timebank.community.service import create_party
from timebank.core.access import Principal
from timebank.core.problems import IdempotencyConflict, InsufficientFunds
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset, Kind
from timebank.ledger import service
from timebank.ledger.idempotency import request_hash, run_idempotent


def admin_of(tenant) -> Principal:
    return Principal(uuid.uuid4(), uuid.UUID(tenant.id), Role.ADMIN, None)


async def count_parties(engine, tenant) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(text("SELECT count(*) FROM parties WHERE community_id = :c"), {"c": tenant.id})
        ).scalar()


def issue(tenant, member, amount=5):
    return [
        service.Movement(
            uuid.UUID(tenant.accounts["issuance"]["HOUR"]),
            uuid.UUID(member["accounts"]["HOUR"]),
            Asset.HOUR,
            amount,
        )
    ]


async def test_a_failing_action_leaves_nothing_and_stays_rejected(tenant, engine):
    who = admin_of(tenant)
    calls = 0

    async def writes_then_fails(conn, claim):
        nonlocal calls
        calls += 1
        await conn.begin()
        await create_party(conn, who.community_id, PartyKind.MEMBER, "半途而废")
        raise InsufficientFunds("not today")

    fp = request_hash(who, "POST", "/x", {"a": 1})
    status, body, replayed = await run_idempotent(engine, who, "k", fp, writes_then_fails)
    assert (status, replayed) == (422, False) and body["type"].endswith("/insufficient-funds")
    assert await count_parties(engine, tenant) == 0
    again = await run_idempotent(engine, who, "k", fp, writes_then_fails)
    assert again == (422, body, True)
    assert calls == 2  # ran again, yet answered with the first rejection


async def test_concurrent_requests_with_one_key_move_once(tenant, engine):
    who = admin_of(tenant)
    member = await tenant.member()
    calls = 0

    async def pays(conn, claim):
        nonlocal calls
        calls += 1
        return await service.transfer(conn, who, issue(tenant, member), kind=Kind.ADJUSTMENT, claim=claim)

    fp = request_hash(who, "POST", "/x", {"a": 1})
    results = await asyncio.gather(*[run_idempotent(engine, who, "once", fp, pays) for _ in range(8)])
    assert (await tenant.balance(member["accounts"]["HOUR"]))["posted"] == 5
    assert len({r[1]["id"] for r in results}) == 1 and {r[0] for r in results} == {201}
    assert sorted(r[2] for r in results) == [False] + [True] * 7
    assert results[0][1] == results[1][1]
    with pytest.raises(IdempotencyConflict):
        await run_idempotent(engine, who, "once", request_hash(who, "POST", "/x", {"a": 2}), pays)
    other = Principal(uuid.uuid4(), who.community_id, Role.ADMIN, None)
    with pytest.raises(IdempotencyConflict):  # another key holder cannot replay someone else's answer
        await run_idempotent(engine, other, "once", request_hash(other, "POST", "/x", {"a": 1}), pays)


async def test_an_unexpected_error_releases_the_key(tenant, engine):
    who = admin_of(tenant)
    member = await tenant.member()
    fp = request_hash(who, "POST", "/x", None)

    async def crashes(conn, claim):
        await conn.begin()
        await service.transfer(conn, who, issue(tenant, member), kind=Kind.ADJUSTMENT, claim=claim)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await run_idempotent(engine, who, "retry-me", fp, crashes)
    assert (await tenant.balance(member["accounts"]["HOUR"]))["posted"] == 0

    async def works(conn, claim):
        return await service.transfer(conn, who, issue(tenant, member), kind=Kind.ADJUSTMENT, claim=claim)

    status, _body, replayed = await run_idempotent(engine, who, "retry-me", fp, works)
    assert (status, replayed) == (201, False)
    assert (await tenant.balance(member["accounts"]["HOUR"]))["posted"] == 5


async def test_an_action_that_forgets_its_claim_is_a_bug(tenant, engine):
    who = admin_of(tenant)

    async def forgets(conn, claim):
        return {"ok": True}

    with pytest.raises(AssertionError):
        await run_idempotent(engine, who, "forgot", request_hash(who, "POST", "/x", None), forgets)

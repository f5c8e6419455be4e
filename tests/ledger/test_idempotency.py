"""The idempotency mechanism itself, with actions that write and then fail."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from sqlalchemy import text

from timebank.community.models import PartyKind, Role
from timebank.community.service import create_party
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.problems import IdempotencyConflict, InsufficientFunds
from timebank.security import Principal


def admin_of(tenant) -> Principal:
    return Principal(uuid.uuid4(), uuid.UUID(tenant.id), Role.ADMIN, None)


async def count_parties(engine, tenant) -> int:
    async with engine.connect() as conn:
        return (await conn.execute(text("SELECT count(*) FROM parties WHERE community_id = :c"),
                                   {"c": tenant.id})).scalar()


async def test_a_failing_action_leaves_nothing_and_stays_rejected(tenant, engine):
    who = admin_of(tenant)
    calls = 0

    async def writes_then_fails(conn):
        nonlocal calls
        calls += 1
        await create_party(conn, who.community_id, PartyKind.MEMBER, "半途而废")
        raise InsufficientFunds("not today")

    fp = request_hash(who, "POST", "/x", {"a": 1})
    status, body, replayed = await run_idempotent(engine, who, "k", fp, writes_then_fails)
    assert (status, replayed) == (422, False) and body["type"].endswith("/insufficient-funds")
    assert await count_parties(engine, tenant) == 0
    again = await run_idempotent(engine, who, "k", fp, writes_then_fails)
    assert again == (422, body, True) and calls == 1


async def test_success_is_stored_and_replayed_and_conflicts_are_refused(tenant, engine):
    who = admin_of(tenant)
    calls = 0

    async def creates(conn):
        nonlocal calls
        calls += 1
        return await create_party(conn, who.community_id, PartyKind.MEMBER, "一次")

    fp = request_hash(who, "POST", "/x", {"a": 1})
    results = await asyncio.gather(*[run_idempotent(engine, who, "once", fp, creates) for _ in range(8)])
    assert calls == 1 and await count_parties(engine, tenant) == 1
    assert len({r[1]["id"] for r in results}) == 1
    assert sorted(r[2] for r in results) == [False] + [True] * 7
    with pytest.raises(IdempotencyConflict):
        await run_idempotent(engine, who, "once", request_hash(who, "POST", "/x", {"a": 2}), creates)
    other = Principal(uuid.uuid4(), who.community_id, Role.ADMIN, None)
    with pytest.raises(IdempotencyConflict):  # another key holder cannot replay someone else's answer
        await run_idempotent(engine, other, "once", request_hash(other, "POST", "/x", {"a": 1}), creates)


async def test_an_unexpected_error_releases_the_key(tenant, engine):
    who = admin_of(tenant)
    fp = request_hash(who, "POST", "/x", None)

    async def crashes(conn):
        await create_party(conn, who.community_id, PartyKind.MEMBER, "崩溃")
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        await run_idempotent(engine, who, "retry-me", fp, crashes)
    assert await count_parties(engine, tenant) == 0

    async def works(conn):
        return {"ok": True}

    assert await run_idempotent(engine, who, "retry-me", fp, works) == (201, {"ok": True}, False)

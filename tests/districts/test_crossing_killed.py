"""A crossing whose process is killed half-way leaves none of its three parts.

A real `timebank serve` process takes a crossing; the test holds a lock that the
crossing meets only after it has written all three parts (the ``crossings`` row is
its last write), sees its database session waiting there with the parts written but
uncommitted, and SIGKILLs the process. Nothing of the crossing may stay; the same
request retried with the same key then crosses once.
"""

from __future__ import annotations

import asyncio
import signal
import uuid

import httpx
from sqlalchemy import text
from support import free_port, stop, wait_ready

from tests.deploy.test_operations import env_for, start
from tests.districts.helpers import cross, new_district
from tests.districts.test_crossings import district_audit, posted


async def test_a_crossing_killed_half_way_leaves_none_of_its_parts(
    client, engine, database_url, settings, tmp_path
):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await a.member("甲"), await b.member("乙")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 100)
    key = await a.key("resident", alice["id"])
    body = {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "HOUR", "amount": 40}
    idem = f"killed-{uuid.uuid4()}"

    port = free_port()
    env = {
        **env_for(database_url, settings, tmp_path),
        "TIMEBANK_SCHEDULER": "0",
        "TIMEBANK_LOG_INTEGRATOR": "0",
    }
    server = start(["serve", "--port", str(port), "--no-demo"], env)
    try:
        wait_ready(port, server)
        async with engine.connect() as blocker:
            # SHARE conflicts with the ROW EXCLUSIVE an INSERT takes: the crossing's last write waits.
            await blocker.execute(text("LOCK TABLE crossings IN SHARE MODE"))
            async with httpx.AsyncClient(timeout=60) as http:
                request = asyncio.create_task(
                    http.post(
                        f"http://127.0.0.1:{port}/v1/crossings",
                        json=body,
                        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
                    )
                )
                pid = await _backend_waiting_on_crossings(engine)
                # Half-way: it has written the parts (its open transaction holds the write
                # locks of the ledger's tables) and waits to record the crossing.
                async with engine.connect() as look:
                    tables = set(
                        (
                            await look.execute(
                                text(
                                    "SELECT relation::regclass::text FROM pg_locks "
                                    "WHERE pid = :p AND granted AND mode = 'RowExclusiveLock'"
                                ),
                                {"p": pid},
                            )
                        ).scalars()
                    )
                assert {"transactions", "entries", "idempotency_keys"} <= tables, tables
                server.send_signal(signal.SIGKILL)
                server.wait(timeout=30)
                request.cancel()
            await blocker.rollback()
        await _gone(engine, pid)
    finally:
        if server.poll() is None:
            stop(server)

    # None of the three parts, no crossing, no key claimed, no balance moved.
    async with engine.connect() as conn:
        parts = (
            await conn.execute(
                text("SELECT count(*) FROM transactions WHERE kind = 'crossing' AND community_id = ANY(:c)"),
                {"c": [uuid.UUID(a.id), uuid.UUID(b.id), uuid.UUID(d.id)]},
            )
        ).scalar_one()
        claimed = (
            await conn.execute(
                text("SELECT count(*) FROM idempotency_keys WHERE community_id = :c AND key = :k"),
                {"c": uuid.UUID(a.id), "k": idem},
            )
        ).scalar_one()
    assert (parts, claimed) == (0, 0)
    assert await posted(a, alice["accounts"]["HOUR"]) == 100
    assert await posted(b, bob["accounts"]["HOUR"]) == 0
    assert all(v == 0 for v in (await d.positions()).values())

    # The client retries with the same key: one crossing.
    first = await cross(a, key, body, idem=idem)
    again = await cross(a, key, body, idem=idem)
    assert first.status_code == again.status_code == 201 and first.json() == again.json()
    assert await posted(b, bob["accounts"]["HOUR"]) == 40
    assert not any((await district_audit(engine)).values())


async def _backend_waiting_on_crossings(engine) -> int:
    """The server's database session, waiting for the lock on ``crossings`` (its last write)."""
    query = text(
        "SELECT a.pid FROM pg_stat_activity a JOIN pg_locks l ON l.pid = a.pid "
        "WHERE NOT l.granted AND l.relation = 'crossings'::regclass"
    )
    for _ in range(600):
        async with engine.connect() as conn:
            pid = (await conn.execute(query)).scalar_one_or_none()
        if pid is not None:
            return int(pid)
        await asyncio.sleep(0.05)
    raise AssertionError("the crossing never reached its last write")


async def _gone(engine, pid: int) -> None:
    """Wait for the killed server's session to end (it rolls back when it finds its client gone)."""
    for _ in range(600):
        async with engine.connect() as conn:
            alive = (
                await conn.execute(text("SELECT count(*) FROM pg_stat_activity WHERE pid = :p"), {"p": pid})
            ).scalar_one()
        if not alive:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"backend {pid} is still there")

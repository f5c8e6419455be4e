"""Idempotency retention (issue 12): an Idempotency-Key's answer is kept for
TIMEBANK_IDEMPOTENCY_RETENTION_DAYS (30) days, a replay inside the window answers the
same, and the daily `idempotency-retention` job removes older answers (once per day
across workers), never breaking `timebank audit`: the transactions keep their keys."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import text

from timebank import db
from timebank.audits import run_audit
from timebank.core.access import Principal
from timebank.core.clock import AsOf, Clock
from timebank.core.roles import Role
from timebank.core.settings import Settings
from timebank.core.terms import Asset
from timebank.jobs.definitions import JOBS, Context, job_context, run_job
from timebank.ledger import service as ledger
from timebank.ledger.idempotency import remove_expired, run_idempotent
from timebank.ledger.service import KeyAlreadyUsed
from timebank.log import keys as signing_keys
from timebank.log import registry as log_registry
from timebank.points.seed import seed_lots


async def audit_clean(engine: Any) -> None:
    report = await run_audit(engine)
    assert report.ok, {k: v for k, v in report.results.items() if v}


async def back_date(engine: Any, community_id: str, keys: list[str], days: float) -> None:
    async with engine.begin() as conn:
        done = (
            await conn.execute(
                text(
                    "UPDATE idempotency_keys SET created_at = now() - make_interval(secs => :s) "
                    "WHERE community_id = :c AND key = ANY(:k)"
                ),
                {"s": days * 86400, "c": uuid.UUID(community_id), "k": keys},
            )
        ).rowcount
    assert done == len(keys)


async def stored_keys(engine: Any, community_id: str) -> set[str]:
    async with engine.connect() as conn:
        return {
            r.key
            for r in await conn.execute(
                text("SELECT key FROM idempotency_keys WHERE community_id = :c"),
                {"c": uuid.UUID(community_id)},
            )
        }


async def retention_job(engine: Any, settings: Settings, now: datetime | None = None) -> dict[str, Any]:
    """The job's work, as the scheduler runs it (without its once-per-day bookkeeping,
    which the shared test database would carry from one test to the next)."""
    ctx = job_context(engine, signing_keys.load_signer(settings.key_dir), settings)
    return await JOBS["idempotency-retention"].work(ctx, None, now or datetime.now(UTC))


async def test_a_replay_inside_the_window_answers_the_same_and_an_older_key_is_removed(
    tenant, engine, settings
):
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 100)
    move = {
        "from_account": a["accounts"]["HOUR"],
        "to_account": b["accounts"]["HOUR"],
        "asset": "HOUR",
        "amount": 10,
    }
    young, old, refused = f"young-{uuid.uuid4()}", f"old-{uuid.uuid4()}", f"refused-{uuid.uuid4()}"
    first = {k: await tenant.transfer(move, idem=k) for k in (young, old)}
    assert all(r.status_code == 201 for r in first.values())
    no = await tenant.transfer({**move, "amount": 10_000}, idem=refused)
    assert no.status_code == 422
    # 29 days and 23 hours: still inside the 30-day window, whatever the job does
    await back_date(engine, tenant.id, [young, refused], 30 - 1 / 24)
    await back_date(engine, tenant.id, [old], 30 + 1 / 24)
    assert (await retention_job(engine, settings))["removed"] >= 1
    assert await stored_keys(engine, tenant.id) >= {young, refused} and old not in await stored_keys(
        engine, tenant.id
    )
    # inside the window: the same answer, nothing moves again
    again = await tenant.transfer(move, idem=young)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first[young].json()["id"]
    assert again.json()["entries"] == first[young].json()["entries"]
    still_no = await tenant.transfer({**move, "amount": 10_000}, idem=refused)
    assert still_no.status_code == 422 and still_no.json() == no.json()
    assert (await tenant.balance(b["accounts"]["HOUR"]))["posted"] == 20
    # the transactions keep their keys (append-only) and the audit is clean
    async with engine.connect() as conn:
        kept = (
            await conn.execute(
                text("SELECT idempotency_key FROM transactions WHERE id = :t"),
                {"t": uuid.UUID(first[old].json()["id"])},
            )
        ).scalar_one()
    assert kept == old
    receipt = await tenant.client.get(f"/v1/transactions/{first[old].json()['id']}", headers=tenant.auth())
    assert receipt.status_code == 200
    await audit_clean(engine)
    # past the window the key is free: the same key is a new request (documented)
    renewed = await tenant.transfer(move, idem=old)
    assert renewed.status_code == 201 and "Idempotent-Replayed" not in renewed.headers
    assert renewed.json()["id"] != first[old].json()["id"]
    assert (await tenant.balance(b["accounts"]["HOUR"]))["posted"] == 30
    await audit_clean(engine)


async def test_the_job_removes_what_is_due_once_and_a_future_as_of_removes_no_young_answer(
    tenant, engine, settings
):
    a = await tenant.member("丙")
    keys = [f"batch-{i}-{uuid.uuid4()}" for i in range(7)]
    for k in keys:
        r = await tenant.transfer(
            {
                "from_account": tenant.accounts["issuance"]["POINT"],
                "to_account": a["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 1,
                "kind": "adjustment",
            },
            idem=k,
        )
        assert r.status_code == 201
    await back_date(engine, tenant.id, keys[:5], 45)
    # a run "as of" a day far ahead measures from the database's clock, not past it
    future = datetime.now(UTC) + timedelta(days=3650)
    removed = await remove_expired(engine, future, 30, batch=2)  # small batches: several rounds
    assert removed["removed"] >= 5
    left = await stored_keys(engine, tenant.id)
    assert set(keys[5:]) <= left and not set(keys[:5]) & left
    assert (await remove_expired(engine, datetime.now(UTC), 30))["removed"] == 0  # idempotent: nothing more
    await audit_clean(engine)
    with pytest.raises(ValueError):
        await remove_expired(engine, datetime.now(UTC), 0)


async def test_a_key_removed_between_claim_and_replay_is_answered_as_a_new_request(tenant, engine):
    """The job may remove an answer while a late retry of it runs: the retry is then a
    new request (never a 500, never two answers for one key)."""
    a = await tenant.member("丁")
    admin = Principal(uuid.uuid4(), uuid.UUID(tenant.id), Role.ADMIN, None)
    key = f"race-{uuid.uuid4()}"
    async with engine.begin() as conn:  # an old answer under the key
        await conn.execute(
            text(
                "INSERT INTO idempotency_keys (community_id, key, request_hash, principal_id, status_code, response, "
                "created_at) VALUES (:c, :k, :h, :p, 422, '{}'::jsonb, now() - interval '40 days')"
            ),
            {"c": admin.community_id, "k": key, "h": b"x" * 32, "p": admin.key_id},
        )
    calls = 0

    async def action(conn: Any, claim: Any) -> dict[str, Any]:
        nonlocal calls
        calls += 1
        if calls == 1:  # the claim finds the old answer ... which the job removes right then
            await remove_expired(engine, datetime.now(UTC), 30)
            raise KeyAlreadyUsed()
        return await ledger.transfer(
            conn,
            admin,
            [
                ledger.Movement(
                    uuid.UUID(tenant.accounts["issuance"]["HOUR"]),
                    uuid.UUID(a["accounts"]["HOUR"]),
                    Asset.HOUR,
                    5,
                )
            ],
            kind=ledger.Kind.ADJUSTMENT,
            claim=claim,
        )

    status, body, replayed = await run_idempotent(engine, admin, key, b"y" * 32, action)
    assert (status, replayed, calls) == (201, False, 2)
    assert (await tenant.balance(a["accounts"]["HOUR"]))["posted"] == 5
    async with engine.connect() as conn:
        row = (
            await conn.execute(
                text("SELECT transaction_id FROM idempotency_keys WHERE community_id = :c AND key = :k"),
                {"c": admin.community_id, "k": key},
            )
        ).one()
    assert str(row.transaction_id) == body["id"]


# --- the scheduled job on a database of its own -----------------------------------------


@pytest.fixture
async def scratch(fresh_database_url, settings):
    engine = db.create_engine(fresh_database_url, settings)
    async with engine.begin() as conn:
        await log_registry.register_keys(conn, signing_keys.read_keyring(settings.key_dir))
    yield engine, fresh_database_url, signing_keys.load_signer(settings.key_dir)
    await engine.dispose()


async def test_two_workers_run_the_retention_once_per_day(scratch, settings):
    engine, url, signer = scratch
    seeded = await seed_lots(engine, members=3, months=[12], points=5)
    cid = seeded["community_id"]
    async with engine.begin() as conn:  # answers of 10, 29 and 31 days ago
        for days in (10, 29, 31, 31):
            await conn.execute(
                text(
                    "INSERT INTO idempotency_keys "
                    "(community_id, key, request_hash, principal_id, status_code, response, created_at) "
                    "VALUES (:c, :k, :h, NULL, 422, '{}'::jsonb, now() - make_interval(days => :d))"
                ),
                {"c": cid, "k": f"d{days}-{uuid.uuid4()}", "h": b"h" * 32, "d": days},
            )
    other = db.create_engine(url, settings)
    try:
        today = datetime.now(UTC).date()

        def ctx(eng: Any, clock: Clock) -> Context:
            return job_context(eng, signer, settings.with_(idempotency_retention_days=30), clock)

        a, b = await asyncio.gather(
            run_job(ctx(engine, Clock()), "idempotency-retention"),
            run_job(ctx(other, Clock()), "idempotency-retention"),
        )
        statuses = sorted(o.status for o in a + b)
        assert statuses.count("done") == 1 and set(statuses) <= {"done", "busy", "skipped"}, statuses
        done = next(o for o in a + b if o.status == "done")
        assert done.counts["removed"] == 2 and done.scope == "all" and done.period == today.isoformat()
        again = await run_job(ctx(engine, Clock()), "idempotency-retention")
        assert [o.status for o in again] == ["skipped"]  # once per day
        # a run for tomorrow measures from the database's clock: the 29-day answer stays
        tomorrow = await run_job(ctx(engine, AsOf(today + timedelta(days=2))), "idempotency-retention")
        assert [(o.status, o.counts.get("removed")) for o in tomorrow] == [("done", 0)]
    finally:
        await other.dispose()
    async with engine.connect() as conn:
        ages = sorted(
            r.days
            for r in await conn.execute(
                text(
                    "SELECT round(extract(epoch FROM now() - created_at) / 86400) AS days FROM idempotency_keys "
                    "WHERE response IS NOT NULL"
                )
            )
        )
    assert ages == [10, 29]
    await audit_clean(engine)


def test_the_retention_is_a_setting_of_at_least_a_day(monkeypatch, settings):
    monkeypatch.delenv("TIMEBANK_IDEMPOTENCY_RETENTION_DAYS", raising=False)
    assert Settings.from_env().idempotency_retention_days == 30
    monkeypatch.setenv("TIMEBANK_IDEMPOTENCY_RETENTION_DAYS", "90")
    assert Settings.from_env().idempotency_retention_days == 90
    for bad in ("0", "-1", "thirty"):
        monkeypatch.setenv("TIMEBANK_IDEMPOTENCY_RETENTION_DAYS", bad)
        with pytest.raises(SystemExit, match="TIMEBANK_IDEMPOTENCY_RETENTION_DAYS"):
            Settings.from_env()
    ctx = job_context(None, None, settings.with_(idempotency_retention_days=7))  # type: ignore[arg-type]
    assert ctx.idempotency_retention_days == 7

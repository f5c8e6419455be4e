"""Scheduled jobs on real PostgreSQL: once per period across workers, crash takeover,
points expiry (partial lots, time zones, racing redemptions), reminders and signed
webhooks with retries, hold timeouts, the nightly audit, the API and the CLI."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import msgspec
import pytest
from sqlalchemy import text

from timebank import db, schemas
from timebank.app import create_app
from timebank.audits import run_audit
from timebank.core.clock import AsOf, Clock
from timebank.jobs.definitions import Context, run_job
from timebank.jobs.scheduler import Scheduler
from timebank.log import keys as signing_keys
from timebank.log import registry as log_registry
from timebank.notifications.webhooks import Webhook, deliver_due, signature
from timebank.points.seed import donate, seed_lots

SHANGHAI = ZoneInfo("Asia/Shanghai")


class At(Clock):
    """One fixed instant."""

    def __init__(self, instant: datetime) -> None:
        self.instant = instant

    def now(self, tz: Any = None) -> datetime:
        return self.instant.astimezone(tz or UTC)


class Scratch:
    """An engine on a database of its own (jobs look at every community in it), its
    URL, and job contexts on it."""

    def __init__(self, engine: Any, url: str, signer: Any, origin: str) -> None:
        self.engine, self.url_text, self.signer, self.origin = engine, url, signer, origin

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    def ctx(self, clock: Clock | None = None) -> Context:
        return Context(self.engine, self.signer, self.origin, clock or Clock())


@pytest.fixture
async def scratch(fresh_database_url, settings):
    engine = db.create_engine(fresh_database_url, settings)
    async with engine.begin() as conn:
        await log_registry.register_keys(conn, signing_keys.read_keyring(settings.key_dir))
    yield Scratch(engine, fresh_database_url, signing_keys.load_signer(settings.key_dir), settings.log_origin)
    await engine.dispose()


async def audit_clean(engine: Any) -> None:
    report = await run_audit(engine)
    assert report.ok, {k: v for k, v in report.results.items() if v}


async def lots_of(engine: Any, community_id: uuid.UUID) -> list[Any]:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT * FROM points_lots WHERE community_id = :c ORDER BY expires_at, id"),
                {"c": community_id},
            )
        ).all()


async def expired_once(engine: Any, community_id: uuid.UUID) -> dict[str, int]:
    """Per lot, how many expiry transactions took from it (each at most once)."""
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT c.lot_id, count(*) AS n, sum(c.points) AS points FROM points_consumptions c "
                    "JOIN transactions t ON t.id = c.transaction_id JOIN points_lots l ON l.id = c.lot_id "
                    "WHERE t.kind = 'expiry' AND l.community_id = :c GROUP BY c.lot_id"
                ),
                {"c": community_id},
            )
        ).all()
    return {str(r.lot_id): r.n for r in rows}


async def test_two_workers_run_a_year_of_daily_expiry_once(scratch, settings):
    seeded = await seed_lots(scratch, members=40, months=[1, 3, 6, 12], points=10)
    cid = seeded["community_id"]
    # spend part of the earliest lots first: a partly spent lot expires only its rest
    await donate(scratch, cid, seeded["accounts"][:20], 4)
    before = {str(r.id): r.remaining for r in await lots_of(scratch, cid)}
    assert sum(before.values()) == 40 * 40 - 20 * 4
    first = {x: v for x, v in before.items() if v == 6}
    assert len(first) == 20  # the partly spent ones
    # two workers, each with its own connections, run every day of a year at once
    other = db.create_engine(scratch.url_text, settings)
    try:
        today = datetime.now(SHANGHAI).date()
        ctx_b = Context(other, scratch.signer, scratch.origin)
        for offset in range(380):
            day = today + timedelta(days=offset)
            a, b = await asyncio.gather(
                run_job(scratch.ctx(AsOf(day)), "points-expiry"),
                run_job(Context(ctx_b.engine, ctx_b.signer, ctx_b.log_origin, AsOf(day)), "points-expiry"),
            )
            statuses = sorted(o.status for o in a + b)
            assert statuses.count("done") == 1 and set(statuses) <= {"done", "busy", "skipped"}, statuses
    finally:
        await other.dispose()
    after = await lots_of(scratch, cid)
    assert all(r.remaining == 0 for r in after)
    once = await expired_once(scratch, cid)
    assert set(once) == set(before) and set(once.values()) == {1}
    async with scratch.connect() as conn:
        expired = (
            await conn.execute(
                text(
                    "SELECT credits_posted FROM accounts "
                    "WHERE community_id = :c AND system_role = 'expired' AND asset = 'POINT'"
                ),
                {"c": cid},
            )
        ).scalar_one()
        runs = (
            await conn.execute(
                text(
                    "SELECT count(*) AS n, count(DISTINCT period) AS days, max(attempts) AS attempts FROM job_runs "
                    "WHERE job = 'points-expiry' AND scope = :c AND status = 'done'"
                ),
                {"c": str(cid)},
            )
        ).one()
    assert expired == sum(before.values())
    assert runs.n == runs.days == 380 and runs.attempts == 1
    await audit_clean(scratch)


async def test_a_worker_killed_during_expiry_is_finished_by_the_next_run(scratch, settings):
    seeded = await seed_lots(scratch, members=3000, months=[1], points=10, name="大社区")
    cid = seeded["community_id"]
    as_of = (datetime.now(SHANGHAI) + timedelta(days=40)).date().isoformat()
    env = {
        **os.environ,
        "TIMEBANK_DATABASE_URL": scratch.url_text,
        "TIMEBANK_SIGNING_KEY_DIR": str(settings.key_dir),
        "TIMEBANK_LOG_LEVEL": "WARNING",
    }
    proc = await asyncio.create_subprocess_exec(
        *[sys.executable, "-m", "timebank.cli", "jobs", "run", "points-expiry", "--as-of", as_of],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    done = 0
    deadline = time.monotonic() + 60
    async with scratch.connect() as conn:
        while time.monotonic() < deadline:
            done = (
                await conn.execute(
                    text("SELECT count(*) FROM transactions WHERE community_id = :c AND kind = 'expiry'"),
                    {"c": cid},
                )
            ).scalar_one()
            await conn.rollback()
            if done:
                proc.send_signal(signal.SIGKILL)
                break
            await asyncio.sleep(0.01)
    await asyncio.wait_for(proc.wait(), 30)
    assert 0 < done < 3000, f"{done} expired when the worker was killed: not in the middle"
    async with scratch.connect() as conn:
        run = (
            await conn.execute(
                text("SELECT * FROM job_runs WHERE job = 'points-expiry' AND scope = :c"), {"c": str(cid)}
            )
        ).one()
    assert run.status == "running"  # killed: nobody finished it
    again = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "timebank.cli", "jobs", "run", "points-expiry", "--as-of", as_of],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert again.returncode == 0, again.stderr
    outcome = next(o for o in json.loads(again.stdout) if o["scope"] == str(cid))
    assert outcome["status"] == "done" and outcome["counts"]["members"] == 3000 - done
    assert all(r.remaining == 0 for r in await lots_of(scratch, cid))
    assert set((await expired_once(scratch, cid)).values()) == {1}
    async with scratch.connect() as conn:
        run = (
            await conn.execute(
                text("SELECT * FROM job_runs WHERE job = 'points-expiry' AND scope = :c"), {"c": str(cid)}
            )
        ).one()
    assert run.status == "done" and run.attempts == 2
    await audit_clean(scratch)


async def test_a_lot_expires_at_local_midnight_in_shanghai(scratch):
    seeded = await seed_lots(scratch, members=1, months=[1], points=10)
    cid = seeded["community_id"]
    (lot,) = await lots_of(scratch, cid)
    local = lot.expires_at.astimezone(SHANGHAI)
    assert local.time().isoformat() == "00:00:00"  # local midnight: 16:00 UTC the day before
    assert lot.expires_at.astimezone(UTC).hour == 16
    just_before = At(lot.expires_at - timedelta(microseconds=1))
    (o,) = await run_job(scratch.ctx(just_before), "points-expiry")
    assert o.period == (local.date() - timedelta(days=1)).isoformat() and o.counts["points"] == 0
    # the day before, in Shanghai, ran already; at midnight it is a new day there
    (o,) = await run_job(scratch.ctx(At(lot.expires_at)), "points-expiry")
    assert o.status == "done" and o.period == local.date().isoformat() and o.counts["points"] == 10
    assert (await lots_of(scratch, cid))[0].remaining == 0
    await audit_clean(scratch)


async def test_expiry_racing_a_redemption_never_takes_the_same_points(scratch, settings):
    from timebank.community.service import create_party
    from timebank.core.access import Principal
    from timebank.core.roles import PartyKind, Role
    from timebank.ledger import service as ledger
    from timebank.redemption import redemptions, rewards

    seeded = await seed_lots(scratch, members=30, months=[1, 12], points=30)
    cid = seeded["community_id"]
    async with scratch.begin() as conn:
        shop = await create_party(conn, cid, PartyKind.MERCHANT, "超市")
        admin = Principal(seeded["admin_key_id"], cid, Role.ADMIN, None)
        reward = await rewards.create_reward(
            conn, admin, rewards.RewardIn(merchant_id=uuid.UUID(shop["id"]), title="米", price_points=40)
        )
    signer = signing_keys.load_signer(settings.key_dir)
    members = []
    async with scratch.connect() as conn:
        for account in seeded["accounts"]:
            members.append(
                (
                    await conn.execute(text("SELECT party_id FROM accounts WHERE id = :a"), {"a": account})
                ).scalar_one()
            )
    held = []
    for m in members:  # each member: a held redemption of 40 of their 60 points
        resident = Principal(uuid.uuid4(), cid, Role.RESIDENT, m)
        async with scratch.connect() as conn:
            view = await redemptions.redeem(
                conn,
                resident,
                uuid.UUID(reward["id"]),
                m,
                token=None,
                signer=signer,
                claim=ledger.Claim(str(uuid.uuid4()), b"x"),
            )
            await conn.commit()
        held.append(view)
    merchant = Principal(uuid.uuid4(), cid, Role.MERCHANT, uuid.UUID(shop["id"]))

    async def confirm_all() -> None:
        for view in held:
            async with scratch.connect() as conn:
                await redemptions.confirm(
                    conn,
                    merchant,
                    uuid.UUID(view["id"]),
                    code=view["code"],
                    qr=None,
                    signer=signer,
                    claim=ledger.Claim(str(uuid.uuid4()), b"y"),
                )
                await conn.commit()

    # the first lots (30 each) expire while the redemptions (40 each) are confirmed
    as_of = AsOf((datetime.now(SHANGHAI) + timedelta(days=40)).date())
    await asyncio.gather(confirm_all(), run_job(scratch.ctx(as_of), "points-expiry"))
    lots = await lots_of(scratch, cid)
    async with scratch.connect() as conn:
        taken = {
            str(r.lot_id): int(r.points)
            for r in await conn.execute(
                text("SELECT lot_id, sum(points) AS points FROM points_consumptions GROUP BY lot_id")
            )
        }
        expiry_total = (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(amount), 0) FROM entries e JOIN transactions t ON t.id = e.transaction_id "
                    "WHERE t.community_id = :c AND t.kind = 'expiry' AND e.direction = 'debit'"
                ),
                {"c": cid},
            )
        ).scalar_one()
        redeemed = (
            await conn.execute(
                text("SELECT credits_posted FROM accounts WHERE party_id = :s AND asset = 'POINT'"),
                {"s": uuid.UUID(shop["id"])},
            )
        ).scalar_one()
    for lot in lots:  # no lot gave more than it had
        assert taken.get(str(lot.id), 0) == lot.points - lot.remaining <= lot.points
    assert redeemed == 30 * 40  # every confirmed redemption got its points
    assert expiry_total + redeemed + sum(r.remaining for r in lots) == 30 * 60
    await audit_clean(scratch)


async def test_reminders_once_and_a_signed_webhook_retried_until_acknowledged(scratch, settings):
    seeded = await seed_lots(scratch, members=2, months=[12], points=15)
    cid = seeded["community_id"]
    lot = (await lots_of(scratch, cid))[0]
    expires = lot.expires_at.astimezone(SHANGHAI).date()
    for days_before in (45, 30, 29, 20, 7, 6, 1):
        outcomes = await run_job(scratch.ctx(AsOf(expires - timedelta(days=days_before))), "expiry-reminders")
        again = await run_job(scratch.ctx(AsOf(expires - timedelta(days=days_before))), "expiry-reminders")
        assert [o.status for o in again] == ["skipped"]
        made = outcomes[0].counts["notifications"]
        assert made == {45: 0, 30: 2, 29: 0, 20: 0, 7: 2, 6: 0, 1: 0}[days_before], (days_before, made)
    async with scratch.connect() as conn:
        rows = (
            await conn.execute(
                text("SELECT * FROM notifications WHERE community_id = :c ORDER BY created_at"), {"c": cid}
            )
        ).all()
    assert sorted((str(r.lot_id), r.threshold_days) for r in rows) == sorted(
        (str(x.id), d) for x in await lots_of(scratch, cid) for d in (30, 7)
    )
    # the member reads them (newest first); another member may not
    admin = {"Authorization": f"Bearer {seeded['admin_key']}"}
    async with await api(scratch, settings) as c:
        members = (await c.get("/v1/members", headers=admin)).json()["items"]
        key = (
            await c.post(
                "/v1/api-keys", json={"role": "resident", "subject_id": members[0]["id"]}, headers=admin
            )
        ).json()["key"]
        mine = await c.get(
            f"/v1/members/{members[0]['id']}/notifications", headers={"Authorization": f"Bearer {key}"}
        )
        assert mine.status_code == 200, mine.text
        page = msgspec.convert(mine.json(), schemas.NotificationPage, strict=True)
        assert [n.payload["days"] for n in page.items] == [7, 30] and page.items[0].delivered_at is None
        assert (
            await c.get(
                f"/v1/members/{members[1]['id']}/notifications", headers={"Authorization": f"Bearer {key}"}
            )
        ).status_code == 404
    # the webhook: down at first, then acknowledging; signed; never twice after a 2xx
    got: list[httpx.Request] = []
    answers = iter([500, 503] + [200] * 10)

    def handler(request: httpx.Request) -> httpx.Response:
        got.append(request)
        return httpx.Response(next(answers))

    hook = Webhook("https://hooks.example.org/timebank", "s3cret-s3cret-s3cret")
    t0 = datetime(2030, 1, 1, tzinfo=UTC)
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as client:
        first = await deliver_due(scratch, cid, hook, t0, client)
        assert first == {"delivered": 2, "failed": 2}
        assert await deliver_due(scratch, cid, hook, t0 + timedelta(seconds=30), client) == {
            "delivered": 0,
            "failed": 0,
        }
        assert await deliver_due(scratch, cid, hook, t0 + timedelta(minutes=1), client) == {
            "delivered": 2,
            "failed": 0,
        }
        assert await deliver_due(scratch, cid, hook, t0 + timedelta(days=1), client) == {
            "delivered": 0,
            "failed": 0,
        }
    assert len(got) == 6
    for request in got:
        stamp = request.headers["X-Timebank-Timestamp"]
        expected = (
            "sha256="
            + hmac.new(
                hook.secret.encode(), stamp.encode() + b"." + request.content, hashlib.sha256
            ).hexdigest()
        )
        assert (
            request.headers["X-Timebank-Signature"]
            == expected
            == signature(hook.secret, stamp, request.content)
        )
        body = json.loads(request.content)
        assert (
            body["type"] == "points_expiring"
            and body["notification_id"] == request.headers["X-Timebank-Delivery"]
        )
        assert body["points"] == 15 and body["days"] in (7, 30)
    delivered_ids = [r.headers["X-Timebank-Delivery"] for r in got[2:]] + [
        got[0].headers["X-Timebank-Delivery"]
    ]
    async with scratch.connect() as conn:
        state = {
            str(r.id): (r.delivered_at is not None, r.attempts)
            for r in await conn.execute(
                text("SELECT id, delivered_at, attempts FROM notifications WHERE community_id = :c"),
                {"c": cid},
            )
        }
    assert all(delivered for delivered, _ in state.values()) and len(set(delivered_ids)) == 4
    assert sorted(n for _, n in state.values()) == [1, 1, 2, 2]
    # a delivered notification does not change again, even by hand
    async with scratch.connect() as conn:
        with pytest.raises(Exception, match="does not change"):
            await conn.execute(
                text("UPDATE notifications SET delivered_at = NULL WHERE community_id = :c"), {"c": cid}
            )


async def api(scratch: Any, settings: Any) -> httpx.AsyncClient:
    app = create_app(settings, scratch.url_text)
    app.state.engine = scratch
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://timebank.test")


async def test_hold_timeouts_void_holds_and_redemptions_once(scratch, settings):
    seeded = await seed_lots(scratch, members=2, months=[12], points=50)
    admin = {"Authorization": f"Bearer {seeded['admin_key']}"}
    async with await api(scratch, settings) as c:
        members = (await c.get("/v1/members", headers=admin)).json()["items"]
        a, b = members[0], members[1]
        shop = (await c.post("/v1/merchants", json={"name": "店"}, headers=admin)).json()
        shop_key = (
            await c.post("/v1/api-keys", json={"role": "merchant", "subject_id": shop["id"]}, headers=admin)
        ).json()["key"]
        resident = (
            await c.post("/v1/api-keys", json={"role": "resident", "subject_id": a["id"]}, headers=admin)
        ).json()["key"]
        policy = (await c.get("/v1/community/policy", headers=admin)).json()["policy"]
        assert (
            await c.put("/v1/community/policy", json={**policy, "voucher_seconds": 1}, headers=admin)
        ).status_code == 200
        reward = (
            await c.post(
                "/v1/rewards",
                json={"title": "米", "price_points": 20, "stock": 1},
                headers={"Authorization": f"Bearer {shop_key}"},
            )
        ).json()
        voucher = await c.post(
            "/v1/redemptions",
            json={"reward_id": reward["id"], "member_id": a["id"]},
            headers={"Authorization": f"Bearer {resident}", "Idempotency-Key": "r1"},
        )
        assert voucher.status_code == 201, voucher.text
        hold = await c.post(
            "/v1/transfers",
            json={
                "from_account": a["accounts"]["POINT"],
                "to_account": b["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 5,
                "pending": {"timeout_seconds": 1},
            },
            headers={**admin, "Idempotency-Key": "h1"},
        )
        assert hold.status_code == 201, hold.text
        await asyncio.sleep(1.2)
        (o,) = await run_job(scratch.ctx(), "hold-timeouts")
        assert o.status == "done" and o.counts["redemptions"] == 1 and o.counts["holds"] == 1
        (again,) = await run_job(scratch.ctx(), "hold-timeouts")
        assert again.status == "skipped" or again.counts.get("holds", 0) == 0
        gone = (await c.get(f"/v1/redemptions/{voucher.json()['id']}", headers=admin)).json()
        assert gone["status"] == "expired"
        assert (await c.get(f"/v1/transactions/{hold.json()['id']}", headers=admin)).json()[
            "status"
        ] == "expired"
        assert (await c.get(f"/v1/rewards/{reward['id']}", headers=admin)).json()["stock"] == 1
        assert (await c.get(f"/v1/members/{a['id']}/points", headers=admin)).json()["available"] == 50
    await audit_clean(scratch)


async def test_a_failed_nightly_audit_shows_in_readiness_and_the_jobs_api(scratch, settings, run_cli):
    seeded = await seed_lots(scratch, members=1, months=[12], points=10)
    admin = {"Authorization": f"Bearer {seeded['admin_key']}"}
    async with await api(scratch, settings) as c:
        ready = (await c.get("/health/ready")).json()
        assert ready["checks"]["audit"] == {"status": "not run yet"}
        (o,) = await run_job(scratch.ctx(), "audit")
        assert o.status == "done" and o.counts["ok"] is True
        assert (await c.get("/health/ready")).json()["checks"]["audit"]["status"] == "ok"
        async with scratch.begin() as conn:  # behind the service's back, as a superuser
            await conn.execute(text("SET LOCAL session_replication_role = replica"))
            await conn.execute(
                text("UPDATE entries SET amount = amount + 1 WHERE id = (SELECT max(id) FROM entries)")
            )
        tomorrow = AsOf(datetime.now(UTC).date() + timedelta(days=2))
        (o,) = await run_job(scratch.ctx(tomorrow), "audit")
        assert o.status == "done" and o.counts["ok"] is False
        r = await c.get("/health/ready")
        assert r.status_code == 200 and r.json()["checks"]["audit"]["status"] == "failed"
        assert r.json()["checks"]["audit"]["failed_checks"]
        runs = await c.get("/v1/jobs?job=audit", headers=admin)
        assert runs.status_code == 200 and [x["counts"]["ok"] for x in runs.json()["items"]] == [False, True]
        msgspec.convert(runs.json(), schemas.JobRunList, strict=True)
        # a global run says nothing about other communities: its verdict and time only
        assert set(runs.json()["items"][0]["counts"]) <= {"ok", "seconds"}
        assert (await c.get("/v1/jobs?job=nonsense", headers=admin)).status_code == 400
        resident = (
            await c.post(
                "/v1/api-keys",
                json={
                    "role": "resident",
                    "subject_id": (await c.get("/v1/members", headers=admin)).json()["items"][0]["id"],
                },
                headers=admin,
            )
        ).json()["key"]
        assert (await c.get("/v1/jobs", headers={"Authorization": f"Bearer {resident}"})).status_code == 403
    out = run_cli(
        "jobs",
        "run",
        "audit",
        "--as-of",
        "2031-01-01",
        url=scratch.url_text,
        TIMEBANK_SIGNING_KEY_DIR=str(settings.key_dir),
    )
    assert out.returncode == 1 and json.loads(out.stdout)[0]["counts"]["ok"] is False, out.stderr
    assert run_cli("jobs", "run", "nonsense", url=scratch.url_text).returncode == 2


async def test_the_scheduler_runs_every_job_and_stops_cleanly(scratch):
    await seed_lots(scratch, members=1, months=[12])
    scheduler = Scheduler(scratch.ctx())
    scheduler.start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            async with scratch.connect() as conn:
                jobs = {
                    r.job for r in await conn.execute(text("SELECT job FROM job_runs WHERE status = 'done'"))
                }
            if jobs >= {
                "points-expiry",
                "expiry-reminders",
                "hold-timeouts",
                "webhook-deliveries",
                "log-checkpoints",
                "audit",
            }:
                break
            await asyncio.sleep(0.2)
        else:
            pytest.fail(f"jobs that ran: {jobs}")
    finally:
        await scheduler.stop()
    async with scratch.connect() as conn:
        audit = (await conn.execute(text("SELECT counts FROM job_runs WHERE job = 'audit'"))).scalar_one()
        held = (
            await conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"))
        ).scalar_one()
    assert audit["ok"] is True
    assert held == 0  # every job lock released

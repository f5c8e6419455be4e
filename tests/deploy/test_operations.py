"""Operations for real: two `timebank serve` replicas and a `timebank worker` on one
PostgreSQL under a concurrent load (one replica SIGKILLed half-way in a second run),
a graceful SIGTERM that cuts no request, and the restore drill of docs/operations.md."""

from __future__ import annotations

import asyncio
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from support import free_port, stop, wait_ready

from timebank import db


def env_for(url: str, settings: Any, tmp: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(
        TIMEBANK_DATABASE_URL=url,
        TIMEBANK_SIGNING_KEY_DIR=str(settings.key_dir),
        TIMEBANK_DATA_DIR=str(tmp),
        TIMEBANK_LOG_LEVEL="WARNING",
        TIMEBANK_DEMO="0",
        **extra,
    )
    return env


def start(args: list[str], env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "timebank.cli", *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def cli(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "timebank.cli", *args], env=env, capture_output=True, text=True, timeout=180
    )


class Cluster:
    """Two API replicas (no jobs, no integrator) and one worker, on one database."""

    def __init__(self, url: str, settings: Any, tmp: Path) -> None:
        self.env = env_for(url, settings, tmp)
        self.ports = [free_port(), free_port()]
        self.replicas: list[subprocess.Popen[str] | None] = []
        self.worker: subprocess.Popen[str] | None = None

    def __enter__(self) -> Cluster:
        created = cli(["community", "create", "--name", "副本社区"], self.env)
        assert created.returncode == 0, created.stderr
        self.community = json.loads(created.stdout)
        self.admin = {"Authorization": f"Bearer {self.community['admin_key']}"}
        api_env = {**self.env, "TIMEBANK_SCHEDULER": "0", "TIMEBANK_LOG_INTEGRATOR": "0"}
        for port in self.ports:
            self.replicas.append(start(["serve", "--port", str(port), "--no-demo"], api_env))
        self.worker = start(["worker"], self.env)
        for port, proc in zip(self.ports, self.replicas, strict=True):
            assert proc is not None
            wait_ready(port, proc)
        return self

    def __exit__(self, *exc: Any) -> None:
        for proc in [*self.replicas, self.worker]:
            if proc is not None and proc.poll() is None:
                stop(proc)

    def url(self, i: int) -> str:
        return f"http://127.0.0.1:{self.ports[i]}"


async def setup_members(c: Cluster, n: int) -> tuple[list[dict[str, Any]], str]:
    async with httpx.AsyncClient(timeout=30) as http:
        community = (await http.get(c.url(0) + "/v1/community", headers=c.admin)).json()
        members = [
            (
                await http.post(
                    c.url(i % 2) + "/v1/members", json={"display_name": f"居民{i}"}, headers=c.admin
                )
            ).json()
            for i in range(n)
        ]
        issuance = community["accounts"]["issuance"]["HOUR"]
        for i, m in enumerate(members):
            r = await http.post(
                c.url(i % 2) + "/v1/transfers",
                headers={**c.admin, "Idempotency-Key": f"fund-{i}"},
                json={
                    "from_account": issuance,
                    "to_account": m["accounts"]["HOUR"],
                    "asset": "HOUR",
                    "amount": 1000,
                    "kind": "adjustment",
                },
            )
            assert r.status_code == 201, r.text
    return members, issuance


async def load(
    c: Cluster, members: list[dict[str, Any]], transfers: int, clients: int, kill_after: int | None = None
) -> tuple[dict[str, str], set[str]]:
    """Concurrent transfers over both replicas; a failed request is retried on the other
    replica with the same Idempotency-Key, as a client would. Returns the acknowledged
    keys (key → transaction id) and every key sent."""
    acked: dict[str, str] = {}
    sent: set[str] = set()
    rng = random.Random(7)
    work = [(f"t-{i}", *rng.sample(members, 2), rng.randint(1, 5)) for i in range(transfers)]
    done = 0

    async def client(k: int) -> None:
        nonlocal done
        async with httpx.AsyncClient(timeout=20) as http:
            while work:
                key, a, b, amount = work.pop()
                sent.add(key)
                body = {
                    "from_account": a["accounts"]["HOUR"],
                    "to_account": b["accounts"]["HOUR"],
                    "asset": "HOUR",
                    "amount": amount,
                }
                for attempt in range(6):
                    target = c.url((k + attempt) % 2)
                    try:
                        r = await http.post(
                            target + "/v1/transfers", json=body, headers={**c.admin, "Idempotency-Key": key}
                        )
                    except httpx.HTTPError:
                        await asyncio.sleep(0.05)
                        continue
                    if r.status_code == 201:
                        acked[key] = r.json()["id"]
                        break
                    assert r.status_code in (409, 422, 502, 503), r.text
                    if r.status_code == 422:  # not enough minutes: a clear refusal, nothing moved
                        break
                done += 1
                if kill_after is not None and done == kill_after:
                    victim = c.replicas[0]
                    assert victim is not None
                    victim.send_signal(signal.SIGKILL)  # mid-load: requests in flight are lost
                    c.replicas[0] = None

    await asyncio.gather(*(client(k) for k in range(clients)))
    return acked, sent


async def check_after(c: Cluster, url: str, settings: Any, acked: dict[str, str], sent: set[str]) -> None:
    engine = db.create_engine(url, settings)
    try:
        async with engine.connect() as conn:
            cid = c.community["community_id"]
            rows = {
                r.idempotency_key: str(r.id)
                for r in await conn.execute(
                    text(
                        "SELECT id, idempotency_key FROM transactions WHERE community_id = :c AND kind = 'transfer'"
                    ),
                    {"c": cid},
                )
            }
            dupes = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM (SELECT idempotency_key FROM transactions WHERE community_id = :c "
                        "AND idempotency_key IS NOT NULL GROUP BY idempotency_key HAVING count(*) > 1) x"
                    ),
                    {"c": cid},
                )
            ).scalar_one()
            total = (
                await conn.execute(
                    text(
                        "SELECT sum(credits_posted - debits_posted) FROM accounts "
                        "WHERE community_id = :c AND asset = 'HOUR'"
                    ),
                    {"c": cid},
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert dupes == 0  # nothing posted twice
    assert total == 0  # every asset sums to zero
    for key, tx_id in acked.items():  # every acknowledged transfer is there, as acknowledged
        assert rows.get(key) == tx_id, key
    assert set(rows) <= sent  # and nothing that was not asked for


async def test_two_replicas_and_a_worker_share_one_database(fresh_database_url, settings, tmp_path):
    with Cluster(fresh_database_url, settings, tmp_path) as c:
        members, _ = await setup_members(c, 20)
        acked, sent = await load(c, members, transfers=400, clients=16)
        assert len(acked) >= 390
        # the worker ran every job of its first period, each once
        deadline = time.monotonic() + 30
        async with httpx.AsyncClient() as http:
            while time.monotonic() < deadline:
                runs = (await http.get(c.url(1) + "/v1/jobs?limit=500", headers=c.admin)).json()["items"]
                if {r["job"] for r in runs if r["status"] == "done"} >= {
                    "points-expiry",
                    "expiry-reminders",
                    "hold-timeouts",
                    "webhook-deliveries",
                    "log-checkpoints",
                    "audit",
                }:
                    break
                await asyncio.sleep(0.5)
            else:
                pytest.fail(f"jobs not run: {runs}")
            periods = [(r["job"], r["scope"], r["period"]) for r in runs]
            assert len(periods) == len(set(periods)) and all(r["status"] != "failed" for r in runs)
            # the integrator of the worker logged every transfer
            receipt = (
                await http.get(
                    c.url(0) + f"/v1/transactions/{next(iter(acked.values()))}/receipt", headers=c.admin
                )
            ).json()
            deadline = time.monotonic() + 10
            while "log" not in receipt and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                receipt = (
                    await http.get(
                        c.url(0) + f"/v1/transactions/{next(iter(acked.values()))}/receipt", headers=c.admin
                    )
                ).json()
            assert "log" in receipt
        await check_after(c, fresh_database_url, settings, acked, sent)
        await asyncio.sleep(2.5)  # the last transfers into the log (merge delay 2 s)
        audit = cli(["audit"], c.env)
        assert audit.returncode == 0, audit.stdout


async def test_a_replica_killed_mid_load_loses_nothing_acknowledged(fresh_database_url, settings, tmp_path):
    with Cluster(fresh_database_url, settings, tmp_path) as c:
        members, _ = await setup_members(c, 20)
        acked, sent = await load(c, members, transfers=400, clients=16, kill_after=120)
        assert c.replicas[0] is None and len(acked) >= 390
        async with httpx.AsyncClient() as http:  # the survivor keeps serving
            assert (await http.get(c.url(1) + "/v1/community", headers=c.admin)).status_code == 200
        await check_after(c, fresh_database_url, settings, acked, sent)
        await asyncio.sleep(2.5)
        audit = cli(["audit"], c.env)
        assert audit.returncode == 0, audit.stdout


async def test_sigterm_finishes_requests_in_flight(fresh_database_url, settings, tmp_path):
    """A large CSV import is under way when serve gets SIGTERM: it is answered and committed;
    new connections are refused; a worker stopped the same way leaves no job lock behind."""
    ROWS = 20_000
    env = env_for(fresh_database_url, settings, tmp_path)
    created = cli(["community", "create", "--name", "停机社区"], env)
    admin = {"Authorization": f"Bearer {json.loads(created.stdout)['admin_key']}"}
    port = free_port()
    proc = start(["serve", "--port", str(port), "--no-demo"], {**env, "TIMEBANK_SCHEDULER": "0"})
    worker = start(["worker"], env)
    try:
        wait_ready(port, proc)
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=60) as http:
            org = (await http.post(base + "/v1/organisations", json={"name": "队"}, headers=admin)).json()
            for i in range(300):
                r = await http.post(
                    base + "/v1/members",
                    json={"display_name": f"志愿者{i}", "external_ref": f"M{i}"},
                    headers=admin,
                )
                assert r.status_code == 201
            rows = ["志愿者编号,活动名称,服务类别,服务地点,开始时间,结束时间,记录编号"]
            for i in range(ROWS):  # the largest import allowed, so it is still running at the signal
                day = (date(2026, 1, 1) + timedelta(days=i // 300)).isoformat()
                rows.append(f"M{i % 300},助老,志愿服务,社区,{day} 09:00,{day} 10:00,R{i}")
            body = ("\n".join(rows) + "\n").encode()
            importing = asyncio.create_task(
                http.post(
                    base + f"/v1/service-records/import?organisation_id={org['id']}",
                    content=body,
                    headers={**admin, "Content-Type": "text/csv"},
                )
            )
            await asyncio.sleep(0.2)
            assert not importing.done(), "the import finished before the signal: make it larger"
            proc.send_signal(signal.SIGTERM)
            answer = await importing
            assert answer.status_code == 200 and len(answer.json()["accepted"]) == ROWS, answer.text[:300]
        assert proc.wait(30) == 0
        with pytest.raises(httpx.HTTPError):
            async with httpx.AsyncClient() as http:
                await http.get(base + "/health/live", timeout=2)
        await asyncio.sleep(1)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(60) == 0
    finally:
        for p in (proc, worker):
            if p.poll() is None:
                p.kill()
    engine = db.create_engine(fresh_database_url, settings)
    try:
        async with engine.connect() as conn:
            records = (await conn.execute(text("SELECT count(*) FROM service_records"))).scalar_one()
            locks = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND database = "
                        "(SELECT oid FROM pg_database WHERE datname = current_database())"
                    )
                )
            ).scalar_one()
    finally:
        await engine.dispose()
    assert records == ROWS and locks == 0


async def test_restore_drill(fresh_database_url, settings, tmp_path):
    """docs/operations.md, "Restore drill": dump, restore into a new database, audit, and
    verify receipts taken before the dump against the restored copy."""
    env = env_for(fresh_database_url, settings, tmp_path)
    created = json.loads(cli(["community", "create", "--name", "备份社区"], env).stdout)
    admin = {"Authorization": f"Bearer {created['admin_key']}"}
    port = free_port()
    proc = start(["serve", "--port", str(port), "--no-demo"], env)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_ready(port, proc)
        async with httpx.AsyncClient(timeout=30) as http:
            community = (await http.get(base + "/v1/community", headers=admin)).json()
            m = (await http.post(base + "/v1/members", json={"display_name": "甲"}, headers=admin)).json()
            tx = (
                await http.post(
                    base + "/v1/transfers",
                    headers={**admin, "Idempotency-Key": "b1"},
                    json={
                        "from_account": community["accounts"]["issuance"]["POINT"],
                        "to_account": m["accounts"]["POINT"],
                        "asset": "POINT",
                        "amount": 50,
                        "kind": "adjustment",
                    },
                )
            ).json()
            deadline = time.monotonic() + 10
            receipt = (await http.get(base + f"/v1/transactions/{tx['id']}/receipt", headers=admin)).json()
            while "log" not in receipt and time.monotonic() < deadline:
                await asyncio.sleep(0.3)
                receipt = (
                    await http.get(base + f"/v1/transactions/{tx['id']}/receipt", headers=admin)
                ).json()
            keys = (await http.get(base + "/v1/log/keys")).json()
    finally:
        stop(proc)
    (tmp_path / "receipt.json").write_text(json.dumps(receipt))
    (tmp_path / "keys.json").write_text(json.dumps(keys))
    checkpoint = receipt["log"]["checkpoint"]
    (tmp_path / "checkpoint.txt").write_text(checkpoint)
    # 1. dump, 2. a new database, 3. restore into it (timebank db dump/restore wrap pg_dump/pg_restore)
    dump = tmp_path / "timebank.dump"
    out = cli(["db", "dump", str(dump)], env)
    assert out.returncode == 0 and dump.stat().st_size > 0, out.stderr
    source = make_url(fresh_database_url)
    restored_name = f"restored_{uuid.uuid4().hex[:8]}"
    import asyncpg

    admin_conn = await asyncpg.connect(
        db.libpq_url(source.set(database="postgres").render_as_string(hide_password=False))
    )
    await admin_conn.execute(f'CREATE DATABASE "{restored_name}"')
    await admin_conn.close()
    restored = source.set(database=restored_name).render_as_string(hide_password=False)
    renv = env_for(restored, settings, tmp_path)
    out = cli(["db", "restore", str(dump)], renv)
    assert out.returncode == 0, out.stderr
    # 4. the restored copy audits clean, its migrations are current, old receipts verify
    audit = cli(["audit"], renv)
    assert audit.returncode == 0 and "audit clean" in audit.stdout, audit.stdout
    assert cli(["db", "upgrade"], renv).returncode == 0
    offline = {k: v for k, v in renv.items() if k != "TIMEBANK_DATABASE_URL"}
    verified = cli(
        [
            "verify",
            str(tmp_path / "receipt.json"),
            "--keys",
            str(tmp_path / "keys.json"),
            "--checkpoint",
            str(tmp_path / "checkpoint.txt"),
        ],
        offline,
    )
    assert verified.returncode == 0, verified.stdout + verified.stderr
    port = free_port()
    proc = start(["serve", "--port", str(port), "--no-demo"], renv)
    try:
        wait_ready(port, proc)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            again = (await http.get(f"/v1/transactions/{tx['id']}/receipt", headers=admin)).json()
            assert again["transaction"] == receipt["transaction"]
            assert again["leaf_hash"] == receipt["leaf_hash"]
            assert again["set"] == receipt["set"]
            proof = (
                await http.get(
                    "/v1/log/proof/inclusion",
                    params={
                        "community_id": created["community_id"],
                        "transaction_id": tx["id"],
                        "size": receipt["log"]["tree_size"],
                    },
                )
            ).json()
            assert proof["proof"] == receipt["log"]["inclusion_proof"]
            # and it takes new business
            r = await http.post("/v1/members", json={"display_name": "乙"}, headers=admin)
            assert r.status_code == 201
    finally:
        stop(proc)

"""`timebank serve` end to end: embedded database, migrations, demo data, side-by-side
instances and other commands on the same data folder while it runs."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import httpx
import psutil
from support import free_port, stop, wait_ready


def start_serve(data_dir: Path, port: int) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
    env["TIMEBANK_DATA_DIR"] = str(data_dir)
    return subprocess.Popen(
        [sys.executable, "-m", "timebank.cli", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def postgres_running_in(pgdata: Path) -> bool:
    for p in psutil.process_iter(attrs=("name", "cmdline")):
        if p.info["name"] == "postgres" and p.info["cmdline"] and str(pgdata) in " ".join(p.info["cmdline"]):
            return True
    return False


def test_serve_runs_on_the_embedded_database_with_demo_data(tmp_path):
    data_dir = tmp_path / "data"
    port1, port2 = free_port(), free_port()
    first = start_serve(data_dir, port1)
    second = None
    try:
        wait_ready(port1, first)
        keys = json.loads((data_dir / "demo-keys.json").read_text())
        admin = {"Authorization": f"Bearer {keys['admin_key']}"}
        community = httpx.get(f"http://127.0.0.1:{port1}/v1/community", headers=admin).json()
        assert community["name"] == "华锦社区"
        fund = httpx.get(
            f"http://127.0.0.1:{port1}/v1/accounts/{community['accounts']['fund']['POINT']}", headers=admin
        ).json()
        assert fund["posted"] > 0
        members = httpx.get(f"http://127.0.0.1:{port1}/v1/members", headers=admin).json()["items"]
        assert len(members) >= 3
        # Demo service: 李秀英 has 5 h approved (and a record waiting for approval).
        li = httpx.get(f"http://127.0.0.1:{port1}/v1/members/{keys['member_ids'][0]}", headers=admin).json()
        assert li["display_name"] == "李秀英" and li["lifetime_minutes"] == 300 and li["star_level"] == 0
        waiting = httpx.get(
            f"http://127.0.0.1:{port1}/v1/service-records?status=submitted", headers=admin
        ).json()
        assert len(waiting["items"]) == 1

        # A newcomer signs in to the pages with a demo login, as each role goes home.
        homes = {
            "resident": "/me",
            "merchant": "/counter",
            "admin": "/staff",
            "recorder": "/org",
            "auditor": "/staff",
            "district_admin": "/district",
        }
        assert set(keys["logins"]) == set(homes)
        for role, login in keys["logins"].items():
            with httpx.Client(base_url=f"http://127.0.0.1:{port1}") as phone:
                form = phone.get("/sign-in")
                token = form.text.split('name="_csrf_token" value="', 1)[1].split('"', 1)[0]
                signed = phone.post(
                    "/sign-in",
                    data={"_csrf_token": token, "login": login["login"], "password": login["password"]},
                )
                assert signed.status_code == 303 and signed.headers["location"] == homes[role], (
                    role,
                    signed.text,
                )

        # The integrator of the running service logs the demo transactions within the
        # merge delay, and their receipts verify offline with the key folder serve made.
        entries = httpx.get(
            f"http://127.0.0.1:{port1}/v1/accounts/{community['accounts']['fund']['POINT']}/entries",
            headers=admin,
        ).json()["items"]
        receipt_url = f"http://127.0.0.1:{port1}/v1/transactions/{entries[0]['transaction_id']}/receipt"
        deadline = time.monotonic() + 5
        receipt = httpx.get(receipt_url, headers=admin).json()
        while "log" not in receipt and time.monotonic() < deadline:
            time.sleep(0.2)
            receipt = httpx.get(receipt_url, headers=admin).json()
        assert "log" in receipt, receipt
        (tmp_path / "receipt.json").write_text(json.dumps(receipt))
        env_offline = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
        env_offline["TIMEBANK_DATA_DIR"] = str(data_dir)
        verified = subprocess.run(
            [sys.executable, "-m", "timebank.cli", "verify", str(tmp_path / "receipt.json")],
            env=env_offline,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert verified.returncode == 0 and "receipt verified" in verified.stdout, (
            verified.stdout + verified.stderr
        )

        # serve's worker runs the scheduled jobs: each job's first period, once
        deadline = time.monotonic() + 20
        jobs: set[str] = set()
        while time.monotonic() < deadline and len(jobs) < 9:
            runs = httpx.get(f"http://127.0.0.1:{port1}/v1/jobs", headers=admin).json()["items"]
            jobs = {r["job"] for r in runs if r["status"] == "done"}
            time.sleep(0.3)
        assert jobs == {
            "points-expiry",
            "expiry-reminders",
            "activity-reminders",
            "hold-timeouts",
            "webhook-deliveries",
            "log-checkpoints",
            "report-rollups",
            "audit",
            "idempotency-retention",
        }, runs
        assert [r["counts"]["ok"] for r in runs if r["job"] == "audit"] == [True]
        rewards = httpx.get(f"http://127.0.0.1:{port1}/v1/rewards", headers=admin).json()["items"]
        assert sorted(r["title"] for r in rewards) == sorted(["十斤大米", "食用油一桶", "理发一次"])

        # Another command on the same data folder while serve runs.
        env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
        env["TIMEBANK_DATA_DIR"] = str(data_dir)
        created = subprocess.run(
            [sys.executable, "-m", "timebank.cli", "community", "create", "--name", "第二社区"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert created.returncode == 0, created.stderr
        new_key = json.loads(created.stdout)["admin_key"]
        audit = subprocess.run(
            [sys.executable, "-m", "timebank.cli", "audit"],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert audit.returncode == 0, audit.stdout + audit.stderr

        # A second instance side by side on the same data: no second demo, same data.
        second = start_serve(data_dir, port2)
        wait_ready(port2, second)
        r = httpx.get(
            f"http://127.0.0.1:{port2}/v1/community", headers={"Authorization": f"Bearer {new_key}"}
        )
        assert r.json()["name"] == "第二社区"
        stop(second)
        second = None
        # The first keeps serving after the second left (the shared server stays up).
        assert httpx.get(f"http://127.0.0.1:{port1}/v1/community", headers=admin).status_code == 200
        # Its first words told a newcomer where to sign in, and with what.
        printed = stop(first)
        first = None
        assert f"sign in at http://127.0.0.1:{port1}/sign-in" in printed, printed
        # ... and ended by pointing at the sign-in page and the tour (README, "A short tour").
        words = printed[: printed.index("next: ")].splitlines()[-1]
        assert words.startswith("  demo resident key: "), printed
        assert f".venv/bin/timebank tour --url http://127.0.0.1:{port1}" in printed
        for login in keys["logins"].values():
            assert f"{login['login']}" in printed and login["password"] in printed
    finally:
        for proc in (second, first):
            if proc is not None:
                stop(proc)
    # The last process to leave stops the embedded server.
    deadline = time.monotonic() + 15
    while postgres_running_in(data_dir / "pg") and time.monotonic() < deadline:
        time.sleep(0.3)
    assert not postgres_running_in(data_dir / "pg")

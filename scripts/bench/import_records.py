#!/usr/bin/env python
"""Import benchmark: 10,000 service records from CSV on the embedded database.

    .venv/bin/python scripts/bench/import_records.py [--rows 10000] [--members 2000]

Makes a fresh TIMEBANK_DATA_DIR, a community, an organisation and ``--members``
members, writes a CSV of ``--rows`` records (Chinese column names, UTF-8 with BOM,
about five records per member on different days), then times:

1. ``POST /v1/service-records/import`` against ``timebank serve`` (one request);
2. the same file again (every row is a duplicate: nothing is written twice);
3. ``timebank import records`` (the CLI) with a second file of new records.

The issue's target: 10,000 rows in under 30 s. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from datetime import date, timedelta
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402

from timebank import db  # noqa: E402
from timebank.community.models import PartyKind  # noqa: E402
from timebank.community.service import create_party  # noqa: E402
from timebank.settings import Settings  # noqa: E402

HEADER = "\ufeff志愿者编号,活动名称,服务类别,服务地点,开始时间,结束时间,服务对象,服务内容,记录编号\n"
ACTIVITIES = [("陪老人聊天", "志愿服务"), ("邻里修水管", "邻里互助"), ("日间照料送餐", "日间照料"),
              ("法律咨询", "法律援助"), ("广场舞教学", "文体健康")]


def make_csv(rows: int, members: int, first_day: date, seed: int, prefix: str) -> bytes:
    rnd = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        member = i % members
        day = first_day + timedelta(days=i // members)
        start = 8 + rnd.randrange(0, 10)
        activity, category = rnd.choice(ACTIVITIES)
        lines.append(f"M{member:05d},{activity},{category},华锦社区活动室,{day} {start:02d}:00,"
                     f"{day} {start + 1 + rnd.randrange(0, 3):02d}:{rnd.choice(['00', '30'])},,,{prefix}{i}\n")
    return "".join(lines).encode("utf-8")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=2_000)
    args = parser.parse_args()
    data_dir = Path(tempfile.mkdtemp(prefix="tb-bench-import-"))
    env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
    env.update(TIMEBANK_DATA_DIR=str(data_dir), TIMEBANK_LOG_LEVEL="WARNING", TIMEBANK_DEMO="0")
    settings = Settings(data_dir=data_dir, log_level="WARNING", demo=False)
    serve = None
    try:
        url = db.resolve_database_url(settings)
        created = json.loads(subprocess.run([sys.executable, "-m", "timebank.cli", "community", "create", "--name",
                                             "导入测试社区"], env=env, capture_output=True, text=True, check=True).stdout)
        community_id, admin = created["community_id"], created["admin_key"]

        async def parties() -> str:
            engine = db.create_engine(url, settings)
            async with engine.begin() as conn:
                import uuid

                cid = uuid.UUID(community_id)
                org = await create_party(conn, cid, PartyKind.ORGANISATION, "华锦志愿服务队")
                for m in range(args.members):
                    await create_party(conn, cid, PartyKind.MEMBER, f"志愿者{m}", f"M{m:05d}")
            await engine.dispose()
            return org["id"]

        org_id = asyncio.run(parties())
        port = free_port()
        serve = subprocess.Popen([sys.executable, "-m", "timebank.cli", "serve", "--no-demo", "--port", str(port)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {admin}", "Content-Type": "text/csv"}
        first = make_csv(args.rows, args.members, date(2026, 1, 5), 1, "A")
        results = []
        for label, body in (("API, new rows", first), ("API, same file again", first)):
            t0 = time.perf_counter()
            r = httpx.post(f"{base}/v1/service-records/import?organisation_id={org_id}", content=body,
                           headers=headers, timeout=600)
            took = time.perf_counter() - t0
            r.raise_for_status()
            out = r.json()
            written = sum(1 for a in out["accepted"] if not a["duplicate"])
            results.append((label, took, written, len(out["accepted"]) - written, len(out["rejected"])))
        path = data_dir / "second.csv"
        path.write_bytes(make_csv(args.rows, args.members, date(2026, 6, 1), 2, "B"))
        t0 = time.perf_counter()
        cli = subprocess.run([sys.executable, "-m", "timebank.cli", "import", "records", str(path), "--community",
                              community_id, "--organisation", org_id], env=env, capture_output=True, text=True,
                             check=True)
        took = time.perf_counter() - t0
        summary = json.loads(cli.stdout)
        results.append(("CLI, new rows", took, summary["accepted"], summary["duplicates"], len(summary["rejected"])))
        print(f"{args.rows} rows, {args.members} members, embedded PostgreSQL, {os.cpu_count()} cores")
        print(f"{'run':24} {'seconds':>8} {'rows/s':>8} {'written':>8} {'duplicate':>9} {'rejected':>8}")
        for label, took, written, dup, rejected in results:
            print(f"{label:24} {took:8.1f} {args.rows / took:8.0f} {written:8} {dup:9} {rejected:8}")
        worst = max(took for _, took, *_ in results)
        print(("met" if worst < 30 else "missed") + f"   {args.rows} rows in under 30 s: slowest {worst:.1f} s")
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(30)
        db.stop_embedded()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

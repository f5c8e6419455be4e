#!/usr/bin/env python
"""Import benchmark: 10,000 service records from CSV on the embedded database.

    .venv/bin/python scripts/bench/import_records.py [--rows 10000] [--members 2000]
    .venv/bin/python scripts/bench/import_records.py --rows 20000 --members 1 --per-day 10

Makes a fresh TIMEBANK_DATA_DIR, a community, an organisation and ``--members``
members, writes a CSV of ``--rows`` records (Chinese column names, UTF-8 with BOM),
then times:

1. ``POST /v1/service-records/import`` against ``timebank serve`` (one request);
2. the same file again (every row is a duplicate: nothing is written twice);
3. ``timebank import records`` (the CLI) with a second file of new records.

Records: ``--per-day`` a day per member, back to back from 08:00 (an hour each; with
1, the default, one of 1 to 3.5 h at a random hour), member after member, day after
day, ending before today. ``--members 1 --per-day 10`` is one volunteer's 20,000
records over 2,000 days: the overlap and daily-cap checks against everything the
volunteer has. During each API import another process asks ``GET /health/live``
every 20 ms and the slowest answer is printed: the import must not stall the service.

Targets: 10,000 rows in under 30 s (issue 5); 20,000 rows of one volunteer in under
15 s, /health/live answering within 200 ms meanwhile (issue 12). Results:
docs/benchmarks.md.
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

from timebank import db, embedded  # noqa: E402
from timebank.community.service import create_party  # noqa: E402
from timebank.core.roles import PartyKind  # noqa: E402
from timebank.core.settings import Settings  # noqa: E402

HEADER = "\ufeff志愿者编号,活动名称,服务类别,服务地点,开始时间,结束时间,服务对象,服务内容,记录编号\n"
ACTIVITIES = [
    ("陪老人聊天", "志愿服务"),
    ("邻里修水管", "邻里互助"),
    ("日间照料送餐", "日间照料"),
    ("法律咨询", "法律援助"),
    ("广场舞教学", "文体健康"),
]


def days_needed(rows: int, members: int, per_day: int) -> int:
    return -(-rows // (members * per_day))


def make_csv(rows: int, members: int, first_day: date, seed: int, prefix: str, per_day: int = 1) -> bytes:
    rnd = random.Random(seed)
    lines = [HEADER]
    for i in range(rows):
        slot, member = divmod(i, members)
        day = first_day + timedelta(days=slot // per_day)
        activity, category = rnd.choice(ACTIVITIES)
        if per_day == 1:
            start = 8 + rnd.randrange(0, 10)
            times = (
                f"{day} {start:02d}:00,{day} {start + 1 + rnd.randrange(0, 3):02d}:{rnd.choice(['00', '30'])}"
            )
        else:  # back to back, an hour each
            start = 8 + slot % per_day
            times = f"{day} {start:02d}:00,{day} {start + 1:02d}:00"
        lines.append(f"M{member:05d},{activity},{category},华锦社区活动室,{times},,,{prefix}{i}\n")
    return "".join(lines).encode("utf-8")


PROBE = """
import sys, threading, time, httpx
stop = threading.Event()
threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
worst, count = 0.0, 0
with httpx.Client(base_url=sys.argv[1], timeout=60) as client:
    while not stop.is_set():
        t0 = time.perf_counter()
        client.get("/health/live").raise_for_status()
        worst, count = max(worst, time.perf_counter() - t0), count + 1
        stop.wait(0.02)
print(worst, count)
"""


class LivenessProbe:
    """GET /health/live every 20 ms, the slowest answer. From a process of its own: in
    this one, its thread would wait for the interpreter while the import's answer (megabytes
    of JSON) is read, and measure that instead of the service."""

    def __init__(self, base: str) -> None:
        self.base, self.worst, self.count = base, 0.0, 0

    def __enter__(self) -> LivenessProbe:
        self._proc = subprocess.Popen(
            [sys.executable, "-c", PROBE, self.base], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )
        time.sleep(0.5)  # started and polling
        return self

    def __exit__(self, *exc: object) -> None:
        out, _ = self._proc.communicate("", timeout=60)
        worst, count = out.split()
        self.worst, self.count = float(worst), int(count)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=10_000)
    parser.add_argument("--members", type=int, default=2_000)
    parser.add_argument(
        "--per-day",
        type=int,
        default=1,
        choices=range(1, 13),
        metavar="1-12",
        help="records a day per member (back to back, an hour each, from 08:00)",
    )
    args = parser.parse_args()
    span = days_needed(args.rows, args.members, args.per_day)
    # Two files (API, then CLI) one after the other, both over before today.
    first_days = [date.today() - timedelta(days=2 * span + 10), date.today() - timedelta(days=span + 5)]
    data_dir = Path(tempfile.mkdtemp(prefix="tb-bench-import-"))
    env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
    env.update(TIMEBANK_DATA_DIR=str(data_dir), TIMEBANK_LOG_LEVEL="WARNING", TIMEBANK_DEMO="0")
    settings = Settings(data_dir=data_dir, log_level="WARNING", demo=False)
    serve = None
    try:
        url = db.resolve_database_url(settings)
        created = json.loads(
            subprocess.run(
                [sys.executable, "-m", "timebank.cli", "community", "create", "--name", "导入测试社区"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        )
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
        serve = subprocess.Popen(
            [sys.executable, "-m", "timebank.cli", "serve", "--no-demo", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        base = f"http://127.0.0.1:{port}"
        for _ in range(300):
            try:
                if httpx.get(f"{base}/health/ready").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        headers = {"Authorization": f"Bearer {admin}", "Content-Type": "text/csv"}
        first = make_csv(args.rows, args.members, first_days[0], 1, "A", args.per_day)
        results = []
        for label, body in (("API, new rows", first), ("API, same file again", first)):
            with LivenessProbe(base) as probe:
                t0 = time.perf_counter()
                r = httpx.post(
                    f"{base}/v1/service-records/import?organisation_id={org_id}",
                    content=body,
                    headers=headers,
                    timeout=600,
                )
                took = time.perf_counter() - t0
            r.raise_for_status()
            out = r.json()
            written = sum(1 for a in out["accepted"] if not a["duplicate"])
            results.append(
                (
                    label,
                    took,
                    written,
                    len(out["accepted"]) - written,
                    len(out["rejected"]),
                    f"{probe.worst * 1000:.0f} ms ({probe.count})",
                )
            )
        path = data_dir / "second.csv"
        path.write_bytes(make_csv(args.rows, args.members, first_days[1], 2, "B", args.per_day))
        t0 = time.perf_counter()
        cli = subprocess.run(
            [
                sys.executable,
                "-m",
                "timebank.cli",
                "import",
                "records",
                str(path),
                "--community",
                community_id,
                "--organisation",
                org_id,
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        took = time.perf_counter() - t0
        summary = json.loads(cli.stdout)
        results.append(
            ("CLI, new rows", took, summary["accepted"], summary["duplicates"], len(summary["rejected"]), "-")
        )
        print(
            f"{args.rows} rows, {args.members} members, {args.per_day} a day each ({span} days), "
            f"{len(first):,} bytes, embedded PostgreSQL, {os.cpu_count()} cores"
        )
        print(
            f"{'run':24} {'seconds':>8} {'rows/s':>8} {'written':>8} {'duplicate':>9} {'rejected':>8}  "
            "slowest /health/live (answers)"
        )
        for label, took, written, dup, rejected, live in results:
            print(f"{label:24} {took:8.1f} {args.rows / took:8.0f} {written:8} {dup:9} {rejected:8}  {live}")
        worst = max(took for _, took, *_ in results)
        print(
            ("met" if worst < 30 else "missed") + f"   {args.rows} rows in under 30 s: slowest {worst:.1f} s"
        )
        api = [r for r in results if r[0].startswith("API")]
        api_worst = max(took for _, took, *_ in api)
        live_worst = max(float(r[5].split()[0]) for r in api)
        print(
            ("met" if api_worst < 15 and live_worst < 200 else "missed")
            + f"   API import under 15 s with /health/live within 200 ms: {api_worst:.1f} s, {live_worst:.0f} ms"
        )
    finally:
        if serve is not None:
            serve.terminate()
            serve.wait(30)
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

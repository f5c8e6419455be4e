#!/usr/bin/env python
"""Points expiry benchmark: 100,000 lots of 10,000 members expire in one run.

    .venv/bin/python scripts/bench/expiry.py [--members 10000] [--lots-per-member 10]

Makes a fresh TIMEBANK_DATA_DIR with the embedded PostgreSQL, a community whose
members each get ``--lots-per-member`` points lots (expiring 1, 2, ... months after
today), spends a little of a third of the members' points (so some lots are partly
spent), then times one run of the daily points-expiry job as of a day after every
lot has expired (``timebank jobs run points-expiry --as-of``, in-process), and
checks that every lot is empty, each expired once, and the audit is clean.

The issue's target: under 60 s. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from rich.console import Console  # noqa: E402
from sqlalchemy import text  # noqa: E402

from timebank import db, embedded  # noqa: E402
from timebank.audits import run_audit  # noqa: E402
from timebank.core.clock import AsOf  # noqa: E402
from timebank.core.settings import Settings  # noqa: E402
from timebank.jobs.definitions import Context, run_job  # noqa: E402
from timebank.log import keys  # noqa: E402
from timebank.log import registry as log_registry  # noqa: E402
from timebank.points.seed import donate, seed_lots  # noqa: E402


async def main(members: int, per_member: int, console: Console) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="tb-bench-expiry-"))
    settings = Settings(data_dir=data_dir, log_level="WARNING", demo=False, scheduler=False)
    try:
        url = await asyncio.to_thread(db.resolve_database_url, settings)
        await asyncio.to_thread(db.upgrade, url)
        keys.generate(settings.key_dir)
        signer = keys.load_signer(settings.key_dir)
        engine = db.create_engine(url, settings)
        async with engine.begin() as conn:
            await log_registry.register_keys(conn, keys.read_keyring(settings.key_dir))
        t = time.perf_counter()
        seeded = await seed_lots(engine, members=members, months=list(range(1, per_member + 1)), points=10)
        cid = seeded["community_id"]
        await donate(engine, cid, seeded["accounts"][::3], 15)  # a third spent 15: lots partly spent
        console.print(
            f"seeded {members * per_member:,} lots of {members:,} members in {time.perf_counter() - t:.1f} s"
        )
        day = (datetime.now(ZoneInfo("Asia/Shanghai")) + timedelta(days=31 * per_member + 2)).date()
        ctx = Context(engine, signer, settings.log_origin, AsOf(day))
        t = time.perf_counter()
        (outcome,) = await run_job(ctx, "points-expiry")
        elapsed = time.perf_counter() - t
        console.print(f"points-expiry as of {day}: {outcome.status}, {outcome.counts}")
        async with engine.connect() as conn:
            left = (
                await conn.execute(
                    text("SELECT count(*) FROM points_lots WHERE community_id = :c AND remaining > 0"),
                    {"c": cid},
                )
            ).scalar_one()
            twice = (
                await conn.execute(
                    text(
                        "SELECT count(*) FROM (SELECT c.lot_id FROM points_consumptions c JOIN transactions t "
                        "ON t.id = c.transaction_id WHERE t.kind = 'expiry' GROUP BY c.lot_id HAVING count(*) > 1) x"
                    )
                )
            ).scalar_one()
        report = await run_audit(engine)
        await engine.dispose()
        ok = outcome.status == "done" and left == 0 and twice == 0 and report.ok
        console.print(
            f"[bold]{members * per_member:,} lots expired in {elapsed:.1f} s[/bold] "
            f"({members * per_member / elapsed:,.0f} lots/s); lots left: {left}, expired twice: {twice}, "
            f"audit {'clean' if report.ok else 'FAILED'}"
        )
        console.print(("met" if elapsed < 60 else "missed") + f" target < 60 s: {elapsed:.1f} s")
        return 0 if ok and elapsed < 60 else 1
    finally:
        embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--members", type=int, default=10_000)
    parser.add_argument("--lots-per-member", type=int, default=10)
    args = parser.parse_args()
    sys.exit(asyncio.run(main(args.members, args.lots_per_member, Console())))

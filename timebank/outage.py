"""When the database is unreachable: answer 503, say so once, heal by itself.

* ``database_unavailable(exc)`` tells an outage (connection refused or lost, the
  server starting up or shutting down, no connection free in time...) from a real
  bug (a syntax error, a violated constraint), looking through SQLAlchemy's and
  asyncpg's wrappers.
* ``errors.database_error_handler`` answers an outage with ``503
  application/problem+json`` (type ``.../problems/database-unavailable``) and a
  ``Retry-After`` header; anything else is an unexpected error (500, logged).
* ``STATE`` logs "database unreachable" at the first failure and "database reachable
  again" at the first success after it: one pair of lines per outage, per process,
  however many requests failed in between.
* ``watch(engine)`` makes an engine heal: a pooled connection found closed at
  checkout (the server restarted) is replaced, and the whole pool with it, before a
  request uses it; a fresh connection (or a checkout of one made since the outage
  began) ends the outage.
"""

from __future__ import annotations

import time
from typing import Any

import asyncpg
from sqlalchemy import event
from sqlalchemy import exc as sa_exc

from timebank import logs

# What a 503 asks clients to wait before trying again (the embedded server restarts
# in a second or two; a managed server's failover takes longer, and clients back off).
RETRY_AFTER_SECONDS = 2

# asyncpg errors that mean "no database to talk to", not "this request is wrong".
_UNAVAILABLE_ASYNCPG: tuple[type[BaseException], ...] = (
    asyncpg.PostgresConnectionError,  # SQLSTATE class 08: connection lost, refused, does not exist
    asyncpg.CannotConnectNowError,  # 57P03: the database system is starting up / shutting down / in recovery
    asyncpg.AdminShutdownError,  # 57P01: terminating connection due to administrator command
    asyncpg.CrashShutdownError,  # 57P02: terminating connection because of crash of another server process
    asyncpg.TooManyConnectionsError,  # 53300: sorry, too many clients already
    asyncpg.ReadOnlySQLTransactionError,  # 25006: writes reached a standby (a failover under way)
)
# What asyncpg says when a connection is used after the server sent it a FATAL error
# while it was idle (a server shutting down or crashing) but before the connection saw
# the socket close: the protocol is still consuming that error (its state 2).
_DROPPED_WHILE_IDLE = "another operation (2) is in progress"
# Modules whose OSErrors are about reaching the database (a socket that is gone, say).
_DRIVER_MODULES = ("asyncpg", "sqlalchemy")


def _raised_by_driver(exc: BaseException) -> bool:
    tb = exc.__traceback__
    while tb is not None:
        module = tb.tb_frame.f_globals.get("__name__", "")
        if module.startswith(_DRIVER_MODULES):
            return True
        tb = tb.tb_next
    return False


def _unavailable_itself(exc: BaseException) -> bool:
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True  # SQLAlchemy saw a disconnect (and has thrown the connection away)
    if isinstance(exc, (sa_exc.TimeoutError, sa_exc.DisconnectionError)):
        return True  # no pooled connection free in time / none could be had
    if isinstance(exc, _UNAVAILABLE_ASYNCPG):
        return True
    if isinstance(exc, asyncpg.InterfaceError) and "connection is closed" in str(exc):
        return True
    if isinstance(exc, asyncpg.InternalClientError) and _DROPPED_WHILE_IDLE in str(exc):
        return True
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True  # refused, reset, broken pipe; a connect that timed out
    return isinstance(exc, OSError) and _raised_by_driver(exc)  # e.g. the server's socket file is gone


def database_unavailable(exc: BaseException) -> bool:
    """Whether ``exc`` (or what it wraps) says the database cannot be reached right now."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _unavailable_itself(current):
            return True
        orig = getattr(current, "orig", None)  # SQLAlchemy's wrapper → the driver's error
        todo.append(orig if isinstance(orig, BaseException) else None)
        todo.append(current.__cause__)
        if not current.__suppress_context__:
            todo.append(current.__context__)
    return False


class DatabaseState:
    """Up or down, as this process last saw it; logs each change once."""

    def __init__(self) -> None:
        self.down_since: float | None = None
        self.down_at = 0.0  # the same moment by the wall clock (pool records keep that)
        self.failures = 0  # requests (or background passes) that failed for it in this outage

    @property
    def down(self) -> bool:
        return self.down_since is not None

    def failed(self, exc: BaseException) -> None:
        self.failures += 1
        if self.down_since is None:
            self.down_since, self.down_at = time.monotonic(), time.time()
            logs.log.error(
                "database unreachable",
                error=type(exc).__name__,
                detail=str(exc)[:300],
                retry_after=RETRY_AFTER_SECONDS,
            )

    def ok(self) -> None:
        if self.down_since is None:
            return
        seconds = round(time.monotonic() - self.down_since, 2)
        failures, self.down_since, self.failures = self.failures, None, 0
        logs.log.warning("database reachable again", down_seconds=seconds, failures=failures)


STATE = DatabaseState()


def report(exc: BaseException) -> bool:
    """For background loops (integrator, scheduler): if ``exc`` is an outage, note it
    (logged once per outage) and return True; else return False, to log it as usual."""
    if not database_unavailable(exc):
        return False
    STATE.failed(exc)
    return True


def _checkout(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    driver = getattr(dbapi_connection, "driver_connection", None)
    is_closed = getattr(driver, "is_closed", None)
    if is_closed is not None and is_closed():
        # The server went away since this connection was last used (a restart): no
        # round trip needed to know. The pool retries with a new connection, and
        # recycles every connection older than now (they are as dead as this one).
        raise sa_exc.InvalidatePoolError("pooled connection found closed")
    # A connection made before the outage began proves nothing yet: after the postmaster
    # is killed its old backends may hold their sockets a moment longer, so it can look
    # alive and fail at its first query. One made since (it connected) does.
    if STATE.down and record.starttime >= STATE.down_at:
        STATE.ok()


def _connected(dbapi_connection: Any, record: Any) -> None:
    if STATE.down:
        STATE.ok()


def watch(engine: Any) -> None:
    """Heal ``engine`` (an AsyncEngine or Engine) after an outage; see the module's doc."""
    pool = getattr(engine, "sync_engine", engine).pool
    event.listen(pool, "checkout", _checkout)
    event.listen(pool, "connect", _connected)

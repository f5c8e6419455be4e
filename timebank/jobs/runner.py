"""Running a job once per (job, scope, period), whatever the number of replicas.

A run of one job for one scope (a community, or ``all``) holds a PostgreSQL session
advisory lock on its own connection for as long as it works: a second process that
gets there at the same moment skips it, and a process that dies releases it with its
connection. Its row in ``job_runs`` says what happened; the unique (job, scope,
period) makes the period's run happen once: a finished run is never repeated, a
failed or interrupted one (status ``running`` while nobody holds the lock) is taken
over by the next tick and finishes the work. Every job is idempotent on its own
(e.g. points expiry reads what is still left to expire), so a takeover never does
anything twice.
"""

from __future__ import annotations

import os
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank import logs
from timebank.jobs import queries

WORKER = f"{socket.gethostname()}:{os.getpid()}"

Work = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Outcome:
    job: str
    scope: str
    period: str
    status: str  # done, failed, skipped (done before), busy (another process runs it)
    counts: dict[str, Any]


async def _work_and_record(conn: AsyncConnection, job: str, scope: str, period: str, work: Work) -> Outcome:
    """Mark the run running, do the work, record how it ended (a failure is recorded, not raised)."""
    await queries.start_run(conn, job, scope, period, WORKER)
    await conn.commit()
    started = time.monotonic()
    try:
        counts = await work()
        outcome, error = "done", None
    except Exception as exc:
        counts, outcome = {}, "failed"
        error = "".join(traceback.format_exception_only(exc)).strip()[:2000]
        logs.log.error("job failed", job=job, scope=scope, period=period, exc_info=exc)
    counts = {**counts, "seconds": round(time.monotonic() - started, 3)}
    await queries.finish_run(conn, job, scope, period, outcome, counts, error)
    await conn.commit()
    if outcome == "done":
        logs.log.info("job done", job=job, scope=scope, period=period, **counts)
    return Outcome(job, scope, period, outcome, counts)


async def run_once(engine: AsyncEngine, job: str, scope: str, period: str, work: Work) -> Outcome:
    lock_name = f"timebank.job:{job}:{scope}"
    async with engine.connect() as conn:
        locked = await queries.try_lock(conn, lock_name)
        await conn.commit()
        if not locked:
            return Outcome(job, scope, period, "busy", {})
        try:
            if await queries.run_status(conn, job, scope, period) == "done":
                await conn.commit()
                return Outcome(job, scope, period, "skipped", {})
            return await _work_and_record(conn, job, scope, period, work)
        finally:
            await queries.unlock(conn, lock_name)
            await conn.commit()

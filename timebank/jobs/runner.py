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

import json
import os
import socket
import time
import traceback
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank import logs

WORKER = f"{socket.gethostname()}:{os.getpid()}"

Work = Callable[[], Awaitable[dict[str, Any]]]


@dataclass(frozen=True)
class Outcome:
    job: str
    scope: str
    period: str
    status: str  # done, failed, skipped (done before), busy (another process runs it)
    counts: dict[str, Any]


async def run_once(engine: AsyncEngine, job: str, scope: str, period: str, work: Work) -> Outcome:
    lock_name = f"timebank.job:{job}:{scope}"
    async with engine.connect() as conn:
        locked = (
            await conn.execute(text("SELECT pg_try_advisory_lock(hashtextextended(:n, 0))"), {"n": lock_name})
        ).scalar_one()
        await conn.commit()
        if not locked:
            return Outcome(job, scope, period, "busy", {})
        try:
            status = (
                await conn.execute(
                    text("SELECT status FROM job_runs WHERE job = :j AND scope = :s AND period = :p"),
                    {"j": job, "s": scope, "p": period},
                )
            ).scalar_one_or_none()
            if status == "done":
                await conn.commit()
                return Outcome(job, scope, period, "skipped", {})
            await conn.execute(
                text(
                    "INSERT INTO job_runs (job, scope, period, status, worker) VALUES (:j, :s, :p, 'running', :w) "
                    "ON CONFLICT (job, scope, period) DO UPDATE SET status = 'running', "
                    "attempts = job_runs.attempts + 1, "
                    "worker = EXCLUDED.worker, started_at = clock_timestamp(), finished_at = NULL, error = NULL"
                ),
                {"j": job, "s": scope, "p": period, "w": WORKER},
            )
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
            await conn.execute(
                text(
                    "UPDATE job_runs SET status = :st, finished_at = clock_timestamp(), counts = CAST(:c AS jsonb), "
                    "error = :e WHERE job = :j AND scope = :s AND period = :p"
                ),
                {"st": outcome, "c": json.dumps(counts), "e": error, "j": job, "s": scope, "p": period},
            )
            await conn.commit()
            if outcome == "done":
                logs.log.info("job done", job=job, scope=scope, period=period, **counts)
            return Outcome(job, scope, period, outcome, counts)
        finally:
            await conn.execute(text("SELECT pg_advisory_unlock(hashtextextended(:n, 0))"), {"n": lock_name})
            await conn.commit()

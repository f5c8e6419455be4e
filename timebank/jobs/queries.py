"""Every read and write of ``job_runs``, and the advisory locks a run holds.

Typed SQLAlchemy Core statements (``select()``, ``insert()``, ``update()``) on the
SQLModel table of ``models.py``, run on an ``AsyncConnection``; reads return ``Row``
objects whose attributes are the model's columns.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, func, or_, select, union_all, update
from sqlalchemy.dialects.postgresql import distinct_on
from sqlalchemy.dialects.postgresql import insert as upsert
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.jobs.models import JobRun


def _lock_key(name: str) -> Any:
    return func.hashtextextended(name, 0)


async def try_lock(conn: AsyncConnection, name: str) -> bool:
    """A session advisory lock on ``name``, if nobody holds it."""
    return bool((await conn.execute(select(func.pg_try_advisory_lock(_lock_key(name))))).scalar_one())


async def unlock(conn: AsyncConnection, name: str) -> None:
    await conn.execute(select(func.pg_advisory_unlock(_lock_key(name))))


def _run(job: str, scope: str, period: str) -> Any:
    return (JobRun.job == job) & (JobRun.scope == scope) & (JobRun.period == period)


async def run_status(conn: AsyncConnection, job: str, scope: str, period: str) -> str | None:
    return (await conn.execute(select(JobRun.status).where(_run(job, scope, period)))).scalar_one_or_none()


async def start_run(conn: AsyncConnection, job: str, scope: str, period: str, worker: str) -> None:
    """The period's run is running (again: a failed or interrupted one is taken over)."""
    statement = upsert(JobRun).values(job=job, scope=scope, period=period, status="running", worker=worker)
    await conn.execute(
        statement.on_conflict_do_update(
            index_elements=["job", "scope", "period"],
            set_={
                "status": "running",
                "attempts": JobRun.attempts + 1,
                "worker": statement.excluded.worker,
                "started_at": func.clock_timestamp(),
                "finished_at": None,
                "error": None,
            },
        )
    )


async def finish_run(
    conn: AsyncConnection,
    job: str,
    scope: str,
    period: str,
    status: str,
    counts: dict[str, Any],
    error: str | None,
) -> None:
    await conn.execute(
        update(JobRun)
        .where(_run(job, scope, period))
        .values(status=status, finished_at=func.clock_timestamp(), counts=counts, error=error)
    )


async def recent_runs(
    conn: AsyncConnection, community_id: uuid.UUID, job: str | None, limit: int
) -> Sequence[Row[Any]]:
    """The last runs of the community's and the global jobs (of one job, if given), newest first."""
    query = select(JobRun).where(or_(JobRun.scope == "all", JobRun.scope == str(community_id)))
    if job is not None:
        query = query.where(JobRun.job == job)
    return (await conn.execute(query.order_by(JobRun.started_at.desc(), JobRun.id.desc()).limit(limit))).all()


async def last_runs(conn: AsyncConnection, scopes: dict[str, str]) -> dict[str, Row[Any]]:
    """The last run of each job in its scope (``{job: scope}``), by job (none if it never ran).
    One statement: a read of index ``job_runs_job`` per job."""
    if not scopes:
        return {}
    parts = [
        select(JobRun)
        .where(JobRun.job == job, JobRun.scope == scope)
        .order_by(JobRun.started_at.desc())
        .limit(1)
        for job, scope in scopes.items()
    ]
    return {r.job: r for r in await conn.execute(union_all(*parts))}


async def last_finished(conn: AsyncConnection, job: str) -> Row[Any] | None:
    """The job's last run that is no longer running (done or failed)."""
    query = (
        select(JobRun)
        .where(JobRun.job == job, JobRun.status != "running")
        .order_by(JobRun.started_at.desc())
        .limit(1)
    )
    return (await conn.execute(query)).first()


async def last_successes(conn: AsyncConnection) -> Sequence[Row[Any]]:
    """For each (job, scope): when its last successful run finished, and its counts."""
    query = (
        select(JobRun.job, JobRun.scope, JobRun.finished_at, JobRun.counts)
        .where(JobRun.status == "done")
        .ext(distinct_on(JobRun.job, JobRun.scope))
        .order_by(JobRun.job, JobRun.scope, JobRun.finished_at.desc())
    )
    return (await conn.execute(query)).all()


async def runs_started_within(conn: AsyncConnection, period: timedelta) -> Sequence[Row[Any]]:
    """How many runs of each job started in the last ``period``, by status."""
    query = (
        select(JobRun.job, JobRun.status, func.count().label("n"))
        .where(JobRun.started_at > func.now() - period)
        .group_by(JobRun.job, JobRun.status)
    )
    return (await conn.execute(query)).all()

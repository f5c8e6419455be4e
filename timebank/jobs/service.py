"""Reading the scheduled jobs' runs (for admins, auditors and the readiness probe)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest
from timebank.jobs import queries
from timebank.jobs.definitions import JOBS


def run_view(row: Any) -> dict[str, Any]:
    """A run as a community's admin sees it. A global run's counts and error would tell
    about other communities: only its outcome, its time and the audit's verdict show."""
    own = row.scope != "all"
    counts = dict(row.counts) if own else {k: v for k, v in row.counts.items() if k in ("ok", "seconds")}
    error = row.error if own or row.error is None else "failed: see the service's logs"
    return {
        "job": row.job,
        "scope": row.scope,
        "period": row.period,
        "status": row.status,
        "attempts": row.attempts,
        "worker": row.worker,
        "started_at": rfc3339(row.started_at),
        "finished_at": None if row.finished_at is None else rfc3339(row.finished_at),
        "counts": counts,
        "error": error,
    }


async def recent_runs(
    conn: AsyncConnection, community_id: uuid.UUID, job: str | None, limit: int
) -> list[dict[str, Any]]:
    if job is not None and job not in JOBS:
        raise BadRequest(f"job is one of {', '.join(JOBS)}")
    rows = await queries.recent_runs(conn, community_id, job, limit)
    return [run_view(r) for r in rows]


async def last_audit(conn: AsyncConnection) -> dict[str, Any]:
    """The nightly audit's last finished result, for /health/ready."""
    row = await queries.last_finished(conn, "audit")
    if row is None:
        return {"status": "not run yet"}
    ok = row.status == "done" and row.counts.get("ok") is True
    return {
        "status": "ok" if ok else "failed",
        "period": row.period,
        "finished_at": rfc3339(row.finished_at),
        "failed_checks": row.counts.get("failed_checks", {}),
        **({"error": row.error} if row.error else {}),
    }


async def schedule(
    conn: AsyncConnection, community_id: uuid.UUID, zone: ZoneInfo, now: datetime
) -> list[dict[str, Any]]:
    """Every scheduled job as the community's staff sees it: its scope (``community``: this
    community's run; ``all``: one run for every community), its last run (``run_view``,
    None if it never ran) and when it runs next: ``due`` if the period ``now`` falls in
    has no finished run yet (the scheduler runs it at its next look, within
    ``every_seconds``), else ``next_run_at``, when the next period begins."""
    scopes = {name: str(community_id) if job.per_community else "all" for name, job in JOBS.items()}
    last = await queries.last_runs(conn, scopes)
    out = []
    for name, job in JOBS.items():
        local = now.astimezone(zone if job.per_community else UTC)
        row = last.get(name)
        done = row is not None and row.period == job.period(local) and row.status == "done"
        out.append(
            {
                "job": name,
                "scope": "community" if job.per_community else "all",
                "every_seconds": job.every_seconds,
                "last_run": None if row is None else run_view(row),
                "due": not done,
                "next_run_at": rfc3339(job.next_period_starts(local)) if done else None,
                "next_look_by": rfc3339(now + timedelta(seconds=job.every_seconds)),
            }
        )
    return out

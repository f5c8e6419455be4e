"""Reading the scheduled jobs' runs (for admins, auditors and the readiness probe)."""

from __future__ import annotations

import uuid
from typing import Any

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

"""The scheduled jobs: what each does, for which scope, and what its period is.

Daily jobs run per community, their period the community's local date (so a lot
expiring at local midnight in Asia/Shanghai expires in that day's run, wherever the
server's clock is). Minute jobs run for everything at once, their period the UTC
minute; the idempotency retention runs for everything once per UTC day. "Now" comes
from one injectable clock (``timebank.core.clock``); the ledger still stamps transactions
with the database's time and refuses to expire a hold before its database timeout,
whatever the clock says.
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank import logs
from timebank.activities.reminders import remind_upcoming
from timebank.community import queries as community_queries
from timebank.core.clock import SYSTEM_CLOCK, Clock
from timebank.core.settings import Settings
from timebank.jobs.runner import Outcome, run_once
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger
from timebank.ledger.idempotency import remove_expired
from timebank.log.keys import Signer
from timebank.notifications.service import remind_expiring
from timebank.notifications.webhooks import Webhook, deliver_due
from timebank.points.expiry import expire_points
from timebank.redemption.redemptions import expire_due
from timebank.reports.rollups import fold

# The nightly audit's day starts at 19:00 UTC, 03:00 in China Standard Time.
AUDIT_DAY_STARTS = timedelta(hours=19)


@dataclass
class Context:
    """What the jobs need: the database, the clock, the signer, the webhooks."""

    engine: AsyncEngine
    signer: Signer
    log_origin: str
    clock: Clock = SYSTEM_CLOCK
    webhooks: dict[str, Webhook] = field(default_factory=dict)
    http: httpx.AsyncClient | None = None
    idempotency_retention_days: int = 30


def job_context(
    engine: AsyncEngine, signer: Signer, settings: Settings, clock: Clock = SYSTEM_CLOCK
) -> Context:
    return Context(
        engine,
        signer,
        settings.log_origin,
        clock,
        {c: Webhook(h["url"], h["secret"]) for c, h in settings.webhooks.items()},
        idempotency_retention_days=settings.idempotency_retention_days,
    )


@dataclass(frozen=True)
class Job:
    name: str
    per_community: bool
    period: Callable[[datetime], str]  # the period "now" falls in (local time for per-community jobs)
    work: Callable[[Context, uuid.UUID | None, datetime], Awaitable[dict[str, Any]]]
    every_seconds: int  # how often the scheduler looks whether it is due
    # Asked for by hand (``timebank jobs run``), it runs every time, apart from the
    # once-per-period record the scheduler keeps (an operator re-checking after a repair
    # wants the answer now, not "skipped: the nightly run was fine").
    always_when_asked: bool = False

    def next_period_starts(self, now: datetime) -> datetime:
        """When the period after the one ``now`` falls in begins (the job is due again then;
        the scheduler runs it at its next look, within ``every_seconds``)."""
        return _NEXT_PERIOD[self.period](now)


def _day(now: datetime) -> str:
    return now.date().isoformat()


def _minute(now: datetime) -> str:
    return now.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")


def _audit_day(now: datetime) -> str:
    return (now.astimezone(UTC) - AUDIT_DAY_STARTS).date().isoformat()


def _next_day(now: datetime) -> datetime:
    return datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), now.tzinfo)


def _next_minute(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def _next_audit_day(now: datetime) -> datetime:
    day = date.fromisoformat(_audit_day(now)) + timedelta(days=1)
    return datetime.combine(day, datetime.min.time(), UTC) + AUDIT_DAY_STARTS


_NEXT_PERIOD: dict[Callable[[datetime], str], Callable[[datetime], datetime]] = {
    _day: _next_day,
    _minute: _next_minute,
    _audit_day: _next_audit_day,
}


async def _expiry(ctx: Context, community_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    assert community_id is not None
    return await expire_points(ctx.engine, community_id, now)


async def _reminders(ctx: Context, community_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    assert community_id is not None
    return await remind_expiring(ctx.engine, community_id, now)


async def _activity_reminders(ctx: Context, community_id: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    assert community_id is not None
    return await remind_upcoming(ctx.engine, community_id, now)


async def _hold_timeouts(ctx: Context, _: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    """Void every hold past its timeout: redemptions first (their stock and limits come
    back with them), then any other hold."""
    counts = {"redemptions": 0, "holds": 0}
    async with ctx.engine.connect() as conn:
        communities = await ledger_queries.communities_with_timed_out_holds(conn)
        await conn.rollback()
        for community_id in communities:
            async with conn.begin():
                counts["redemptions"] += await expire_due(conn, community_id)
            async with conn.begin():
                counts["holds"] += await ledger.expire_holds(conn, community_id)
    return counts


async def _checkpoints(ctx: Context, _: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    from timebank.log.integration import integrate_all

    done = await integrate_all(ctx.engine, ctx.signer, ctx.log_origin)
    return {"communities": len(done), "leaves": sum(d.added for d in done)}


async def _fold_rollups(ctx: Context, _: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    return await fold(ctx.engine)


async def _audit(ctx: Context, _: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    from timebank.audits import run_audit

    report = await run_audit(ctx.engine)
    failed = {name: len(rows) for name, rows in report.results.items() if rows}
    if failed:
        logs.log.error("AUDIT FAILED", failed_checks=failed)
    return {"ok": report.ok, "failed_checks": failed, **{f"rows.{k}": v for k, v in report.counts.items()}}


async def _webhooks(ctx: Context, _: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    counts = {"delivered": 0, "failed": 0}
    if not ctx.webhooks:
        return counts
    client = ctx.http or httpx.AsyncClient()
    try:
        for community_id, hook in ctx.webhooks.items():
            got = await deliver_due(ctx.engine, uuid.UUID(community_id), hook, now, client)
            counts = {k: counts[k] + got[k] for k in counts}
    finally:
        if ctx.http is None:
            await client.aclose()
    return counts


async def _idempotency_retention(ctx: Context, _: uuid.UUID | None, now: datetime) -> dict[str, Any]:
    """Remove Idempotency-Key answers past their retention (a replay after it is a new request)."""
    return await remove_expired(ctx.engine, now, ctx.idempotency_retention_days)


JOBS: dict[str, Job] = {
    job.name: job
    for job in (
        Job("points-expiry", True, _day, _expiry, 300),
        Job("expiry-reminders", True, _day, _reminders, 300),
        Job("activity-reminders", True, _day, _activity_reminders, 300),
        Job("hold-timeouts", False, _minute, _hold_timeouts, 60),
        Job("webhook-deliveries", False, _minute, _webhooks, 60),
        Job("log-checkpoints", False, _minute, _checkpoints, 60),
        Job("report-rollups", False, _minute, _fold_rollups, 60),
        Job("audit", False, _audit_day, _audit, 600, always_when_asked=True),
        Job("idempotency-retention", False, _day, _idempotency_retention, 3600),
    )
}


async def communities(engine: AsyncEngine) -> list[tuple[uuid.UUID, ZoneInfo]]:
    async with engine.connect() as conn:
        return [(r.id, ZoneInfo(r.timezone)) for r in await community_queries.all_communities(conn)]


async def run_job(ctx: Context, name: str, asked: bool = False) -> list[Outcome]:
    """Run one job now for every scope it has (each once per its period; ``asked``: by
    hand, and a job that always runs when asked runs without its period's record)."""
    job = JOBS[name]
    if asked and job.always_when_asked and not job.per_community:
        now = ctx.clock.now(UTC)
        counts = await job.work(ctx, None, now)
        return [Outcome(job.name, "all", job.period(now), "done", counts)]
    if not job.per_community:
        now = ctx.clock.now(UTC)
        return [
            await run_once(ctx.engine, job.name, "all", job.period(now), lambda: job.work(ctx, None, now))
        ]
    outcomes = []
    for community_id, tz in await communities(ctx.engine):
        now = ctx.clock.now(tz)

        async def work(c: uuid.UUID = community_id, n: datetime = now) -> dict[str, Any]:
            return await job.work(ctx, c, n)

        outcomes.append(await run_once(ctx.engine, job.name, str(community_id), job.period(now), work))
    return outcomes

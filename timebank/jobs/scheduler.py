"""APScheduler in the service's lifespan or in `timebank worker`: every job is looked
at every ``every_seconds`` and run when its period has no finished run yet.

Several processes may all run a scheduler (replicas, workers): the runner's locks
and the (job, scope, period) key let one of them do each period's run. ``stop``
stops looking and waits for the runs under way, so their locks are released cleanly.
"""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from apscheduler.schedulers.asyncio import AsyncIOScheduler

from timebank import logs, outage
from timebank.jobs.definitions import JOBS, Context, run_job

# Jobs at work at once in one process. Each holds a connection for its lock and uses
# one more for its work: a bound on what the scheduler takes from the pool.
CONCURRENT_JOBS = 3
CONNECTIONS_NEEDED = 2 * CONCURRENT_JOBS


class Scheduler:
    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx
        self._scheduler = AsyncIOScheduler(timezone=UTC)
        self._running: set[asyncio.Task[None]] = set()
        self._slots = asyncio.Semaphore(CONCURRENT_JOBS)

    def start(self) -> None:
        for job in JOBS.values():
            self._scheduler.add_job(
                self._tick,
                "interval",
                args=[job.name],
                seconds=job.every_seconds,
                id=job.name,
                max_instances=1,
                coalesce=True,
                next_run_time=datetime.now(UTC),
            )
        self._scheduler.start()

    async def _tick(self, name: str) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._running.add(task)  # type: ignore[arg-type]
        try:
            async with self._slots:
                await run_job(self.ctx, name)
        except Exception as exc:
            if not outage.report(exc):  # a database outage is logged once, not every tick
                logs.log.error("job tick failed", job=name, exc_info=exc)
        finally:
            self._running.discard(task)  # type: ignore[arg-type]

    async def stop(self) -> None:
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)

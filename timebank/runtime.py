"""A service process's background work, started and stopped in one place.

The log integrator and the scheduled jobs run in `timebank worker` (which `serve`
starts as a niced child) and, when settings ask for it, in the app's lifespan. Both
register the public signing keys first, so every receipt names a published key.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank import logs
from timebank.core.settings import Settings
from timebank.jobs.definitions import job_context
from timebank.jobs.scheduler import Scheduler
from timebank.log import registry as log_registry
from timebank.log.integrator import Integrator
from timebank.log.keys import Signer, read_keyring


async def register_keys(engine: AsyncEngine, settings: Settings) -> None:
    async with engine.begin() as conn:
        await log_registry.register_keys(conn, read_keyring(settings.key_dir))


@asynccontextmanager
async def background(engine: AsyncEngine, signer: Signer, settings: Settings) -> AsyncIterator[None]:
    """Integrate the log and run the jobs while the block runs (each only if settings say
    so); on the way out, stop taking work and wait for what is under way."""
    await register_keys(engine, settings)
    integrator = scheduler = None
    if settings.log_integrator:
        integrator = Integrator(engine, signer, settings.log_origin, settings.log_interval_ms / 1000)
        integrator.start()
    if settings.scheduler:
        scheduler = Scheduler(job_context(engine, signer, settings))
        scheduler.start()
    if integrator or scheduler:
        logs.log.info(
            "background work started", scheduler=settings.scheduler, integrator=settings.log_integrator
        )
    try:
        yield
    finally:
        if scheduler is not None:
            await scheduler.stop()
        if integrator is not None:
            await integrator.stop()

"""The long-running background commands (`worker`, `log integrate`) and `jobs run`.

`worker` and `log integrate` run ``runtime.background``, the same code the app's
lifespan runs: one place starts and stops the integrator and the scheduler.
"""

from __future__ import annotations

import asyncio
import sys
from typing import Any

import click

from timebank.cli.base import database, emit, main, open_engine, until_stopped
from timebank.core.settings import Settings, get_settings


async def _run_background(url: str, settings: Settings, pool_size: int, parent: int | None) -> None:
    from timebank.log.keys import load_signer
    from timebank.runtime import background

    signer = load_signer(settings.key_dir)
    async with open_engine(url, settings, pool_size) as engine, background(engine, signer, settings):
        await until_stopped(parent)


@main.group("log")
def log_group() -> None:
    """The transparency log."""


@log_group.command("integrate")
@click.option("--once", is_flag=True, help="One pass over every community, then exit (prints what it did).")
@click.option("--parent", type=int, hidden=True, help="Exit when this process is gone (serve's integrator).")
def log_integrate(once: bool, parent: int | None) -> None:
    """Append queued transactions to the communities' logs and sign checkpoints.

    Runs every TIMEBANK_LOG_INTERVAL_MS until stopped; several may run at once (each
    community is integrated by one at a time). `serve` starts one of these itself.
    """
    settings = get_settings().with_(log_integrator=True, scheduler=False)
    url = database()  # outside the event loop: it may start the embedded server
    if not once:
        asyncio.run(_run_background(url, settings, 2, parent))
        return
    from timebank.log.integration import integrate_all
    from timebank.log.keys import load_signer
    from timebank.runtime import register_keys

    async def one_pass() -> Any:
        async with open_engine(url, settings, pool_size=2) as engine:
            await register_keys(engine, settings)
            return await integrate_all(engine, load_signer(settings.key_dir), settings.log_origin)

    done = asyncio.run(one_pass())
    emit([{"community_id": str(d.community_id), "tree_size": d.tree_size, "added": d.added} for d in done])


@main.command()
@click.option("--parent", type=int, hidden=True, help="Exit when this process is gone (serve's worker).")
def worker(parent: int | None) -> None:
    """Run the scheduled jobs and the log integrator, without HTTP.

    TIMEBANK_SCHEDULER=0 or TIMEBANK_LOG_INTEGRATOR=0 leave either out. Several
    workers (and replicas) may run at once: each job runs once per period. SIGTERM
    stops looking for work and waits for the runs under way. `serve` starts one.
    """
    from timebank import logs
    from timebank.jobs.scheduler import CONNECTIONS_NEEDED

    settings = get_settings()
    logs.configure(settings)
    url = database()
    asyncio.run(_run_background(url, settings, CONNECTIONS_NEEDED + 2, parent))  # + the integrator


@main.group()
def jobs() -> None:
    """Scheduled jobs (the worker runs them; these commands run one now)."""


@jobs.command("run")
@click.argument("name")
@click.option(
    "--as-of",
    "as_of",
    type=click.DateTime(formats=["%Y-%m-%d"]),
    default=None,
    help="Run as at the start of this day (each community's own time zone).",
)
def jobs_run(name: str, as_of: Any) -> None:
    """Run job NAME now, for every scope it has, once per its period (the audit: every
    time, exit 1 on a difference); print the outcomes."""
    from timebank import logs
    from timebank.core.clock import SYSTEM_CLOCK, AsOf
    from timebank.jobs.definitions import JOBS, job_context, run_job
    from timebank.log.keys import load_signer

    if name not in JOBS:
        raise click.BadParameter(f"one of {', '.join(JOBS)}", param_hint="NAME")
    settings = get_settings()
    logs.configure(settings)  # on stderr: stdout is the outcomes' JSON
    clock = SYSTEM_CLOCK if as_of is None else AsOf(as_of.date())
    url = database()

    async def run() -> Any:
        async with open_engine(url, settings, pool_size=4) as engine:
            context = job_context(engine, load_signer(settings.key_dir), settings, clock)
            return await run_job(context, name, asked=True)

    outcomes = asyncio.run(run())
    emit(
        [
            {"job": o.job, "scope": o.scope, "period": o.period, "status": o.status, "counts": o.counts}
            for o in outcomes
        ]
    )
    sys.exit(1 if any(o.status == "failed" or o.counts.get("ok") is False for o in outcomes) else 0)

"""`timebank serve`: the embedded database, migrations, the demo, the worker child and
the HTTP workers, in that order."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from typing import Any

import click
from rich.cells import cell_len

from timebank import db, embedded
from timebank.cli.base import main, open_engine
from timebank.core.settings import Settings, get_settings

DEMO_FILE = "demo-keys.json"
DEMO_ROLES = (
    ("resident", "resident 居民"),
    ("merchant", "merchant 商家"),
    ("admin", "community staff 社工"),
    ("recorder", "organisation 志愿组织"),
    ("auditor", "supervisory board 监事"),
    ("district_admin", "district office 街道"),
)


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=1, show_default=True, type=int, help="Service processes (one per core).")
@click.option("--no-demo", is_flag=True, help="Do not seed the demo community into an empty database.")
def serve(host: str, port: int, workers: int, no_demo: bool) -> None:
    """Run the HTTP service (embedded PostgreSQL unless TIMEBANK_DATABASE_URL is set)."""
    import uvicorn

    from timebank import logs

    settings = get_settings()
    logs.configure(settings)
    _ensure_signing_key(settings)
    url = db.resolve_database_url(settings)
    # The embedded server is started again if its postmaster dies (until serve exits).
    embedded.supervise(settings)
    db.upgrade(url)
    demo = _demo(settings, url, seed=not no_demo and settings.demo)
    _announce(settings, host, port, demo)
    # uvicorn re-raises SIGTERM after its graceful shutdown; turn it into a normal exit so
    # atexit hooks run and the embedded server stops with its last user.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    os.environ["TIMEBANK_DATABASE_URL"] = url  # workers read settings from the environment
    if workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # the workers' counters, summed at /metrics (a fresh folder for each serve)
        import atexit
        import shutil
        import tempfile

        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir = tempfile.mkdtemp(prefix="timebank-metrics-")
        atexit.register(shutil.rmtree, metrics_dir, ignore_errors=True)
    if settings.log_integrator or settings.scheduler:
        _start_worker_process()
        # it integrates and runs the jobs; the HTTP workers only answer
        os.environ["TIMEBANK_LOG_INTEGRATOR"] = os.environ["TIMEBANK_SCHEDULER"] = "0"
    get_settings.cache_clear()
    uvicorn.run(
        "timebank.app:create_app_from_env",
        factory=True,
        host=host,
        port=port,
        workers=workers,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=20,
        limit_concurrency=1000,
    )


def _demo(settings: Settings, url: str, seed: bool) -> dict[str, Any] | None:
    """The demo community's keys: seeded into an empty database (and saved), or read back."""
    demo = asyncio.run(_seed_demo(url)) if seed else None
    demo_file = settings.data_dir / DEMO_FILE
    if demo is not None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        demo_file.write_text(json.dumps(demo, ensure_ascii=False, indent=2))
        demo_file.chmod(0o600)
    elif demo_file.exists():
        demo = json.loads(demo_file.read_text())
    return demo


def _announce(settings: Settings, host: str, port: int, demo: dict[str, Any] | None) -> None:
    """Where to go and with what, on stderr."""
    base = f"http://{host}:{port}"
    where = (
        "TIMEBANK_DATABASE_URL"
        if settings.database_url
        else f"embedded PostgreSQL in {settings.data_dir / 'pg'}"
    )
    click.echo(f"timebank on {base}  (database: {where})", err=True)
    click.echo(f"  API docs:  {base}/schema   health: {base}/health/ready", err=True)
    if host not in settings.allowed_hosts and "*" not in settings.allowed_hosts:
        # Reached by another address (an intranet IP), the service refuses hosts it was
        # not told about: say so before the first resident meets a 400.
        click.echo(
            f"  note: requests are answered for the hosts {', '.join(sorted(settings.allowed_hosts))}; "
            "set TIMEBANK_PUBLIC_URL or TIMEBANK_ALLOWED_HOSTS for the address people use",
            err=True,
        )
    if demo is not None:
        click.echo(f"  demo community 华锦社区 {demo['community_id']}", err=True)
        logins = demo.get("logins") or {}
        if logins:
            click.echo(f"  sign in at {base}/sign-in as (login / password):", err=True)
            for role, label in DEMO_ROLES:
                if role in logins:
                    who = logins[role]
                    pad = " " * max(1, 24 - cell_len(label))  # Chinese characters are two columns wide
                    click.echo(f"    {label}{pad}{who['login']:<14} {who['password']}", err=True)
        click.echo(f"  demo admin key:    {demo['admin_key']}", err=True)
        click.echo(
            f"  demo resident key: {demo['resident_key']}  (keys and logins saved in "
            f"{settings.data_dir / DEMO_FILE})",
            err=True,
        )
        url = "" if base == "http://127.0.0.1:8000" else f" --url {base}"
        click.echo(
            f"next: sign in at {base}/sign-in with a login above, or take the API's tour: "
            f'.venv/bin/timebank tour{url}  (README, "A short tour")',
            err=True,
        )


def _start_worker_process() -> None:
    """The log integrator and scheduled jobs of this serve (`timebank worker`), in a
    process of its own at a lower CPU priority.

    Integration is batch work with two seconds of slack (the merge delay), jobs have
    minutes; run inside the HTTP workers, each pass held their requests up. Niced,
    the kernel gives the requests the CPU first. It stops with serve (and on its own
    if serve is killed).
    """
    import atexit
    import subprocess

    child = subprocess.Popen(
        [sys.executable, "-m", "timebank.cli", "worker", "--parent", str(os.getpid())],
        preexec_fn=lambda: os.nice(10),  # noqa: PLW1509 - no threads exist yet in this process
    )

    def stop() -> None:
        if child.poll() is None:
            child.terminate()
            try:
                child.wait(10)
            except subprocess.TimeoutExpired:
                child.kill()

    atexit.register(stop)


def _ensure_signing_key(settings: Any) -> None:
    """The embedded (demo/dev) setup makes its own key; a real deployment brings one."""
    from timebank.log import keys

    if keys.current(keys.read_keyring(settings.key_dir)) is not None:
        return
    if settings.database_url:
        raise click.ClickException(
            f"no signing key in {settings.key_dir}: run `timebank keys generate` once and give every "
            "replica the same key directory (TIMEBANK_SIGNING_KEY_DIR); see docs/operations.md"
        )
    made = keys.generate(settings.key_dir)
    click.echo(f"  made a signing key {made.kid} in {settings.key_dir}", err=True)


async def _seed_demo(url: str) -> dict[str, Any] | None:
    from timebank.demo import seed_if_empty

    async with open_engine(url) as engine:
        return await seed_if_empty(engine)

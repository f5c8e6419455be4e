"""The `timebank` command.

Every command resolves the database the same way: ``TIMEBANK_DATABASE_URL`` if set,
else the embedded server in ``TIMEBANK_DATA_DIR`` (shared with a running ``serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import click

from timebank import db
from timebank.core.settings import get_settings


def _database() -> str:
    return db.resolve_database_url(get_settings())


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@click.group()
@click.version_option(package_name="timebank")
def main() -> None:
    """timebank: community public-welfare bank."""


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
    db.supervise_embedded(settings)
    db.upgrade(url)
    demo = None if (no_demo or not settings.demo) else asyncio.run(_seed_demo(url))
    base = f"http://{host}:{port}"
    demo_file = settings.data_dir / "demo-keys.json"
    if demo is not None:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        demo_file.write_text(json.dumps(demo, ensure_ascii=False, indent=2))
        demo_file.chmod(0o600)
    elif demo_file.exists():
        demo = json.loads(demo_file.read_text())
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
        click.echo(f"  demo admin key:    {demo['admin_key']}", err=True)
        click.echo(f"  demo resident key: {demo['resident_key']}  (keys saved in {demo_file})", err=True)
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

    engine = db.create_engine(url, get_settings())
    try:
        return await seed_if_empty(engine)
    finally:
        await engine.dispose()


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations (safe to run from several replicas at once)."""
    db.upgrade(_database(), revision)
    click.echo(f"database at {revision}", err=True)


def _server_major(url: str) -> int:
    async def ask() -> int:
        import asyncpg

        conn = await asyncpg.connect(db.libpq_url(url))
        try:
            return int(await conn.fetchval("SHOW server_version_num")) // 10000
        finally:
            await conn.close()

    return asyncio.run(ask())


@db_group.command("dump")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
def db_dump(file: Path) -> None:
    """Back up the database into FILE (pg_dump custom format; consistent while in use)."""
    import subprocess

    url = _database()
    program = db.pg_tool("pg_dump", _server_major(url))
    done = subprocess.run([program, "--format=custom", "--file", str(file), db.libpq_url(url)])
    if done.returncode:
        raise click.ClickException("pg_dump failed")
    click.echo(f"dumped to {file} ({file.stat().st_size:,} bytes)", err=True)


@db_group.command("restore")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
def db_restore(file: Path) -> None:
    """Restore a `db dump` FILE into the (new, empty) database, then audit it yourself.

    The data goes in before the triggers are made, so the ledger's guards do not fire
    on the restore; `timebank audit` afterwards recomputes everything from it.
    """
    import subprocess

    url = _database()
    program = db.pg_tool("pg_restore", _server_major(url))
    done = subprocess.run(
        [program, "--no-owner", "--exit-on-error", "--dbname", db.libpq_url(url), str(file)]
    )
    if done.returncode:
        raise click.ClickException("pg_restore failed (is the database empty?)")
    click.echo(f"restored {file}; now run `timebank audit`", err=True)


@main.group()
def community() -> None:
    """Communities (tenants)."""


@community.command("create")
@click.option("--name", required=True, help="The community's name, e.g. 华锦社区.")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
def community_create(name: str, timezone: str) -> None:
    """Create a community; prints its id and first admin key (shown only once)."""
    from timebank.community.service import create_community
    from timebank.core.problems import DomainError

    url = _database()
    db.upgrade(url)

    async def run() -> dict[str, Any]:
        engine = db.create_engine(url, get_settings())
        try:
            async with engine.begin() as conn:
                return await create_community(conn, name, timezone)
        finally:
            await engine.dispose()

    try:
        created = asyncio.run(run())
    except DomainError as err:
        raise click.UsageError(err.detail) from None
    _emit({"community_id": created["community_id"], "admin_key": created["admin_key"]})


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit(as_json: bool) -> None:
    """Recompute every balance and every log root from the entries; exit 1 on any difference."""
    from timebank.audits import run_audit

    url = _database()

    async def run() -> Any:
        engine = db.create_engine(url, get_settings())
        try:
            return await run_audit(engine)
        finally:
            await engine.dispose()

    report = asyncio.run(run())
    if as_json:
        _emit(report.as_dict())
    else:
        from rich.console import Console

        console = Console(stderr=False)
        console.print("ledger: " + ", ".join(f"{n} {t}" for t, n in report.counts.items()), highlight=False)
        for name, rows in report.results.items():
            mark = "[green]ok  [/green]" if not rows else f"[red]FAIL[/red] {len(rows)} difference(s)"
            console.print(f"{mark} {name}", highlight=False)
            for row in rows[:20]:
                console.print(f"       {row}", highlight=False)
        console.print("[green]audit clean[/green]" if report.ok else "[red]AUDIT FAILED[/red]")
    sys.exit(0 if report.ok else 1)


@main.group("import")
def import_group() -> None:
    """Bulk imports."""


@import_group.command("records")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.option("--community", "community_id", required=True, type=click.UUID, help="The community's id.")
@click.option(
    "--organisation",
    "organisation_id",
    type=click.UUID,
    help="The recording organisation, for rows that do not name one.",
)
@click.option(
    "--chunk", default=500, show_default=True, type=click.IntRange(1, 5000), help="Rows per transaction."
)
def import_records(file: str, community_id: Any, organisation_id: Any, chunk: int) -> None:
    """Import service records from a CSV file (same rules and columns as POST /v1/service-records/import).

    Prints a JSON summary with every rejected line and its reason; importing the same
    file again creates nothing twice.
    """
    import uuid
    from datetime import UTC, datetime

    from rich.console import Console
    from rich.progress import Progress

    from timebank.core.communities import find_community_zone
    from timebank.core.problems import DomainError
    from timebank.core.roles import Role
    from timebank.security import Principal
    from timebank.volunteer.csv_import import parse_csv
    from timebank.volunteer.service import record_many

    url = _database()
    db.upgrade(url)
    # The operator's command line acts for the community (recorded_by: the nil id).
    operator = Principal(uuid.UUID(int=0), community_id, Role.ADMIN, None)

    async def run() -> dict[str, Any]:
        engine = db.create_engine(url, get_settings())
        summary: dict[str, Any] = {"accepted": 0, "duplicates": 0, "rejected": []}
        try:
            async with engine.connect() as conn:
                tz = await find_community_zone(conn, community_id)
            if tz is None:
                raise click.UsageError(f"no community {community_id}")
            rows, unreadable = parse_csv(await asyncio.to_thread(Path(file).read_bytes), tz)
            summary["rejected"].extend(unreadable)
            for row in rows:
                row.organisation_id = row.organisation_id or organisation_id
            with Progress(console=Console(stderr=True)) as progress:  # stdout is the JSON summary
                task = progress.add_task("importing", total=len(rows))
                for start in range(0, len(rows), chunk):
                    part = rows[start : start + chunk]
                    async with engine.begin() as conn:
                        out = await record_many(conn, operator, part, now=datetime.now(UTC), derive_refs=True)
                    summary["accepted"] += sum(1 for a in out.accepted if not a["duplicate"])
                    summary["duplicates"] += sum(1 for a in out.accepted if a["duplicate"])
                    summary["rejected"].extend(out.rejected)
                    progress.advance(task, len(part))
        finally:
            await engine.dispose()
        summary["rejected"].sort(key=lambda r: r["line"])
        return summary

    try:
        summary = asyncio.run(run())
    except DomainError as err:
        raise click.ClickException(err.detail or err.title) from None
    _emit(summary)


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
    from timebank.log import service as log_service
    from timebank.log.integrator import Integrator
    from timebank.log.keys import load_signer, read_keyring

    settings = get_settings()
    url = _database()
    signer = load_signer(settings.key_dir)

    async def run() -> Any:
        engine = db.create_engine(url, settings.with_(db_pool_size=2))
        try:
            async with engine.begin() as conn:
                await log_service.register_keys(conn, read_keyring(settings.key_dir))
            if once:
                return await log_service.integrate_all(engine, signer, settings.log_origin)
            integrator = Integrator(engine, signer, settings.log_origin, settings.log_interval_ms / 1000)
            integrator.start()
            await _until_stopped(parent)
            await integrator.stop()
            return None
        finally:
            await engine.dispose()

    done = asyncio.run(run())
    if once:
        _emit(
            [{"community_id": str(d.community_id), "tree_size": d.tree_size, "added": d.added} for d in done]
        )


async def _until_stopped(parent: int | None) -> None:
    """Until SIGTERM or SIGINT, or until the parent process (serve) is gone."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    while not stopping.is_set():
        if parent is not None and os.getppid() != parent:
            break  # serve is gone
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1.0)


@main.command()
@click.option("--parent", type=int, hidden=True, help="Exit when this process is gone (serve's worker).")
def worker(parent: int | None) -> None:
    """Run the scheduled jobs and the log integrator, without HTTP.

    TIMEBANK_SCHEDULER=0 or TIMEBANK_LOG_INTEGRATOR=0 leave either out. Several
    workers (and replicas) may run at once: each job runs once per period. SIGTERM
    stops looking for work and waits for the runs under way. `serve` starts one.
    """
    from timebank import logs
    from timebank.jobs.definitions import job_context
    from timebank.jobs.scheduler import CONNECTIONS_NEEDED, Scheduler
    from timebank.log import service as log_service
    from timebank.log.integrator import Integrator
    from timebank.log.keys import load_signer, read_keyring

    settings = get_settings()
    logs.configure(settings)
    url = _database()
    signer = load_signer(settings.key_dir)

    async def run() -> None:
        engine = db.create_engine(
            url, settings.with_(db_pool_size=CONNECTIONS_NEEDED + 2)
        )  # + the integrator
        try:
            async with engine.begin() as conn:
                await log_service.register_keys(conn, read_keyring(settings.key_dir))
            integrator = scheduler = None
            if settings.log_integrator:
                integrator = Integrator(engine, signer, settings.log_origin, settings.log_interval_ms / 1000)
                integrator.start()
            if settings.scheduler:
                scheduler = Scheduler(job_context(engine, signer, settings))
                scheduler.start()
            logs.log.info("worker started", scheduler=settings.scheduler, integrator=settings.log_integrator)
            await _until_stopped(parent)
            if scheduler is not None:
                await scheduler.stop()
            if integrator is not None:
                await integrator.stop()
        finally:
            await engine.dispose()

    asyncio.run(run())


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
    """Run job NAME now, for every scope it has, once per its period; print the outcomes."""
    from timebank import logs
    from timebank.core.clock import SYSTEM_CLOCK, AsOf
    from timebank.jobs.definitions import JOBS, job_context, run_job
    from timebank.log.keys import load_signer

    if name not in JOBS:
        raise click.BadParameter(f"one of {', '.join(JOBS)}", param_hint="NAME")
    settings = get_settings()
    logs.configure(settings)  # on stderr: stdout is the outcomes' JSON
    url = _database()
    clock = SYSTEM_CLOCK if as_of is None else AsOf(as_of.date())

    async def run() -> Any:
        engine = db.create_engine(url, settings.with_(db_pool_size=4))
        try:
            return await run_job(job_context(engine, load_signer(settings.key_dir), settings, clock), name)
        finally:
            await engine.dispose()

    outcomes = asyncio.run(run())
    _emit(
        [
            {"job": o.job, "scope": o.scope, "period": o.period, "status": o.status, "counts": o.counts}
            for o in outcomes
        ]
    )
    sys.exit(1 if any(o.status == "failed" or o.counts.get("ok") is False for o in outcomes) else 0)


@main.group()
def keys() -> None:
    """Ed25519 signing keys of receipts and checkpoints (TIMEBANK_SIGNING_KEY_DIR)."""


def _key_row(k: Any) -> dict[str, Any]:
    return {
        "kid": k.kid,
        "created_at": k.created_at,
        "retired_at": k.retired_at,
        "status": "retired" if k.retired_at else "current",
    }


@keys.command("generate")
def keys_generate() -> None:
    """Make the first signing key (refused if one exists; see rotate)."""
    from timebank.log import keys as k

    settings = get_settings()
    try:
        made = k.generate(settings.key_dir)
    except k.SigningKeyError as err:
        raise click.ClickException(str(err)) from None
    _emit({**_key_row(made), "key_dir": str(settings.key_dir)})


@keys.command("list")
def keys_list() -> None:
    """List signing keys, current and retired (public data only)."""
    from timebank.log import keys as k

    _emit([_key_row(x) for x in k.read_keyring(get_settings().key_dir)])


@keys.command("rotate")
def keys_rotate() -> None:
    """Make a new current key; the old one is retired (still published, never used again).

    Restart the service (every replica) to sign with the new key.
    """
    from timebank.log import keys as k

    try:
        retired, new = k.rotate(get_settings().key_dir)
    except k.SigningKeyError as err:
        raise click.ClickException(str(err)) from None
    _emit({"retired": _key_row(retired), "current": _key_row(new)})


def _read_json(path: str, what: str) -> Any:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError) as exc:
        raise click.ClickException(f"cannot read {what} {path}: {exc}") from None


@main.command()
@click.argument("receipt", type=click.Path(dir_okay=False))
@click.option(
    "--keys",
    "keys_file",
    type=click.Path(dir_okay=False),
    help="JWK set of the bank's public keys (GET /v1/log/keys); default: keys.json in the key directory.",
)
@click.option(
    "--checkpoint", type=click.Path(dir_okay=False), help="Check inclusion against this checkpoint."
)
@click.option(
    "--previous-checkpoint",
    type=click.Path(dir_okay=False),
    help="An older checkpoint that must be consistent with the newer one.",
)
@click.option(
    "--consistency",
    type=click.Path(dir_okay=False),
    help="Consistency proof JSON (GET /v1/log/proof/consistency) between the two.",
)
def verify(
    receipt: str,
    keys_file: str | None,
    checkpoint: str | None,
    previous_checkpoint: str | None,
    consistency: str | None,
) -> None:
    """Verify a receipt (or a certificate of service) offline: signature, leaf hash, inclusion,
    checkpoint signature, consistency.

    Needs no database and no network. Exit status 0 only if every check passed.
    """
    from timebank.log import verify as v

    if (previous_checkpoint is None) != (consistency is None):
        raise click.UsageError("--previous-checkpoint and --consistency go together")
    if keys_file is None:
        from timebank.log.keys import KEYRING

        keys_file = str(get_settings().key_dir / KEYRING)
    document = _read_json(receipt, "receipt")
    try:
        keyset = v.load_jwks(_read_json(keys_file, "key set"))
        if isinstance(document, dict) and "certificate" in document:  # a certificate of service
            cert = v.verify_certificate(document, keyset)
            click.echo(f"ok   certificate {cert.get('number')} signed by {document['kid']}")
            click.echo(
                f"     {cert.get('volunteer', {}).get('name')}: {cert.get('total_hours')} h of approved "
                f"service {cert.get('period', {}).get('from')} to {cert.get('period', {}).get('to')}, "
                f"issued by {cert.get('issuer')} at {cert.get('issued_at')}"
            )
            click.echo("certificate verified")
            return
        report = v.verify_receipt(
            document,
            keyset,
            checkpoint=None if checkpoint is None else open(checkpoint, encoding="utf-8").read(),
            previous_checkpoint=None
            if previous_checkpoint is None
            else open(previous_checkpoint, encoding="utf-8").read(),
            consistency=None if consistency is None else _read_json(consistency, "consistency proof"),
        )
    except v.VerificationError as err:
        click.echo(f"FAIL {err}")
        sys.exit(1)
    click.echo(f"transaction {report.transaction_id}")
    for line in report.checked:
        click.echo(f"ok   {line}")
    for line in report.skipped:
        click.echo(f"skip {line}")
    click.echo("receipt verified" + (" (not yet in the log)" if report.skipped else ""))


if __name__ == "__main__":
    main()

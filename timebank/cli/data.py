"""The database and the communities in it: schema, backup, restore, creation, audit, import."""

from __future__ import annotations

import asyncio
import sys
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import click

from timebank import db
from timebank.cli.base import database, emit, main, open_engine
from timebank.core.settings import get_settings


@main.group("db")
def db_group() -> None:
    """Database schema."""


@db_group.command("upgrade")
@click.option("--revision", default="head", show_default=True)
def db_upgrade(revision: str) -> None:
    """Apply the Alembic migrations (safe to run from several replicas at once)."""
    db.upgrade(database(), revision)
    click.echo(f"database at {revision}", err=True)


@db_group.command("citus-commands")
def db_citus_commands() -> None:
    """Print the SQL that distributes this schema over Citus by community
    (timebank/distribution.py; docs/operations.md says when and how)."""
    from timebank import distribution

    click.echo(distribution.citus_commands(), nl=False)


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

    url = database()
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

    url = database()
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
@click.option(
    "--staff-name",
    default="社区管理员",
    show_default=True,
    help="The first staff member's name (a person with the admin role).",
)
@click.option(
    "--staff-login",
    default=None,
    help="The first staff member's phone number or user name (default: admin-<first 8 characters of the id>).",
)
def community_create(name: str, timezone: str, staff_name: str, staff_login: str | None) -> None:
    """Create a community; prints its id, first admin key and a one-time sign-in link for its
    first staff member (both shown only once), who then adds the others."""
    from timebank.community.service import create_community
    from timebank.core.roles import Role

    created = _create_with_first_admin(
        lambda conn: create_community(conn, name, timezone),
        "community_id",
        Role.ADMIN,
        staff_name,
        staff_login,
        "admin-",
    )
    click.echo(
        f"The first staff member signs in once with the link above (before {created['link']['expires_at']}), "
        "sets a password under My account, and adds the others.",
        err=True,
    )


@main.group()
def district() -> None:
    """Districts (街道/区): communities that cross hours and points through a clearing ledger."""


@district.command("create")
@click.option("--name", required=True, help="The district's name, e.g. 华锦街道.")
@click.option("--timezone", default="Asia/Shanghai", show_default=True)
@click.option(
    "--hour-limit",
    default=6000,
    show_default=True,
    type=click.IntRange(0, 10**12),
    help="Each joining community's limit on its HOUR position, in minutes (changeable per community).",
)
@click.option(
    "--point-limit",
    default=5000,
    show_default=True,
    type=click.IntRange(0, 10**12),
    help="Each joining community's limit on its POINT position (changeable per community).",
)
@click.option(
    "--staff-name", default="街道管理员", show_default=True, help="The first district admin's name."
)
@click.option(
    "--staff-login", default=None, help="The first district admin's login (default: district-<id[:8]>)."
)
def district_create(
    name: str, timezone: str, hour_limit: int, point_limit: int, staff_name: str, staff_login: str | None
) -> None:
    """Create a district; prints its id, first district admin key and a one-time sign-in link
    for its first district admin. Communities then join by both sides' consent
    (POST /v1/district/communities and POST /v1/community/district)."""
    from timebank.core.roles import Role
    from timebank.districts.service import create_district

    _create_with_first_admin(
        lambda conn: create_district(conn, name, timezone, hour_limit, point_limit),
        "district_id",
        Role.DISTRICT_ADMIN,
        staff_name,
        staff_login,
        "district-",
    )


def _create_with_first_admin(
    create: Callable[[Any], Awaitable[dict[str, Any]]],
    id_field: str,
    role: Any,
    staff_name: str,
    login: str | None,
    login_prefix: str,
) -> dict[str, Any]:
    """Make a ledger (a community or a district) with ``create``, its first admin person
    (``login``, else ``login_prefix`` and the id's first 8 characters) and a one-time
    sign-in link, in one transaction; print the id, the admin key and the link (each shown
    only once)."""
    from timebank.core.access import Principal
    from timebank.core.problems import DomainError
    from timebank.people import accounts, links

    url = database()
    db.upgrade(url)
    settings = get_settings()

    async def run() -> dict[str, Any]:
        async with open_engine(url) as engine, engine.begin() as conn:
            created = await create(conn)
            ledger_id = created[id_field]
            admin = Principal(uuid.UUID(created["admin_key_id"]), uuid.UUID(ledger_id), role, None)
            staff = await accounts.create_person(
                conn,
                admin,
                role=role.value,
                subject_id=None,
                display_name=staff_name,
                login=login or f"{login_prefix}{ledger_id[:8]}",
                password=None,
            )
            link = await links.issue_link(conn, admin, uuid.UUID(staff["id"]), settings.sign_in_link_hours)
            return {**created, "staff": staff, "link": link}

    try:
        created = asyncio.run(run())
    except DomainError as err:
        raise click.UsageError(err.detail) from None
    base = (settings.public_url or "http://127.0.0.1:8000").rstrip("/")
    emit(
        {
            id_field: created[id_field],
            "admin_key": created["admin_key"],
            "staff": {
                "name": created["staff"]["display_name"],
                "login": created["staff"]["login"],
                "sign_in_link": base + created["link"]["path"],
                "link_expires_at": created["link"]["expires_at"],
            },
        }
    )
    return created


@main.command()
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
def audit(as_json: bool) -> None:
    """Recompute every balance and every log root from the entries; exit 1 on any difference."""
    from timebank.audits import run_audit

    url = database()

    async def run() -> Any:
        async with open_engine(url) as engine:
            return await run_audit(engine)

    report = asyncio.run(run())
    if as_json:
        emit(report.as_dict())
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

    from timebank.core.access import Principal
    from timebank.core.communities import find_community_zone
    from timebank.core.problems import DomainError
    from timebank.core.roles import Role
    from timebank.volunteer.csv_import import parse_csv
    from timebank.volunteer.recording import record_many

    url = database()
    db.upgrade(url)
    # The operator's command line acts for the community (recorded_by: the nil id).
    operator = Principal(uuid.UUID(int=0), community_id, Role.ADMIN, None)

    async def run() -> dict[str, Any]:
        summary: dict[str, Any] = {"accepted": 0, "duplicates": 0, "rejected": []}
        async with open_engine(url) as engine:
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
        summary["rejected"].sort(key=lambda r: r["line"])
        return summary

    try:
        summary = asyncio.run(run())
    except DomainError as err:
        raise click.ClickException(err.detail or err.title) from None
    emit(summary)

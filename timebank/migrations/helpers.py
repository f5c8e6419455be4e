"""Helpers for migrations written as plain SQL scripts."""

from __future__ import annotations

from alembic import op
from sqlalchemy.util import await_only


def run_script(sql: str) -> None:
    """Run a multi-statement SQL script (functions with $$ bodies included) as one batch.

    asyncpg's simple-query protocol takes a whole script; SQLAlchemy's cursor would
    prepare it, which PostgreSQL refuses for more than one statement.
    """
    driver_conn = op.get_bind().connection.driver_connection
    await_only(driver_conn.execute(sql))

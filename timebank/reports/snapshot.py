"""One snapshot of the ledger for a report: the API (``controllers.py``) and the console's
pages and downloads (``pages.py``) read a report through this one helper.

    async with report_snapshot(web.engine(request)) as conn:
        body = await service.points_report(conn, principal, first, end)

REPEATABLE READ: every query of the report sees the same committed entries, so its
figures agree with each other (and with the entries at the report's ``generated_at``)
even while transactions are being posted.

Plans made for each query's own period (``force_custom_plan``): a report's statements
are prepared and reused by the driver, and after five runs PostgreSQL may switch to a
generic plan that cannot see the period; for an all-time service report that plan was
five times slower (130 ms against 28 ms on a million transactions). Planning each time
costs a millisecond or two.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine


@asynccontextmanager
async def report_snapshot(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """A connection in a REPEATABLE READ transaction, ended (rolled back) afterwards."""
    async with engine.connect() as plain:
        conn = await plain.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            await conn.execute(text("SET LOCAL plan_cache_mode = force_custom_plan"))
            yield conn

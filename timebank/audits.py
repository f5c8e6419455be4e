"""`timebank audit`: every domain's checks, run in one consistent snapshot.

The one registry of checks: each domain package adds its group here. The checks are
independent of the triggers that keep the invariants, so a bug in a trigger (or a
hand edit with triggers disabled) shows up.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.activities.audit import activity_checks
from timebank.core.audit import AuditReport, Checks
from timebank.distribution import cross_reference_checks
from timebank.districts.audit import district_checks
from timebank.ledger.audit import ledger_checks
from timebank.log.audit import log_checks
from timebank.points.audit import points_checks
from timebank.redemption.audit import redemption_checks
from timebank.reports.audit import report_checks

REGISTRY: tuple[Checks, ...] = (
    ledger_checks,
    log_checks,
    points_checks,
    redemption_checks,
    report_checks,
    activity_checks,
    district_checks,
    cross_reference_checks,
)
COUNTED = ("communities", "accounts", "transactions", "entries")


async def run_audit(engine: AsyncEngine, groups: Sequence[Checks] = REGISTRY) -> AuditReport:
    report = AuditReport()
    # One REPEATABLE READ snapshot, so the checks see one consistent ledger while it is busy.
    async with engine.connect() as plain:
        conn = await plain.execution_options(isolation_level="REPEATABLE READ")
        async with conn.begin():
            for table in COUNTED:
                report.counts[table] = (
                    await conn.execute(text(f"SELECT count(*) FROM {table}"))
                ).scalar_one()
            for group in groups:
                report.results.update(await group(conn))
    return report

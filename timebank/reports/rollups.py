"""Folding the report rollups (migration 0009): the minute job ``report-rollups``.

The trigger on ``entries`` adds a row per class per posting, never updating one (no
two postings wait for each other). Folding replaces each hour's rows by one per class,
in one statement, so the reports read a few rows an hour whatever the traffic; the
sums are the same before and after, at every snapshot. Rows written while a fold runs
(invisible to it) stay as they are and are folded by the next run.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

FOLD_SQL = text("SELECT ledger_rollups_fold(now())")


async def fold(engine: AsyncEngine) -> dict[str, Any]:
    """Fold every hour with rows not yet folded, up to now; how many rows it made."""
    async with engine.begin() as conn:
        made = (await conn.execute(FOLD_SQL)).scalar_one()
    return {"rows": int(made)}

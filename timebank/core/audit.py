"""The shape of an audit: groups of checks, each returning the rows that are wrong.

Each domain package writes its checks (SQL that selects what breaks a rule, or a
function) in its own ``audit.py``; ``timebank/audits.py`` lists every group, and
``timebank audit`` and the nightly job run them all in one snapshot.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

# A group of checks: the rows that are wrong, by check name (empty lists: all pass).
Checks = Callable[[AsyncConnection], Awaitable[dict[str, list[dict[str, Any]]]]]


async def run_checks(conn: AsyncConnection, checks: dict[str, str]) -> dict[str, list[dict[str, Any]]]:
    """Run checks written as SQL that returns the wrong rows: {name: rows, as text}."""
    out = {}
    for name, sql in checks.items():
        rows = (await conn.execute(text(sql))).mappings().all()
        out[name] = [{k: str(v) for k, v in row.items()} for row in rows]
    return out


def sql_checks(checks: dict[str, str]) -> Checks:
    """A group of checks from SQL queries that select what is wrong."""

    async def run(conn: AsyncConnection) -> dict[str, list[dict[str, Any]]]:
        return await run_checks(conn, checks)

    return run


@dataclass
class AuditReport:
    results: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(not rows for rows in self.results.values())

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "counts": self.counts,
            "checks": [
                {"check": name, "ok": not rows, "differences": rows[:20], "difference_count": len(rows)}
                for name, rows in self.results.items()
            ],
        }

"""The report rollups (migration 0009): kept by the database with the entries, folded
without changing a sum, read at any instant exactly as the entries say, and audited:
a rollup changed, removed or added by hand fails ``timebank audit``."""

# ruff: noqa: F811 (``client`` is test_reports' fixture, shared by importing it)

from __future__ import annotations

import random
import uuid
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from test_reports import CATEGORIES, History, client, new_tenant  # noqa: F401

from timebank.audits import run_audit
from timebank.reports import queries
from timebank.reports.audit import report_checks
from timebank.reports.rollups import fold

ROLLUP_CHECK = "every report rollup equals the sum of the entries it rolls up"

# Independent of timebank.reports: the posted POINT entries of a community before an
# instant, with what the reports classify them by.
POINT_ENTRIES_SQL = text(
    """
SELECT e.created_at, e.direction, e.amount, t.kind, o.kind AS reverses_kind,
       a.system_role, a.id AS account_id, p.kind AS party_kind
FROM entries e JOIN transactions t ON t.id = e.transaction_id
LEFT JOIN transactions o ON o.id = t.reverses_id
JOIN accounts a ON a.id = e.account_id LEFT JOIN parties p ON p.id = a.party_id
WHERE e.community_id = :c AND e.layer = 'posted' AND e.asset = 'POINT'
"""
)


async def busy_history(client: Any, engine: AsyncEngine, rounds: int = 2) -> History:
    """Service, redemptions, donations, adjustments and a reversal, folded half-way."""
    h = await History(await new_tenant(client, engine), engine).setup()
    for member in range(3):
        await h.adjust(member, 60)
    for n in range(rounds):
        record = await h.serve(n % 3, n % 2, CATEGORIES[n], 90)
        assert await h.redeem(n % 3, n % 2)
        assert await h.donate((n + 1) % 3, 5)
        await h.adjust((n + 2) % 3, -5)
        if n == 0:
            assert await h.reverse(record["record"]["id"])
            await fold(engine)
    return h


async def audit_of_rollups(engine: AsyncEngine) -> list[dict[str, Any]]:
    return (await run_audit(engine, [report_checks])).results[ROLLUP_CHECK]


async def rollup_sums(engine: AsyncEngine, community_id: str) -> dict[tuple[Any, ...], tuple[int, int]]:
    sql = text(
        "SELECT hour, asset, kind, reverses_kind, holder, account_id, direction, sum(amount), sum(entries) "
        "FROM ledger_rollups WHERE community_id = :c GROUP BY 1, 2, 3, 4, 5, 6, 7"
    )
    async with engine.connect() as conn:
        return {tuple(r[:7]): (int(r[7]), int(r[8])) for r in await conn.execute(sql, {"c": community_id})}


async def test_folding_changes_no_sum_and_leaves_one_row_per_hour_and_class(client, engine):
    h = await busy_history(client, engine, rounds=3)
    before = await rollup_sums(engine, h.t.id)
    rows = text(
        "SELECT count(*), count(*) FILTER (WHERE NOT folded) FROM ledger_rollups WHERE community_id = :c"
    )
    async with engine.connect() as conn:
        count, unfolded = (await conn.execute(rows, {"c": h.t.id})).one()
    assert unfolded > 0 and count > len(before)  # the trigger added a row per class per posting

    assert (await fold(engine))["rows"] >= len(before)
    assert await rollup_sums(engine, h.t.id) == before
    async with engine.connect() as conn:
        count, unfolded = (await conn.execute(rows, {"c": h.t.id})).one()
    assert (count, unfolded) == (len(before), 0)
    assert await audit_of_rollups(engine) == []
    assert (await fold(engine))["rows"] == 0  # nothing new: nothing to do


async def test_a_rollup_changed_removed_or_added_by_hand_fails_the_audit(client, engine):
    h = await busy_history(client, engine)
    await fold(engine)
    assert await audit_of_rollups(engine) == []
    pick = text(
        "SELECT id, hour, kind, holder, amount FROM ledger_rollups "
        "WHERE community_id = :c AND kind = 'redemption' AND holder = 'merchant' LIMIT 1"
    )
    async with engine.connect() as conn:
        row = (await conn.execute(pick, {"c": h.t.id})).one()
    tampers = [
        (
            "UPDATE ledger_rollups SET amount = amount + 1 WHERE id = :id",
            "UPDATE ledger_rollups SET amount = amount - 1 WHERE id = :id",
        ),
        (
            "CREATE TEMP TABLE kept AS SELECT * FROM ledger_rollups WHERE id = :id; "
            "DELETE FROM ledger_rollups WHERE id = :id",
            "INSERT INTO ledger_rollups OVERRIDING SYSTEM VALUE SELECT * FROM kept; DROP TABLE kept",
        ),
        (
            "INSERT INTO ledger_rollups (community_id, hour, asset, kind, holder, direction, amount, entries, folded) "
            "SELECT community_id, hour, asset, 'donation', 'fund', 'credit', 3, 1, true "
            "FROM ledger_rollups WHERE id = :id",
            "DELETE FROM ledger_rollups WHERE community_id = :c AND kind = 'donation' AND amount = 3 AND entries = 1 "
            "AND id > :id AND holder = 'fund' AND hour = :hour",
        ),
    ]
    params = {"id": row.id, "c": uuid.UUID(h.t.id), "hour": row.hour}
    for tamper, restore in tampers:
        async with engine.connect() as conn:  # one session: the temporary table lives in it
            try:
                for sql in tamper.split("; "):
                    await conn.execute(text(sql), params)
                await conn.commit()
                wrong = await audit_of_rollups(engine)
                assert len(wrong) == 1, (tamper, wrong)
                assert wrong[0]["community_id"] == h.t.id and wrong[0]["hour"] == str(row.hour)
                report = await run_audit(engine)
                assert not report.ok and [n for n, rows in report.results.items() if rows] == [ROLLUP_CHECK]
            finally:
                for sql in restore.split("; "):
                    await conn.execute(text(sql), params)
                await conn.commit()
        assert await audit_of_rollups(engine) == [], tamper


async def test_reads_at_any_instant_equal_the_entries(client, engine):
    """Periods that end at any instant (mid-hour: the edges come from the entries) and
    start off the hour: the figures equal plain sums over the entries before it."""
    h = await busy_history(client, engine)
    c = uuid.UUID(h.t.id)
    async with engine.connect() as conn:
        entries = (await conn.execute(POINT_ENTRIES_SQL, {"c": c})).all()
    instants = sorted({e.created_at for e in entries})
    rng = random.Random(16)
    picks = [*rng.sample(instants, min(8, len(instants))), instants[-1] + timedelta(microseconds=1)]
    for at in picks:
        for shift in (timedelta(0), timedelta(microseconds=1)):
            end = at + shift
            start = end - timedelta(hours=3, minutes=17)  # not on the hour
            before = [e for e in entries if start <= e.created_at < end]
            async with engine.connect() as conn:
                outstanding = await queries.outstanding(conn, c, end)
                ways = {await queries.outstanding(conn, c, end, via) for via in ("start", "now")}
                flows = await queries.point_flows(conn, c, start, end)
                received = await queries.merchant_receipts(conn, c, start, end)
            assert (
                {outstanding}
                == ways
                == {
                    sum(
                        (e.amount if e.direction == "credit" else -e.amount)
                        for e in entries
                        if e.party_kind == "member" and e.created_at < end
                    )
                }
            )
            want: dict[tuple[Any, ...], int] = {}
            for e in before:
                key = (e.kind, e.reverses_kind, e.system_role or e.party_kind, e.direction)
                want[key] = want.get(key, 0) + e.amount
            assert {(r.kind, r.reverses_kind, r.holder, r.direction): r.points for r in flows} == want
            by_merchant = {m["accounts"]["POINT"]: 0 for m in h.merchants}
            for e in before:
                if e.party_kind == "merchant" and e.direction == "credit":
                    by_merchant[str(e.account_id)] += e.amount
            assert {h_acc(h, r.merchant_id): r.received for r in received} == by_merchant


def h_acc(h: History, merchant_id: uuid.UUID) -> str:
    return next(m["accounts"]["POINT"] for m in h.merchants if m["id"] == str(merchant_id))


def test_whole_hours_of_a_period() -> None:
    at = datetime.fromisoformat
    assert queries.whole_hours(at("2026-11-01T16:00+00:00"), at("2026-12-01T16:00+00:00")) == (
        at("2026-11-01T16:00+00:00"),
        at("2026-12-01T16:00+00:00"),
    )
    assert queries.whole_hours(at("2026-11-01T00:00+05:30"), at("2026-11-02T00:00+05:30")) == (
        at("2026-10-31T19:00+00:00"),
        at("2026-11-01T18:00+00:00"),
    )
    start, end = at("2026-11-01T10:05+00:00"), at("2026-11-01T10:55+00:00")
    assert queries.whole_hours(start, end) == (end, end)  # no whole hour: all from the entries

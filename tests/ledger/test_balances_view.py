"""One definition of the balances: the ``account_balances`` view (migration 0006).

The view agrees with the entries (and the audit says so, or says where not), and the
API shows what it says. (Every table model against the schema: tests/test_models.py.)
"""

from __future__ import annotations

import uuid

from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine

from timebank.community.service import create_community
from timebank.ledger import queries
from timebank.ledger.audit import ledger_checks

CHECK = "the balances view agrees with the entries"

FROM_ENTRIES = text(
    """
    SELECT coalesce(sum(amount) FILTER (WHERE layer = 'posted' AND direction = 'credit'), 0)
         - coalesce(sum(amount) FILTER (WHERE layer = 'posted' AND direction = 'debit'), 0) AS posted,
           coalesce(sum(CASE WHEN direction = 'debit' AND layer = 'pending' THEN amount
                             WHEN direction = 'debit' AND layer = 'release' THEN -amount END), 0) AS pending
      FROM entries WHERE account_id = :a
    """
)


async def test_the_view_agrees_with_the_entries_and_the_api(tenant, engine):
    a = await tenant.member("甲")
    b = await tenant.member("乙")
    await tenant.fund(a["accounts"]["POINT"], "POINT", 100)
    move = {"from_account": a["accounts"]["POINT"], "to_account": b["accounts"]["POINT"], "asset": "POINT"}
    assert (await tenant.transfer({**move, "amount": 10})).status_code == 201
    hold = await tenant.transfer({**move, "amount": 25, "pending": {"timeout_seconds": 600}})
    assert hold.status_code == 201, hold.text

    async with engine.connect() as conn:
        balances = await queries.balances_of(conn, uuid.UUID(tenant.id), uuid.UUID(a["id"]), "POINT")
        truth = (await conn.execute(FROM_ENTRIES, {"a": a["accounts"]["POINT"]})).one()
        audit = await ledger_checks(conn)
    assert (balances.posted, balances.pending, balances.available) == (90, 25, 65)
    assert (truth.posted, truth.pending) == (balances.posted, balances.pending)
    assert balances.pending_credits == 0
    shown = await tenant.balance(a["accounts"]["POINT"])
    assert (shown["posted"], shown["pending"], shown["available"]) == (90, 25, 65)
    assert audit[CHECK] == []


async def test_the_audit_names_an_account_whose_balances_disagree(fresh_database_url):
    engine = create_async_engine(fresh_database_url)
    try:
        async with engine.begin() as conn:
            created = await create_community(conn, "审计")
            fund = (
                await conn.execute(text("SELECT id FROM accounts WHERE system_role = 'fund' LIMIT 1"))
            ).scalar_one()
            # damage a cached balance behind the triggers' back (as a hand edit would)
            await conn.execute(text("ALTER TABLE accounts DISABLE TRIGGER accounts_guard_balances"))
            await conn.execute(text("UPDATE accounts SET credits_posted = 7 WHERE id = :a"), {"a": fund})
        async with engine.connect() as conn:
            audit = await ledger_checks(conn)
        assert [row["account_id"] for row in audit[CHECK]] == [str(fund)]
        assert audit[CHECK][0]["available"] == "7" and audit[CHECK][0]["available_from_entries"] == "0"
        assert created["community_id"]
    finally:
        await engine.dispose()

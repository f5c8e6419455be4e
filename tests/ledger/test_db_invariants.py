"""The database itself refuses to break the ledger, whoever writes to it (plain SQL here)."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError


async def funded(tenant):
    a = await tenant.member("甲")
    b = await tenant.member("乙")
    tx = await tenant.fund(a["accounts"]["HOUR"], "HOUR", 100)
    return a, b, tx


async def expect_db_error(engine, sql: str, params: dict, code: str) -> None:
    with pytest.raises(DBAPIError) as err:
        async with engine.begin() as conn:
            for statement in sql.split(";"):
                if statement.strip():
                    await conn.execute(text(statement), params)
    assert code in str(err.value), str(err.value)


async def test_entries_and_transactions_cannot_be_updated_deleted_or_truncated(tenant, engine):
    a, _, tx = await funded(tenant)
    p = {"t": tx["id"]}
    await expect_db_error(
        engine, "UPDATE entries SET amount = amount + 1 WHERE transaction_id = :t", p, "append-only"
    )
    await expect_db_error(engine, "DELETE FROM entries WHERE transaction_id = :t", p, "append-only")
    await expect_db_error(engine, "TRUNCATE entries CASCADE", {}, "append-only")
    await expect_db_error(engine, "UPDATE transactions SET memo = 'x' WHERE id = :t", p, "append-only")
    await expect_db_error(engine, "DELETE FROM transactions WHERE id = :t", p, "append-only")
    await expect_db_error(
        engine, "DELETE FROM accounts WHERE id = :a", {"a": a["accounts"]["HOUR"]}, "never deleted"
    )
    assert (await tenant.balance(a["accounts"]["HOUR"]))["posted"] == 100


async def test_balances_change_only_through_entries(tenant, engine):
    a, _, _ = await funded(tenant)
    await expect_db_error(
        engine,
        "UPDATE accounts SET credits_posted = credits_posted + 1000 WHERE id = :a",
        {"a": a["accounts"]["HOUR"]},
        "only through ledger entries",
    )


INSERT_TX = (
    "INSERT INTO transactions (id, community_id, kind, phase) VALUES (:t, :c, 'adjustment', 'posted');"
)
INSERT_ENTRY = (
    "INSERT INTO entries (transaction_id, community_id, account_id, asset, direction, layer, amount) "
    "VALUES (:t, :c, {account}, 'HOUR', '{direction}', 'posted', {amount});"
)


async def test_an_unbalanced_transaction_is_rejected_at_commit(tenant, engine):
    a, b, _ = await funded(tenant)
    p = {"t": str(uuid.uuid4()), "c": tenant.id, "a": a["accounts"]["HOUR"], "b": b["accounts"]["HOUR"]}
    sql = (
        INSERT_TX
        + INSERT_ENTRY.format(account=":a", direction="debit", amount=10)
        + INSERT_ENTRY.format(account=":b", direction="credit", amount=9)
    )
    await expect_db_error(engine, sql, p, "unbalanced")
    # and a balanced one through the same door commits (the trigger is not just refusing everything)
    p["t"] = str(uuid.uuid4())
    async with engine.begin() as conn:
        for statement in (
            INSERT_TX
            + INSERT_ENTRY.format(account=":a", direction="debit", amount=10)
            + INSERT_ENTRY.format(account=":b", direction="credit", amount=10)
        ).split(";"):
            if statement.strip():
                await conn.execute(text(statement), p)
    assert (await tenant.balance(b["accounts"]["HOUR"]))["posted"] == 10


async def test_a_transaction_without_entries_is_rejected(tenant, engine):
    await expect_db_error(engine, INSERT_TX, {"t": str(uuid.uuid4()), "c": tenant.id}, "no entries")


async def test_history_cannot_grow_new_legs(tenant, engine):
    a, b, tx = await funded(tenant)
    p = {"t": tx["id"], "c": tenant.id, "a": a["accounts"]["HOUR"], "b": b["accounts"]["HOUR"]}
    sql = INSERT_ENTRY.format(account=":a", direction="debit", amount=5) + INSERT_ENTRY.format(
        account=":b", direction="credit", amount=5
    )
    await expect_db_error(engine, sql, p, "must be written with that transaction")


async def test_overdraft_is_refused_by_the_database(tenant, engine):
    a, b, _ = await funded(tenant)
    p = {"t": str(uuid.uuid4()), "c": tenant.id, "a": a["accounts"]["HOUR"], "b": b["accounts"]["HOUR"]}
    sql = (
        INSERT_TX
        + INSERT_ENTRY.format(account=":b", direction="credit", amount=101)
        + INSERT_ENTRY.format(account=":a", direction="debit", amount=101)
    )
    await expect_db_error(engine, sql, p, "accounts_no_overdraft")


async def test_entries_must_match_account_asset_and_community(tenant, other_tenant, engine):
    a, b, _ = await funded(tenant)
    p = {"t": str(uuid.uuid4()), "c": tenant.id, "a": a["accounts"]["POINT"], "b": b["accounts"]["HOUR"]}
    sql = (
        INSERT_TX
        + INSERT_ENTRY.format(account=":a", direction="debit", amount=1)
        + INSERT_ENTRY.format(account=":b", direction="credit", amount=1)
    )
    await expect_db_error(engine, sql, p, "foreign key")
    foreign = await other_tenant.member()
    p = {"t": str(uuid.uuid4()), "c": tenant.id, "a": a["accounts"]["HOUR"], "b": foreign["accounts"]["HOUR"]}
    await expect_db_error(engine, sql, p, "foreign key")


async def test_a_hold_resolves_once_even_by_hand(tenant, engine):
    a, b, _ = await funded(tenant)
    hold = (
        await tenant.transfer(
            {
                "from_account": a["accounts"]["HOUR"],
                "to_account": b["accounts"]["HOUR"],
                "asset": "HOUR",
                "amount": 10,
                "pending": {"timeout_seconds": 600},
            }
        )
    ).json()
    r = await tenant.client.post(
        f"/v1/transactions/{hold['id']}/void", headers={**tenant.auth(), "Idempotency-Key": "v"}
    )
    assert r.status_code == 201
    # a second resolution row, written by hand, violates the unique reference
    sql = (
        "INSERT INTO transactions (id, community_id, kind, phase, pending_id) "
        "VALUES (:t, :c, 'transfer', 'void', :h);"
        "INSERT INTO entries (transaction_id, community_id, account_id, asset, direction, layer, amount) "
        "VALUES (:t, :c, :a, 'HOUR', 'debit', 'release', 10);"
    )
    await expect_db_error(
        engine,
        sql,
        {"t": str(uuid.uuid4()), "c": tenant.id, "h": hold["id"], "a": a["accounts"]["HOUR"]},
        "duplicate key",
    )

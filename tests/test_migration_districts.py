"""Migration 0011 (districts) goes down and up again: its downgrade restores 0001's
ledger_apply and the old checks, so a deployment can step back before any crossing."""

from __future__ import annotations

import asyncio

import asyncpg
from sqlalchemy.engine import make_url

from timebank import db


async def _apply_source(url: str) -> str:
    conn = await asyncpg.connect(
        make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    )
    try:
        return await conn.fetchval("SELECT prosrc FROM pg_proc WHERE proname = 'ledger_apply'")
    finally:
        await conn.close()


async def test_migration_0011_goes_down_and_up_again(fresh_database_url):
    guarded = await _apply_source(fresh_database_url)
    assert "district_account" in guarded
    await asyncio.to_thread(_downgrade, fresh_database_url, "0010")
    assert "district_account" not in await _apply_source(fresh_database_url)
    await asyncio.to_thread(db.upgrade, fresh_database_url)
    assert await _apply_source(fresh_database_url) == guarded


def _downgrade(url: str, revision: str) -> None:
    from alembic import command

    command.downgrade(db.alembic_config(url), revision)

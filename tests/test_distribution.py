"""The schema distributes by community (issue 19, item 4): the migrated catalogue is
checked against ``timebank/distribution.py`` with the rules Citus applies to
``create_distributed_table`` and ``create_reference_table``, so that a later migration
cannot add a key Citus could not hold without this test failing.

Citus itself is not installed here (no package for this machine's PostgreSQL); the
rules below are the ones its documentation states for distributed tables:
https://docs.citusdata.com/en/stable/develop/reference_ddl.html
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from timebank import db, distribution

ROOT = Path(__file__).resolve().parents[1]

CATALOGUE = """
SELECT con.conname, con.contype::text AS contype, rel.relname AS child, prel.relname AS parent,
       ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.i)::text[] AS columns,
       ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, i)
               JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.i)::text[]
           AS parent_columns
  FROM pg_constraint con
  JOIN pg_class rel ON rel.oid = con.conrelid
  JOIN pg_namespace n ON n.oid = rel.relnamespace
  LEFT JOIN pg_class prel ON prel.oid = con.confrelid
 WHERE n.nspname = 'public' AND con.contype IN ('p', 'u', 'f', 'x')
"""

UNIQUE_INDEXES = """
SELECT i.indexrelid::regclass::text AS name, rel.relname AS child,
       ARRAY(SELECT a.attname FROM unnest(i.indkey::int2[]) k(n)
               JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n)::text[] AS columns
  FROM pg_index i
  JOIN pg_class rel ON rel.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = rel.relnamespace
 WHERE n.nspname = 'public' AND i.indisunique
   AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)
"""


async def _catalogue(url: str) -> tuple[list[Any], list[Any], dict[str, dict[str, tuple[str, bool]]]]:
    conn = await asyncpg.connect(db.to_asyncpg_dsn(url))
    try:
        constraints = await conn.fetch(CATALOGUE)
        indexes = await conn.fetch(UNIQUE_INDEXES)
        columns: dict[str, dict[str, tuple[str, bool]]] = {}
        for r in await conn.fetch(
            "SELECT c.relname, a.attname, format_type(a.atttypid, a.atttypmod) AS type, a.attnotnull"
            "  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
            "  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
            " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
        ):
            columns.setdefault(r["relname"], {})[r["attname"]] = (r["type"], r["attnotnull"])
        return constraints, indexes, columns
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def catalogue(database_url: str) -> Any:
    import asyncio

    return asyncio.run(_catalogue(database_url))


def test_every_table_is_reference_distributed_or_local(catalogue) -> None:
    _, _, columns = catalogue
    layout = [*distribution.REFERENCE_TABLES, *distribution.DISTRIBUTED, *distribution.LOCAL_TABLES]
    assert len(layout) == len(set(layout)), "a table is named twice"
    assert set(columns) == set(layout), (
        f"not in timebank/distribution.py: {sorted(set(columns) - set(layout))}; "
        f"no such table: {sorted(set(layout) - set(columns))}"
    )


def test_distributed_tables_have_a_uuid_distribution_column(catalogue) -> None:
    _, _, columns = catalogue
    for table, column in distribution.DISTRIBUTED.items():
        assert columns[table].get(column) == ("uuid", True), f"{table}.{column} is not a NOT NULL uuid"


def test_every_key_of_a_distributed_table_holds_its_distribution_column(catalogue) -> None:
    constraints, indexes, _ = catalogue
    keyed = set()
    wrong = []
    for c in constraints:
        column = distribution.DISTRIBUTED.get(c["child"])
        if column is None or c["contype"] == "f":
            continue
        if c["contype"] == "p":
            keyed.add(c["child"])
        if column not in c["columns"]:
            wrong.append(f"{c['child']}.{c['conname']} {c['columns']}")
    for i in indexes:
        column = distribution.DISTRIBUTED.get(i["child"])
        if column is not None and column not in i["columns"]:
            wrong.append(f"{i['child']} unique index {i['name']} {i['columns']}")
    assert not wrong, "keys Citus cannot hold on one shard:\n" + "\n".join(wrong)
    assert keyed == set(distribution.DISTRIBUTED), f"no primary key: {set(distribution.DISTRIBUTED) - keyed}"


def test_foreign_keys_join_on_the_distribution_column_or_are_listed(catalogue) -> None:
    constraints, _, _ = catalogue
    listed = {(r.table, r.constraint): r for r in distribution.CROSS_SHARD_REFERENCES}
    reference = set(distribution.REFERENCE_TABLES)
    wrong, seen = [], set()
    for c in constraints:
        if c["contype"] != "f":
            continue
        child, parent = c["child"], c["parent"]
        cross = listed.get((child, c["conname"]))
        if cross is not None:
            seen.add((child, c["conname"]))
            assert (cross.columns, cross.parent, cross.parent_columns) == (
                tuple(c["columns"]),
                parent,
                tuple(c["parent_columns"]),
            ), f"{child}.{c['conname']} is not what distribution.py says it is"
            continue
        if parent in reference:
            continue  # anything may point at a reference table
        if child in reference or child in distribution.LOCAL_TABLES:
            wrong.append(f"{child}.{c['conname']}: a reference table points at distributed {parent}")
            continue
        col, pcol = distribution.DISTRIBUTED[child], distribution.DISTRIBUTED[parent]
        pairs = list(zip(c["columns"], c["parent_columns"], strict=True))
        if (col, pcol) not in pairs:
            wrong.append(f"{child}.{c['conname']} {pairs}: does not join {child}.{col} to {parent}.{pcol}")
    assert not wrong, "foreign keys Citus cannot hold:\n" + "\n".join(wrong)
    assert seen == set(listed), f"listed but no such foreign key: {set(listed) - seen}"


def test_tables_are_distributed_after_the_tables_they_reference(catalogue) -> None:
    constraints, _, _ = catalogue
    listed = {(r.table, r.constraint) for r in distribution.CROSS_SHARD_REFERENCES}
    order = {t: i for i, t in enumerate([*distribution.REFERENCE_TABLES, *distribution.DISTRIBUTED])}
    for c in constraints:
        if c["contype"] == "f" and (c["child"], c["conname"]) not in listed and c["child"] != c["parent"]:
            assert order[c["parent"]] < order[c["child"]], f"{c['child']} comes before {c['parent']}"


def test_the_operations_guide_gives_the_commands() -> None:
    guide = (ROOT / "docs" / "operations.md").read_text()
    assert distribution.citus_commands() in guide, (
        "docs/operations.md: paste `timebank db citus-commands` again"
    )


async def test_the_audit_finds_a_reference_between_communities_that_names_nothing(fresh_database_url) -> None:
    """On Citus the foreign keys between communities are dropped; the audit holds them."""
    engine = create_async_engine(fresh_database_url)
    try:
        async with engine.begin() as conn:
            await conn.exec_driver_sql(
                "ALTER TABLE family_links DROP CONSTRAINT family_links_member_a_community_a_fkey"
            )
            await conn.exec_driver_sql(
                "INSERT INTO family_links (member_a, community_a, relation, code_expires_at)"
                f" VALUES ('{uuid.uuid4()}', '{uuid.uuid4()}', 'parent', now())"
            )
            found = await distribution.cross_reference_checks(conn)
        wrong = {name: rows for name, rows in found.items() if rows}
        assert list(wrong) == [
            "family_links.family_links_member_a_community_a_fkey: the member who made the family code exists"
        ], wrong
    finally:
        await engine.dispose()


async def test_migration_0012_goes_down_to_the_old_keys_and_up_again(fresh_database_url) -> None:
    import asyncio

    from alembic import command

    async def keys() -> dict[str, str]:
        conn = await asyncpg.connect(db.to_asyncpg_dsn(fresh_database_url))
        try:
            rows = await conn.fetch(
                "SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint"
                " WHERE conname IN ('transactions_pkey', 'people_login_key', 'crossings_from_transaction_id_fkey')"
            )
            return {r["conname"]: r["def"] for r in rows}
        finally:
            await conn.close()

    new = await keys()
    assert new["transactions_pkey"] == "PRIMARY KEY (id, community_id)"
    await asyncio.to_thread(command.downgrade, db.alembic_config(fresh_database_url), "0011")
    old = await keys()
    assert old == {
        "transactions_pkey": "PRIMARY KEY (id)",
        "people_login_key": "UNIQUE (login)",
        "crossings_from_transaction_id_fkey": "FOREIGN KEY (from_transaction_id) REFERENCES transactions(id)",
    }
    await asyncio.to_thread(db.upgrade, fresh_database_url)
    assert await keys() == new

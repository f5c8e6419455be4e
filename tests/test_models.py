"""The SQLModel table models say what the migrations made: one definition of each
entity's columns, checked against the migrated database (Alembic's compare_metadata).

Columns are compared (names, types, nullability, server defaults); indexes, triggers,
checks and foreign keys belong to the migrations alone, where the database holds the
ledger's invariants.
"""

from __future__ import annotations

import importlib
import pkgutil
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

import timebank

NOT_TABLES = {"alembic_version"}
COLUMN_DIFFS = {
    "add_table",
    "remove_table",
    "add_column",
    "remove_column",
    "modify_type",
    "modify_nullable",
    "modify_default",
}


def _import_every_models_module() -> list[str]:
    found = []
    for info in pkgutil.walk_packages(timebank.__path__, "timebank."):
        if info.name.rsplit(".", 1)[-1] == "models":
            importlib.import_module(info.name)
            found.append(info.name)
    return found


def _flatten(diffs: list[Any]) -> list[tuple[Any, ...]]:
    out = []
    for diff in diffs:
        out.extend(diff if isinstance(diff, list) else [diff])
    return out


def _include(obj: Any, name: str | None, type_: str, reflected: bool, compare_to: Any) -> bool:
    return type_ in {"table", "column"} and name not in NOT_TABLES


async def test_every_table_has_one_model_that_matches_the_migrations(engine) -> None:
    assert _import_every_models_module(), "no models modules found"

    def compare(sync_conn: Any) -> tuple[list[tuple[Any, ...]], set[str]]:
        context = MigrationContext.configure(
            sync_conn,
            opts={"compare_type": True, "compare_server_default": True, "include_object": _include},
        )
        tables = set(inspect(sync_conn).get_table_names()) - NOT_TABLES
        return _flatten(compare_metadata(context, SQLModel.metadata)), tables

    async with engine.connect() as conn:
        diffs, tables = await conn.run_sync(compare)
    assert set(SQLModel.metadata.tables) == tables, (
        f"tables without a model: {sorted(tables - set(SQLModel.metadata.tables))}; "
        f"models without a table: {sorted(set(SQLModel.metadata.tables) - tables)}"
    )
    drift = [d for d in diffs if d[0] in COLUMN_DIFFS]
    assert not drift, "\n".join(map(str, drift))


@pytest.mark.parametrize("broken", ["type", "nullable"])
async def test_the_comparison_sees_a_drifted_column(engine, broken) -> None:
    """The check above can fail: a model column changed in memory is reported."""
    from sqlalchemy import Integer

    _import_every_models_module()
    column = SQLModel.metadata.tables["parties"].c.display_name
    saved = (column.type, column.nullable)
    if broken == "type":
        column.type = Integer()
    else:
        column.nullable = not column.nullable

    def compare(sync_conn: Any) -> list[tuple[Any, ...]]:
        context = MigrationContext.configure(
            sync_conn, opts={"compare_type": True, "include_object": _include}
        )
        return _flatten(compare_metadata(context, SQLModel.metadata))

    try:
        async with engine.connect() as conn:
            diffs = await conn.run_sync(compare)
    finally:
        column.type, column.nullable = saved
    assert any(d[0] in COLUMN_DIFFS and "display_name" in str(d) for d in diffs), diffs

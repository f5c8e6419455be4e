"""How the schema spreads over several PostgreSQL servers (Citus), by community.

One PostgreSQL holds a district easily; a deployment that outgrows it moves to Citus
and distributes its tables by community, so that each community's ledger (accounts,
transactions, entries, receipts, log) lives whole on one worker and nearly every query
and every posting touches one worker only. This module is the one statement of that
layout: which table is distributed by which column, which is a reference table (small,
global, copied to every worker), and which references cross communities. Migration
0012 made the keys fit it; ``tests/test_distribution.py`` checks the migrated
catalogue against it, so a later migration cannot break it unnoticed; ``timebank
audit`` checks the cross-community references (``audits.REGISTRY``); and
``citus_commands()`` prints the commands docs/operations.md gives.

Citus holds a primary or unique key only when it contains the distribution column,
and a foreign key between distributed tables only when it joins them on it. A
reference table may not point at a distributed one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from timebank.core.audit import run_checks

# Global tables: copied to every worker. Small, written rarely.
REFERENCE_TABLES: tuple[str, ...] = (
    "communities",
    "log_keys",
    "logins",  # a login is unique in the deployment (migration 0012)
    "districts",
    "district_members",  # read by every crossing, whichever worker runs it
    "family_links",  # a relation between two members, often of two communities
    "family_grants",
    "proxy_actions",
    "job_runs",  # which scheduled run ran, deployment-wide
    # a certificate is checked by its number alone, from the public page, so the number
    # is unique in the deployment (random: the key catches the rare repeat)
    "certificates",
)

# Distributed tables and their distribution column, in an order where every table
# comes after the tables it references (Citus distributes the referenced first).
# A district's own tables are distributed by the district's id, which is the id of
# the district's ledger (a ``communities`` row), so they live beside that ledger.
DISTRIBUTED: dict[str, str] = {
    "parties": "community_id",
    "accounts": "community_id",
    "transactions": "community_id",
    "entries": "community_id",
    "idempotency_keys": "community_id",
    "ledger_rollups": "community_id",
    "community_policies": "community_id",
    "api_keys": "community_id",
    "people": "community_id",
    "sign_in_links": "community_id",
    "web_sessions": "community_id",
    "log_queue": "community_id",
    "log_leaves": "community_id",
    "log_nodes": "community_id",
    "log_checkpoints": "community_id",
    "service_records": "community_id",
    "service_reversals": "community_id",
    "activities": "community_id",
    "activity_signups": "community_id",
    "points_lots": "community_id",
    "points_consumptions": "community_id",
    "notifications": "community_id",
    "rewards": "community_id",
    "redemption_counts": "community_id",
    "redemptions": "community_id",
    "crossings": "district_id",
    "district_settlements": "district_id",
    "settlement_parts": "community_id",
}

# Left out of the layout: Alembic's own bookkeeping stays on the coordinator.
LOCAL_TABLES: tuple[str, ...] = ("alembic_version",)


@dataclass(frozen=True)
class CrossReference:
    """A foreign key that joins two communities (or a reference table to a community's
    row): PostgreSQL holds it on one server; on Citus it is dropped and ``timebank
    audit`` checks it instead (``cross_reference_checks``)."""

    table: str
    constraint: str
    columns: tuple[str, ...]
    parent: str
    parent_columns: tuple[str, ...]
    why: str

    def orphans_sql(self) -> str:
        """The rows whose reference names no row of the parent."""
        present = " AND ".join(f"c.{c} IS NOT NULL" for c in self.columns)
        joined = " AND ".join(
            f"p.{pc} = c.{c}" for c, pc in zip(self.columns, self.parent_columns, strict=True)
        )
        shown = ", ".join(f"c.{c}" for c in self.columns)
        return (
            f"SELECT {shown} FROM {self.table} c"
            f" WHERE {present} AND NOT EXISTS (SELECT 1 FROM {self.parent} p WHERE {joined})"
        )


def _ref(
    table: str, constraint: str, columns: str, parent: str, parent_columns: str, why: str
) -> CrossReference:
    return CrossReference(
        table, constraint, tuple(columns.split()), parent, tuple(parent_columns.split()), why
    )


_ACCOUNT, _TX, _PARTY = "id community_id", "id community_id", "id community_id"
CROSS_SHARD_REFERENCES: tuple[CrossReference, ...] = (
    _ref("crossings", "crossings_from_account_id_fkey", "from_account_id from_community_id", "accounts", _ACCOUNT,
         "the sender's account, in the sending community"),
    _ref("crossings", "crossings_from_transaction_id_fkey", "from_transaction_id from_community_id",
         "transactions", _TX, "the crossing's first part, in the sending ledger"),
    _ref("crossings", "crossings_to_account_id_fkey", "to_account_id to_community_id", "accounts", _ACCOUNT,
         "the recipient's account, in the receiving community"),
    _ref("crossings", "crossings_to_transaction_id_fkey", "to_transaction_id to_community_id", "transactions", _TX,
         "the crossing's last part, in the receiving ledger"),
    _ref("settlement_parts", "settlement_parts_settlement_id_fkey", "settlement_id district_id",
         "district_settlements", "id district_id", "a community's part of its district's settlement"),
    _ref("redemptions", "redemptions_member_fkey", "member_id member_community_id", "parties", _PARTY,
         "a member of another community redeeming at this community's merchant"),
    _ref("district_members", "district_members_party_id_district_id_fkey", "party_id district_id", "parties",
         _PARTY, "the member community's party in the district's ledger"),
    _ref("family_links", "family_links_member_a_community_a_fkey", "member_a community_a", "parties", _PARTY,
         "the member who made the family code"),
    _ref("family_links", "family_links_member_b_community_b_fkey", "member_b community_b", "parties", _PARTY,
         "the relative who answered it"),
)  # fmt: skip


async def cross_reference_checks(conn: Any) -> dict[str, list[dict[str, Any]]]:
    """`timebank audit`: every reference between communities names a row that exists
    (on one PostgreSQL its foreign key holds it too; on Citus only this does)."""
    return await run_checks(
        conn,
        {f"{r.table}.{r.constraint}: {r.why} exists": r.orphans_sql() for r in CROSS_SHARD_REFERENCES},
    )


def citus_commands() -> str:
    """The SQL that distributes a migrated timebank database on a Citus coordinator
    (workers added), in the order Citus needs it."""
    lines = [
        "-- on the coordinator, with the workers added (citus_add_node) and the service stopped",
        "CREATE EXTENSION IF NOT EXISTS citus;",
        "-- the ledger's triggers touch only their own community's rows, which live on the same worker",
        "SET citus.enable_unsafe_triggers = on;",
        "-- 1. references between communities: `timebank audit` checks them from now on",
    ]
    lines += [f"ALTER TABLE {r.table} DROP CONSTRAINT {r.constraint};" for r in CROSS_SHARD_REFERENCES]
    lines.append("-- 2. global tables, copied to every worker")
    lines += [f"SELECT create_reference_table('{t}');" for t in REFERENCE_TABLES]
    lines.append("-- 3. each community's rows on one worker, all tables co-located")
    first = next(iter(DISTRIBUTED))
    for table, column in DISTRIBUTED.items():
        colocate = "'none'" if table == first else f"'{first}'"
        lines.append(f"SELECT create_distributed_table('{table}', '{column}', colocate_with => {colocate});")
    return "\n".join(lines) + "\n"

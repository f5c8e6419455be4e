"""Reading a transaction as a key may see it, with what resolved or reversed it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.problems import NotFound
from timebank.core.roles import Role
from timebank.core.terms import Kind
from timebank.ledger import queries
from timebank.ledger.views import transaction_view


async def load_transaction(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> Any:
    tx = await queries.transaction_in_community(conn, community_id, tx_id)
    if tx is None:
        raise NotFound(f"transaction {tx_id} not found")
    return tx


async def get_transaction(conn: AsyncConnection, principal: Principal, tx_id: uuid.UUID) -> dict[str, Any]:
    tx = await load_transaction(conn, principal.community_id, tx_id)
    entries = await queries.entries_with_owners(conn, tx_id)
    # a district admin reads its district's own ledger (its transactions name communities' accounts only)
    if principal.role not in (Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN) and not any(
        e.party_id is not None and e.party_id == principal.subject_id for e in entries
    ):
        raise NotFound(f"transaction {tx_id} not found")
    related = await queries.related_transactions(conn, tx_id)
    resolver = next(
        (r for r in related if r.kind != Kind.REVERSAL and r.phase in ("post", "void", "expire")), None
    )
    reversal = next((r.id for r in related if r.kind == Kind.REVERSAL), None)
    return transaction_view(tx, entries, resolver=resolver, reversed_by=reversal)


async def created_view(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
    """The transaction as its creating request answered it (for idempotent replays)."""
    tx = await load_transaction(conn, community_id, tx_id)
    return transaction_view(tx, await queries.entries_with_owners(conn, tx_id))

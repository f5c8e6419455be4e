"""The volunteer package's reads of the community package's tables (parties, communities).

They belong in ``timebank.community.queries`` by their tables; they are here, in one
module, because ``community`` imports this package (the member view shows a volunteer's
standing), so importing ``community`` from here would make an import cycle. The day
that edge goes, each function becomes a call of ``community.queries``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from typing import Any

from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.roles import PartyKind


async def organisations_among(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> set[uuid.UUID]:
    """Those of ``ids`` that are organisations of the community."""
    found = await conn.execute(
        text("SELECT id FROM parties WHERE community_id = :c AND kind = 'organisation' AND id = ANY(:ids)"),
        {"c": community_id, "ids": list(ids)},
    )
    return {r.id for r in found}


async def members_by_id_or_ref(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID], refs: Iterable[str]
) -> list[Row[Any]]:
    """(id, external_ref) of the community's members with one of these ids or external refs."""
    found = await conn.execute(
        text(
            "SELECT id, external_ref FROM parties WHERE community_id = :c AND kind = 'member' "
            "AND (id = ANY(:ids) OR external_ref = ANY(:refs))"
        ),
        {"c": community_id, "ids": list(ids), "refs": list(refs)},
    )
    return list(found.all())


async def lock_parties(conn: AsyncConnection, ids: Sequence[uuid.UUID]) -> None:
    """Row locks on parties, in id order (so two lockers never deadlock)."""
    await conn.execute(
        text("SELECT 1 FROM parties WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": list(ids)}
    )


async def is_member(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> bool:
    found = await conn.execute(
        text("SELECT 1 FROM parties WHERE id = :m AND community_id = :c AND kind = :k"),
        {"m": member_id, "c": community_id, "k": PartyKind.MEMBER.value},
    )
    return found.first() is not None


async def display_names(conn: AsyncConnection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, str]:
    found = await conn.execute(
        text("SELECT id, display_name FROM parties WHERE id = ANY(:ids)"), {"ids": list(set(ids))}
    )
    return {r.id: r.display_name for r in found}


async def community_name(conn: AsyncConnection, community_id: uuid.UUID) -> str:
    found = await conn.execute(text("SELECT name FROM communities WHERE id = :c"), {"c": community_id})
    return str(found.scalar_one())

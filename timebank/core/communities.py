"""The community (tenant) as every package sees it: does it exist, and its time zone.

One function each, so the rule for reading them lives once (the ``community``
package owns the table and writes it).
"""

from __future__ import annotations

import uuid
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

_ZONE = text("SELECT timezone FROM communities WHERE id = :c")


async def find_community_zone(conn: AsyncConnection, community_id: uuid.UUID) -> ZoneInfo | None:
    """The community's time zone, or None when there is no such community."""
    name = (await conn.execute(_ZONE, {"c": community_id})).scalar_one_or_none()
    return None if name is None else ZoneInfo(name)


async def community_zone(conn: AsyncConnection, community_id: uuid.UUID) -> ZoneInfo:
    """The time zone of a community that exists (days, periods and expiry are local)."""
    zone = await find_community_zone(conn, community_id)
    if zone is None:
        raise LookupError(f"no community {community_id}")
    return zone

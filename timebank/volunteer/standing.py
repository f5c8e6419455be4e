"""A volunteer's standing: lifetime approved service and the star level it gives (星级志愿者).

Lifetime minutes are summed in one query (``queries.lifetime_minutes``) and turned into
stars by the community's thresholds in one formula (``Policy.star_level``); the member
view and approval read them so; redemption's star-level rules call the query itself.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.policy import current_policy
from timebank.volunteer.queries import lifetime_minutes


async def standing(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    """Lifetime approved service and the star level it gives (星级志愿者)."""
    _, policy, _ = await current_policy(conn, community_id)
    minutes = await lifetime_minutes(conn, member_id)
    return {
        "lifetime_minutes": minutes,
        "star_level": policy.star_level(minutes),
        "minutes_to_next_level": policy.minutes_to_next_level(minutes),
    }

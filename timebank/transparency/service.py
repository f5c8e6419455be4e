"""What a community's public page shows (``/p/{community}``), read from the services that
own each part: the reports' headline figures (aggregates only), the log's checkpoints
and the published keys. Nothing here names a member: no names, no member ids.

The figures come from one REPEATABLE READ snapshot, like ``/v1/reports/*``, so this
month and all time agree with each other and with the entries at ``generated_at``.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as communities
from timebank.core.communities import find_community_zone
from timebank.core.policy import current_policy
from timebank.log import proofs, registry
from timebank.reports import service as reports

HISTORY_PAGE = 10  # checkpoints per page of the history


async def find_community(conn: AsyncConnection, community_id: uuid.UUID) -> tuple[str, str] | None:
    """(name, time zone) of the community if it exists; None if there is no such community.
    Whether it publishes its page: ``publishes``."""
    zone = await find_community_zone(conn, community_id)
    if zone is None:
        return None
    return (await communities.community_by_id(conn, community_id)).name, zone.key


async def publishes(conn: AsyncConnection, community_id: uuid.UUID) -> bool:
    """The community's policy switch ``public_page`` (default on)."""
    _version, policy, _row = await current_policy(conn, community_id)
    return policy.public_page


def _key_view(jwk: dict[str, Any]) -> dict[str, Any]:
    return {
        "kid": jwk["kid"],
        "since": datetime.fromisoformat(jwk["created_at"]) if jwk.get("created_at") else None,
        "until": datetime.fromisoformat(jwk["retired_at"]) if jwk.get("retired_at") else None,
        "status": "retired" if jwk.get("retired_at") else "current",
    }


def _checkpoint_view(item: dict[str, Any]) -> dict[str, Any]:
    return {**item, "at": datetime.fromisoformat(item["created_at"])}


async def public_page(conn: AsyncConnection, community_id: uuid.UUID, before: int | None) -> dict[str, Any]:
    """The page's content (the caller checked the community exists and publishes):
    headline figures, the latest checkpoint, a page of the checkpoint history (newest
    first, sizes below ``before``), and the published keys, newest first."""
    figures = await reports.headline(conn, community_id)
    history, next_cursor = await proofs.checkpoint_history(conn, community_id, None, 1)
    latest = _checkpoint_view(history[0]) if history else None
    items, next_cursor = await proofs.checkpoint_history(conn, community_id, before, HISTORY_PAGE)
    keys = (await registry.key_set(conn))["keys"]
    return {
        "figures": figures,
        "generated_at": datetime.fromisoformat(figures["generated_at"]),
        "latest": latest,
        "history": [_checkpoint_view(i) for i in items],
        "next_cursor": next_cursor,
        "keys": [_key_view(k) for k in reversed(keys)],
    }

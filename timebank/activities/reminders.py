"""The day-before reminder (job ``activity-reminders``, daily per community).

Each run tells the signed-up volunteers of every published activity that starts
before the end of tomorrow (the community's local day) and has not started yet, and
marks their sign-up reminded in the same transaction: a volunteer is reminded once
per activity, however often the job runs, and an activity published today for
tomorrow is still announced by the next run.
"""

from __future__ import annotations

import uuid
from datetime import datetime, time, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.activities import queries
from timebank.activities.service import notice_payload
from timebank.core.communities import community_zone
from timebank.notifications.service import notify


async def remind_upcoming(engine: AsyncEngine, community_id: uuid.UUID, now: datetime) -> dict[str, Any]:
    async with engine.begin() as conn:
        tz = await community_zone(conn, community_id)
        day_after = datetime.combine(now.astimezone(tz).date() + timedelta(days=2), time(0), tz)
        due = await queries.lock_due_reminders(conn, community_id, now, day_after)
        for row in due:
            await notify(
                conn, community_id, "activity_reminder", [row.member_id], notice_payload(_Shown(row)), now
            )
        await queries.mark_reminded(conn, [(r.activity_id, r.member_id) for r in due], now)
    return {"reminders": len(due)}


class _Shown:
    """The fields of an activity a notice shows, from a reminder's row."""

    def __init__(self, row: Any) -> None:
        self.id, self.title, self.place, self.starts_at = row.activity_id, row.title, row.place, row.starts_at

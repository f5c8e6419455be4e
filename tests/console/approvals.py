"""A community with organisations, volunteers and waiting service records, and staff
who sign in: the approval queue's tests (over HTTP and in a browser) share it."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from tests.people.pages import add_person

ZONE = ZoneInfo("Asia/Shanghai")
PASSWORD = "staff-password-1"
IDEM = re.compile(r'name="idem" value="([^"]+)"')
CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def local(days_ago: int, hour: float) -> datetime:
    """A moment ``days_ago`` local days back at ``hour`` o'clock in the community's zone."""
    day = datetime.now(ZONE).date() - timedelta(days=days_ago)
    return datetime.combine(day, time(0), ZONE) + timedelta(hours=hour)


@dataclass
class Desk:
    """The community's staff desk: two organisations, volunteers, records, staff logins."""

    t: Any
    orgs: dict[str, dict[str, Any]] = field(default_factory=dict)
    recorders: dict[str, str] = field(default_factory=dict)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def setup(self) -> Desk:
        for name in ("华锦志愿服务队", "阳光助老队"):
            self.orgs[name] = await self.t.party("organisations", name)
            self.recorders[name] = await self.t.key("recorder", self.orgs[name]["id"])
        # The desk's records are entered by hand (back-filled, 补录): they earn points here.
        r = await self.t.client.put(
            "/v1/community/policy", json={"backfilled_points": True}, headers=self.t.auth()
        )
        assert r.status_code == 200, r.text
        return self

    async def member(self, name: str) -> dict[str, Any]:
        self.members[name] = await self.t.member(name)
        return self.members[name]

    async def record(
        self,
        member: str,
        start: datetime,
        hours: float,
        *,
        org: str = "华锦志愿服务队",
        activity: str = "陪老人聊天",
        category: str = "volunteer_service",
    ) -> dict[str, Any]:
        r = await self.t.client.post(
            "/v1/service-records",
            headers=self.t.auth(self.recorders[org]),
            json={
                "member_id": self.members[member]["id"],
                "activity": activity,
                "category": category,
                "place": "华锦社区活动室",
                "started_at": start.isoformat(),
                "ended_at": (start + timedelta(hours=hours)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def staff(self, role: str, name: str, subject_id: str | None = None) -> str:
        """A person of ``role`` with a password; their login."""
        login = f"{role}-{uuid.uuid4().hex[:8]}"
        await add_person(self.t, role, subject_id, name, login, PASSWORD)
        return login

    async def api(self, path: str) -> Any:
        r = await self.t.client.get(path, headers=self.t.auth())
        assert r.status_code == 200, (path, r.text)
        return r.json()

    async def standing(self, member: str) -> dict[str, Any]:
        return await self.api(f"/v1/members/{self.members[member]['id']}")

    async def balances(self, member: str) -> dict[str, int]:
        body = await self.api(f"/v1/members/{self.members[member]['id']}/balances")
        return {asset: b["posted"] for asset, b in body.items()}

    async def record_status(self, record_id: str) -> dict[str, Any]:
        return await self.api(f"/v1/service-records/{record_id}")

    async def approve_by_api(self, record_id: str) -> dict[str, Any]:
        r = await self.t.client.post(
            f"/v1/service-records/{record_id}/approve",
            headers={**self.t.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        return r.json()

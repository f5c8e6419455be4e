"""An organisation with an activity, its organiser and volunteers, spoken to over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any

from timebank.core.clock import Clock


class FixedClock(Clock):
    """The activities' clock held at one instant (``app.state.clock``)."""

    def __init__(self, moment: datetime) -> None:
        self.moment = moment

    def now(self, tz: tzinfo | None = None) -> datetime:
        return self.moment.astimezone(tz or UTC)


@contextmanager
def clock_at(client: Any, moment: datetime) -> Iterator[FixedClock]:
    """Hold the app's clock at ``moment`` inside the block (the client is shared: put it back)."""
    state = client.app.state
    clock = FixedClock(moment)
    state.clock = clock
    try:
        yield clock
    finally:
        state.clock = None


def now() -> datetime:
    return datetime.now(UTC)


class Activities:
    """A community with an organisation, its recorder key, and helpers for activities."""

    def __init__(self, tenant: Any) -> None:
        self.t = tenant
        self.c = tenant.client

    async def setup(self) -> Activities:
        self.org = await self.t.party("organisations", "华锦志愿服务队")
        self.recorder = await self.t.key("recorder", self.org["id"])
        return self

    async def volunteer(self, name: str = "王阿姨") -> tuple[dict[str, Any], str]:
        member = await self.t.member(name)
        return member, await self.t.key("resident", member["id"])

    def body(self, start: datetime, end: datetime, **extra: Any) -> dict[str, Any]:
        return {
            "title": "敬老院陪伴",
            "category": "volunteer_service",
            "place": "华锦社区日间照料中心",
            "starts_at": start.isoformat(),
            "ends_at": end.isoformat(),
            "capacity": 10,
            **extra,
        }

    async def publish(
        self, start: datetime, end: datetime, key: str | None = None, **extra: Any
    ) -> dict[str, Any]:
        r = await self.c.post(
            "/v1/activities", json=self.body(start, end, **extra), headers=self.t.auth(key or self.recorder)
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def ongoing(self, **extra: Any) -> dict[str, Any]:
        """An activity that began an hour ago and ends in an hour; sign-up open till its end."""
        start = now() - timedelta(hours=1)
        end = now() + timedelta(hours=1)
        return await self.publish(start, end, signup_closes_at=end.isoformat(), **extra)

    async def sign_up(self, activity_id: str, key: str, member_id: str | None = None) -> Any:
        body = {} if member_id is None else {"member_id": member_id}
        return await self.c.post(f"/v1/activities/{activity_id}/signups", json=body, headers=self.t.auth(key))

    async def withdraw(self, activity_id: str, member_id: str, key: str) -> Any:
        return await self.c.delete(
            f"/v1/activities/{activity_id}/signups/{member_id}", headers=self.t.auth(key)
        )

    async def code(self, activity_id: str, key: str | None = None) -> dict[str, Any]:
        r = await self.c.get(
            f"/v1/activities/{activity_id}/check-in-code", headers=self.t.auth(key or self.recorder)
        )
        assert r.status_code == 200, r.text
        return r.json()

    async def scan(self, activity_id: str, key: str, **body: Any) -> Any:
        return await self.c.post(f"/v1/activities/{activity_id}/scan", json=body, headers=self.t.auth(key))

    async def by_hand(self, activity_id: str, member_id: str, step: str, at: datetime | None = None) -> Any:
        body = {} if at is None else {"at": at.isoformat()}
        return await self.c.post(
            f"/v1/activities/{activity_id}/attendance/{member_id}/{step}",
            json=body,
            headers=self.t.auth(self.recorder),
        )

    async def attendance(self, activity_id: str) -> dict[str, Any]:
        r = await self.c.get(f"/v1/activities/{activity_id}/attendance", headers=self.t.auth(self.recorder))
        assert r.status_code == 200, r.text
        return r.json()

    async def records(self, member_id: str) -> list[dict[str, Any]]:
        r = await self.c.get(f"/v1/members/{member_id}/service-records", headers=self.t.auth())
        assert r.status_code == 200, r.text
        return r.json()["items"]

    async def set_policy(self, **fields: Any) -> None:
        r = await self.c.put("/v1/community/policy", json=fields, headers=self.t.auth())
        assert r.status_code == 200, r.text

"""A district of fresh communities, joined by both sides' consent, spoken to over HTTP."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

import httpx
from conftest import Tenant
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.community.service import create_community
from timebank.districts.service import create_district


@dataclass
class District:
    client: httpx.AsyncClient
    id: str
    admin_key: str
    communities: list[Tenant] = field(default_factory=list)

    def auth(self, key: str | None = None) -> dict[str, str]:
        return {"Authorization": f"Bearer {key or self.admin_key}"}

    async def get(self, path: str, key: str | None = None, **params: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth(key), params=params)

    async def positions(self) -> dict[tuple[str, str], int]:
        r = await self.get("/v1/district/positions")
        assert r.status_code == 200, r.text
        return {
            (item["community_id"], asset): a["position"]
            for item in r.json()["items"]
            for asset, a in item["assets"].items()
        }

    async def set_limits(self, community: Tenant, **limits: int) -> None:
        r = await self.client.put(
            f"/v1/district/communities/{community.id}/limits", json=limits, headers=self.auth()
        )
        assert r.status_code == 200, r.text

    async def set_points_value(self, community: Tenant, points_per_unit: int) -> None:
        r = await self.client.put(
            f"/v1/district/communities/{community.id}/points-value",
            json={"points_per_unit": points_per_unit},
            headers=self.auth(),
        )
        assert r.status_code == 200, r.text

    async def set_rate(self, a: Tenant, b: Tenant, a_points: int, b_points: int) -> None:
        """``a_points`` of A's points worth ``b_points`` of B's: by the two communities' values
        (which sets their rates with every other community too)."""
        await self.set_points_value(a, a_points)
        await self.set_points_value(b, b_points)

    async def second_admin_key(self) -> str:
        r = await self.client.post("/v1/api-keys", json={"role": "district_admin"}, headers=self.auth())
        assert r.status_code == 201, r.text
        return r.json()["key"]


async def new_tenant(client: httpx.AsyncClient, engine: AsyncEngine, name: str = "社区") -> Tenant:
    async with engine.begin() as conn:
        created = await create_community(conn, f"{name} {uuid.uuid4().hex[:6]}")
    t = Tenant(client, created["community_id"], created["admin_key"])
    t.accounts = (await client.get("/v1/community", headers=t.auth())).json()["accounts"]
    return t


async def new_district(
    client: httpx.AsyncClient,
    engine: AsyncEngine,
    communities: int = 3,
    hour_limit: int = 6000,
    point_limit: int = 5000,
) -> District:
    """A district whose ``communities`` fresh communities have joined (both consents given)."""
    async with engine.begin() as conn:
        created = await create_district(
            conn, f"街道 {uuid.uuid4().hex[:6]}", "Asia/Shanghai", hour_limit, point_limit
        )
    d = District(client, created["district_id"], created["admin_key"])
    for n in range(communities):
        t = await new_tenant(client, engine, f"社区{n + 1}")
        r = await client.post("/v1/district/communities", json={"community_id": t.id}, headers=d.auth())
        assert r.status_code == 200 and r.json()["status"] == "invited", r.text
        r = await client.post("/v1/community/district", json={"district_id": d.id}, headers=t.auth())
        assert r.status_code == 200 and r.json()["status"] == "joined", r.text
        t.accounts = (await client.get("/v1/community", headers=t.auth())).json()["accounts"]
        d.communities.append(t)
    return d


async def cross(
    sender: Tenant, key: str | None, body: dict[str, Any], idem: str | None = None
) -> httpx.Response:
    headers = {**sender.auth(key), "Idempotency-Key": idem or str(uuid.uuid4())}
    return await sender.client.post("/v1/crossings", json=body, headers=headers)

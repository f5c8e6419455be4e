"""Family links over HTTP: members with resident keys, offers, answers, confirmations."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from conftest import Tenant


@dataclass
class Member:
    tenant: Tenant
    party: dict[str, Any]
    key: str

    @property
    def id(self) -> str:
        return self.party["id"]

    @property
    def client(self) -> httpx.AsyncClient:
        return self.tenant.client

    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    async def post(self, path: str, body: Any = None, idem: str | None = None) -> httpx.Response:
        headers = self.auth()
        if idem is not None:
            headers["Idempotency-Key"] = idem
        return await self.client.post(path, json=body, headers=headers)

    async def get(self, path: str, **params: Any) -> httpx.Response:
        return await self.client.get(path, headers=self.auth(), params=params)

    async def put(self, path: str, body: Any) -> httpx.Response:
        return await self.client.put(path, json=body, headers=self.auth())

    async def balance(self, asset: str) -> dict[str, Any]:
        return await self.tenant.balance(self.party["accounts"][asset])

    async def offer(self, relation: str = "parent") -> dict[str, Any]:
        r = await self.post("/v1/family-links", {"relation": relation})
        assert r.status_code == 201, r.text
        return r.json()

    async def accept(self, code: str) -> httpx.Response:
        return await self.post("/v1/family-links/accept", {"code": code})

    async def gift(self, link_id: str, asset: str, amount: int, idem: str | None = None, **extra: Any):
        body = {"asset": asset, "amount": amount, **extra}
        return await self.post(f"/v1/family-links/{link_id}/gifts", body, idem or str(uuid.uuid4()))

    async def grant(self, link_id: str, *actions: str) -> httpx.Response:
        return await self.put(f"/v1/family-links/{link_id}/grants", {"actions": list(actions)})

    async def act_give(self, link_id: str, body: dict[str, Any], idem: str | None = None) -> httpx.Response:
        return await self.post(f"/v1/family-links/{link_id}/act/give", body, idem or str(uuid.uuid4()))

    async def act_redeem(self, link_id: str, reward_id: str, idem: str | None = None) -> httpx.Response:
        body = {"reward_id": reward_id}
        return await self.post(f"/v1/family-links/{link_id}/act/redeem", body, idem or str(uuid.uuid4()))


async def member(tenant: Tenant, name: str) -> Member:
    party = await tenant.member(name)
    return Member(tenant, party, await tenant.key("resident", party["id"]))


async def admin_post(tenant: Tenant, path: str) -> httpx.Response:
    return await tenant.client.post(path, headers=tenant.auth())


async def admin_get(tenant: Tenant, path: str, **params: Any) -> httpx.Response:
    return await tenant.client.get(path, headers=tenant.auth(), params=params)


async def live_link(asker: Member, answerer: Member, relation: str = "parent") -> dict[str, Any]:
    """A link offered by ``asker``, answered by ``answerer`` and confirmed by the asker's staff."""
    offer = await asker.offer(relation)
    r = await answerer.accept(offer["code"])
    assert r.status_code == 200, r.text
    r = await admin_post(asker.tenant, f"/v1/family-links/{offer['id']}/confirm")
    assert r.status_code == 200 and r.json()["status"] == "live", r.text
    return r.json()

"""A shop for the merchant pages' tests (over HTTP and in the browser): a merchant with
its API key and a shop assistant who signs in, and residents who redeem its rewards
through the API."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.people.pages import add_person, browser, sign_in

SHANGHAI = ZoneInfo("Asia/Shanghai")
PASSWORD = "a-good-password"


def new_login() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


def today() -> date:
    return datetime.now(UTC).astimezone(SHANGHAI).date()


def spaced(code: str) -> str:
    """The code as a hurried shop assistant types it: lower case, a space and a dash."""
    return f" {code[:4].lower()} - {code[4:].lower()} "


class Shop:
    def __init__(self, tenant: Any) -> None:
        self.t = tenant
        self.c: httpx.AsyncClient = tenant.client

    async def setup(self, name: str = "爱心超市") -> Shop:
        self.merchant = await self.t.party("merchants", name)
        self.key = await self.t.key("merchant", self.merchant["id"])
        self.login = new_login()
        await add_person(self.t, "merchant", self.merchant["id"], f"{name}店员", self.login, PASSWORD)
        return self

    @asynccontextmanager
    async def assistant(self, lang: str = "en") -> AsyncIterator[httpx.AsyncClient]:
        """The shop assistant's phone (an in-process client), signed in."""
        async with browser(self.c, lang) as phone:
            r = await sign_in(phone, self.login, PASSWORD)
            assert r.status_code == 303 and r.headers["location"] == "/counter", r.text
            yield phone

    async def reward(self, **fields: Any) -> dict[str, Any]:
        r = await self.c.post(
            "/v1/rewards",
            json={"title": "十斤大米", "price_points": 10, **fields},
            headers=self.t.auth(self.key),
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def deactivate(self, reward: dict[str, Any]) -> None:
        r = await self.c.post(f"/v1/rewards/{reward['id']}/deactivate", headers=self.t.auth(self.key))
        assert r.status_code == 200, r.text

    async def resident(self, name: str = "李秀英", points: int = 100) -> tuple[dict[str, Any], str]:
        member = await self.t.member(name)
        await self.t.fund(member["accounts"]["POINT"], "POINT", points)
        return member, await self.t.key("resident", member["id"])

    async def voucher(self, reward: dict[str, Any], member: dict[str, Any], key: str) -> dict[str, Any]:
        r = await self.c.post(
            "/v1/redemptions",
            json={"reward_id": reward["id"], "member_id": member["id"]},
            headers={**self.t.auth(key), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def confirm(self, voucher: dict[str, Any]) -> None:
        r = await self.c.post(
            f"/v1/redemptions/{voucher['id']}/confirm",
            json={"code": voucher["code"]},
            headers=self.t.auth(self.key),
        )
        assert r.status_code == 201, r.text

    async def points(self, member: dict[str, Any]) -> dict[str, Any]:
        r = await self.c.get(f"/v1/members/{member['id']}/points", headers=self.t.auth())
        assert r.status_code == 200, r.text
        return r.json()

    async def takings(self) -> dict[str, Any]:
        return await self.t.balance(self.merchant["accounts"]["POINT"])

    async def statement(self, first: Any, last: Any, fmt: str = "json") -> httpx.Response:
        r = await self.c.get(
            f"/v1/merchants/{self.merchant['id']}/statement?from={first}&to={last}&format={fmt}",
            headers=self.t.auth(self.key),
        )
        assert r.status_code == 200, r.text
        return r

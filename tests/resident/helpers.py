"""A signed-in resident for page tests over HTTP (no browser), and reading pages."""

from __future__ import annotations

import html
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from typing import Any

import httpx

from tests.people.pages import add_person, browser, csrf, sign_in

PASSWORD = "a-good-password"
IDEM = re.compile(r'name="idem" value="([^"]+)"')


def new_login() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


@dataclass
class Resident:
    member: dict[str, Any]
    login: str
    key: str  # a resident API key of the same member, to compare the pages with the API
    phone: httpx.AsyncClient

    @property
    def id(self) -> str:
        return self.member["id"]

    async def page(self, path: str, status: int = 200) -> str:
        r = await self.phone.get(path)
        assert r.status_code == status, (path, r.status_code, r.text[:2000])
        return r.text

    async def form(self, page_path: str, action: str, **fields: Any) -> httpx.Response:
        """Post ``fields`` to ``action`` with the CSRF token (and the idempotency key, if
        the form has one) of the form on ``page_path``."""
        page = await self.phone.get(page_path)
        assert page.status_code == 200, (page_path, page.status_code, page.text[:2000])
        found = IDEM.search(page.text)
        if found and "idem" not in fields:
            fields["idem"] = found.group(1)
        token = await csrf(self.phone, page_path)
        return await self.phone.post(action, data={"_csrf_token": token, **fields})

    async def post(self, page_path: str, action: str, **fields: Any) -> httpx.Response:
        token = await csrf(self.phone, page_path)
        return await self.phone.post(action, data={"_csrf_token": token, **fields})


@asynccontextmanager
async def resident(
    tenant: Any, name: str = "刘阿姨", *, minutes: int = 0, points: int = 0, lang: str = "en"
) -> AsyncIterator[Resident]:
    """A member with a person signed in with a password, on a phone of their own."""
    member = await tenant.member(name)
    if minutes:
        await tenant.fund(member["accounts"]["HOUR"], "HOUR", minutes)
    if points:
        await tenant.fund(member["accounts"]["POINT"], "POINT", points)
    login = new_login()
    await add_person(tenant, "resident", member["id"], name, login, PASSWORD)
    async with browser(tenant.client, lang) as phone:
        r = await sign_in(phone, login, PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/me", r.text
        yield Resident(member, login, await tenant.key("resident", member["id"]), phone)


async def api(tenant: Any, path: str, key: str | None = None) -> Any:
    r = await tenant.client.get(path, headers=tenant.auth(key))
    assert r.status_code == 200, (path, r.text)
    return r.json()


class _Element(HTMLParser):
    """The text inside the element with one id (its descendants' too)."""

    VOID = {"area", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "wbr"}

    def __init__(self, element_id: str) -> None:
        super().__init__()
        self.element_id, self.depth, self.found, self.parts = element_id, 0, False, []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self.VOID:
            return
        if self.depth:
            self.depth += 1
        elif dict(attrs).get("id") == self.element_id and not self.found:
            self.depth, self.found = 1, True

    def handle_endtag(self, tag: str) -> None:
        if self.depth and tag not in self.VOID:
            self.depth -= 1

    def handle_data(self, data: str) -> None:
        if self.depth:
            self.parts.append(data)


def text_of(page: str, element_id: str) -> str:
    """The text inside the element with this id (tags dropped, spaces collapsed)."""
    parser = _Element(element_id)
    parser.feed(page)
    assert parser.found, f"no element #{element_id}"
    return " ".join(" ".join(parser.parts).split())


def visible_text(page: str) -> str:
    body = re.sub(r"<(script|style)[^>]*>.*?</\1>", " ", page, flags=re.S)
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", body)).split())


async def approved_service(
    tenant: Any, member_id: str, hours: list[float], day: datetime | None = None
) -> list[str]:
    """Service records of ``hours`` each, recorded by an organisation and approved."""
    org = await tenant.party("organisations", "华锦志愿服务队")
    recorder = await tenant.key("recorder", org["id"])
    start = day or datetime.now(UTC) - timedelta(days=len(hours) + 1)
    ids = []
    for n, h in enumerate(hours):
        begin = start + timedelta(days=n)
        r = await tenant.client.post(
            "/v1/service-records",
            headers=tenant.auth(recorder),
            json={
                "member_id": member_id,
                "activity": f"陪老人聊天 {n + 1}",
                "category": "volunteer_service",
                "place": "活动室",
                "started_at": begin.isoformat(),
                "ended_at": (begin + timedelta(hours=h)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        ids.append(r.json()["id"])
    for record_id in ids:
        a = await tenant.client.post(
            f"/v1/service-records/{record_id}/approve",
            headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert a.status_code == 201, a.text
    return ids

"""An organisation with a recorder who signs in, and its volunteers: the recorder pages'
tests (over HTTP and in a browser) share it."""

from __future__ import annotations

import html
import io
import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx

from tests.people.pages import add_person, browser, csrf, sign_in

ZONE = ZoneInfo("Asia/Shanghai")
PASSWORD = "recorder-password-1"
IDEM = re.compile(r'name="idem" value="([^"]+)"')
HEADER = "志愿者编号,活动名称,服务类别,服务地点,开始时间,结束时间,服务对象\n"


def day(days_ago: int) -> date:
    return datetime.now(ZONE).date() - timedelta(days=days_ago)


def at(days_ago: int, hour: int, minute: int = 0) -> datetime:
    return datetime.combine(day(days_ago), time(hour, minute), ZONE)


def new_login() -> str:
    return f"138{uuid.uuid4().int % 10**8:08d}"


@dataclass
class Team:
    """An organisation of the tenant's community, its recorder's API key and volunteers."""

    t: Any
    org: dict[str, Any]
    key: str  # a recorder API key of the organisation: what the API says, to compare the pages with
    login: str
    volunteers: dict[str, dict[str, Any]] = field(default_factory=dict)

    async def volunteer(self, name: str, ref: str | None = None, phone: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"display_name": name}
        if ref:
            body["external_ref"] = ref
        r = await self.t.client.post("/v1/members", json=body, headers=self.t.auth())
        assert r.status_code == 201, r.text
        member = r.json()
        if phone:
            await add_person(self.t, "resident", member["id"], name, phone, None)
        self.volunteers[name] = member
        return member

    async def record(self, name: str, start: datetime, minutes: int, **extra: Any) -> httpx.Response:
        """A record through the API (as another system of the organisation would)."""
        body = {
            "member_id": self.volunteers[name]["id"],
            "activity": "巡逻",
            "category": "volunteer_service",
            "place": "小区",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
            **extra,
        }
        return await self.t.client.post("/v1/service-records", json=body, headers=self.t.auth(self.key))

    async def records(self, **query: str) -> list[dict[str, Any]]:
        """Every record of the organisation, through the API."""
        items: list[dict[str, Any]] = []
        cursor = None
        while True:
            params = {**query, "limit": "200", **({"cursor": cursor} if cursor else {})}
            r = await self.t.client.get("/v1/service-records", params=params, headers=self.t.auth(self.key))
            assert r.status_code == 200, r.text
            items += r.json()["items"]
            cursor = r.json()["next_cursor"]
            if not cursor:
                return items

    async def trust(self) -> None:
        """The community's policy trusts the organisation: its records are approved as written."""
        policy = (await self.t.client.get("/v1/community/policy", headers=self.t.auth())).json()["policy"]
        policy["trusted_organisations"] = [self.org["id"]]
        r = await self.t.client.put("/v1/community/policy", json=policy, headers=self.t.auth())
        assert r.status_code == 200, r.text


async def team(t: Any, name: str = "华锦志愿服务队") -> Team:
    org = await t.party("organisations", name)
    login = f"rec-{uuid.uuid4().hex[:8]}"
    await add_person(t, "recorder", org["id"], "记录员 小陈", login, PASSWORD)
    return Team(t, org, await t.key("recorder", org["id"]), login)


@asynccontextmanager
async def desk(t: Any, lang: str = "en", name: str = "华锦志愿服务队") -> AsyncIterator[tuple[Team, Desk]]:
    """An organisation and its recorder, signed in on a browser-like client of their own."""
    crew = await team(t, name)
    async with browser(t.client, lang) as phone:
        r = await sign_in(phone, crew.login, PASSWORD)
        assert r.status_code == 303 and r.headers["location"] == "/org", r.text
        yield crew, Desk(phone)


@dataclass
class Desk:
    """The recorder's browser (no JavaScript): pages and forms."""

    phone: httpx.AsyncClient

    async def page(self, path: str, status: int = 200, **headers: str) -> str:
        r = await self.phone.get(path, headers=headers)
        assert r.status_code == status, (path, r.status_code, r.text[:3000])
        return r.text

    async def token(self) -> str:
        return await csrf(self.phone, "/org/import")

    async def record_form(self) -> tuple[str, str]:
        """A fresh record form's CSRF token and idempotency id."""
        page = await self.page("/org")
        return await csrf(self.phone, "/org"), IDEM.search(page).group(1)

    async def post(self, path: str, fields: list[tuple[str, str]]) -> httpx.Response:
        """A form's fields (a name may repeat, as the volunteers' rows do) with the CSRF token."""
        data: dict[str, list[str]] = {"_csrf_token": [await self.token()]}
        for name, value in fields:
            data.setdefault(name, []).append(value)
        return await self.phone.post(path, data=data)

    async def upload(self, filename: str, content: bytes, kind: str = "text/csv") -> httpx.Response:
        return await self.phone.post(
            "/org/import/preview",
            data={"_csrf_token": await self.token()},
            files={"file": (filename, content, kind)},
        )

    async def run(self, preview: httpx.Response) -> httpx.Response:
        """Import what a preview page shows (its hidden fields, as the browser sends them)."""
        fields = dict(
            re.findall(r'<input type="hidden" name="(upload|checksum|name)" value="([^"]*)"', preview.text)
        )
        assert set(fields) == {"upload", "checksum", "name"}, preview.text[:3000]
        fields = {k: html.unescape(v) for k, v in fields.items()}
        return await self.phone.post(
            "/org/import/run",
            data={"_csrf_token": await self.token()},
            files={k: (None, v) for k, v in fields.items()},
        )


def csv_of(lines: list[str]) -> bytes:
    return (HEADER + "".join(line + "\n" for line in lines)).encode()


def xlsx_of(rows: list[list[Any]], header: list[str] | None = None) -> bytes:
    import openpyxl

    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(header or HEADER.strip().split(","))
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def text_of(page: str) -> str:
    """The page's text without tags (to look for words in it)."""
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", page)))

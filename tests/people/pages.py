"""Helpers for page tests over HTTP (no browser): a signed-out browser-like client with
its own cookies, the CSRF token of a page's form, and signing in."""

from __future__ import annotations

import re
from typing import Any

import httpx

CSRF = re.compile(r'name="_csrf_token" value="([^"]+)"')


def browser(client: httpx.AsyncClient, lang: str = "zh-CN") -> httpx.AsyncClient:
    """A client of the same app with a cookie jar of its own (one phone)."""
    return httpx.AsyncClient(
        transport=client._transport,
        base_url=str(client.base_url),
        headers={"Accept": "text/html", "Accept-Language": lang},
        follow_redirects=False,
        timeout=60,
    )


async def csrf(phone: httpx.AsyncClient, path: str) -> str:
    page = await phone.get(path)
    assert page.status_code == 200, (path, page.status_code, page.text[:500])
    found = CSRF.search(page.text)
    assert found, f"no CSRF field on {path}"
    return found.group(1)


async def post_form(phone: httpx.AsyncClient, form_page: str, action: str, **fields: Any) -> httpx.Response:
    token = await csrf(phone, form_page)
    return await phone.post(action, data={"_csrf_token": token, **fields})


async def sign_in(phone: httpx.AsyncClient, login: str, password: str) -> httpx.Response:
    return await post_form(phone, "/sign-in", "/sign-in", login=login, password=password)


async def add_person(
    tenant: Any, role: str, subject_id: str | None, name: str, login: str | None, password: str | None
) -> dict[str, Any]:
    body: dict[str, Any] = {"role": role, "display_name": name}
    if subject_id:
        body["subject_id"] = subject_id
    if login:
        body["login"] = login
    if password:
        body["password"] = password
    r = await tenant.client.post("/v1/people", json=body, headers=tenant.auth())
    assert r.status_code == 201, r.text
    return r.json()

"""People sign in with a password or a one-time link; sessions, CSRF and limits."""

from __future__ import annotations

import uuid

from tests.people.pages import add_person, browser, csrf, post_form, sign_in


def _login() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


async def test_password_sign_in_leads_a_resident_home(tenant) -> None:
    member = await tenant.member("刘阿姨")
    login = _login()
    await add_person(tenant, "resident", member["id"], "刘阿姨", login, "a-good-password")
    async with browser(tenant.client) as phone:
        first = await phone.get("/")
        assert first.status_code == 303 and first.headers["location"] == "/sign-in"
        r = await sign_in(phone, f"+86 {login[:3]} {login[3:]}", "a-good-password")
        assert r.status_code == 303, r.text
        assert r.headers["location"] == "/me"
        cookie = r.headers["set-cookie"]
        assert "tb_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
        root = await phone.get("/")
        assert root.headers["location"] == "/me"
        account = await phone.get("/account")
        assert account.status_code == 200 and "刘阿姨" in account.text


async def test_wrong_password_is_refused_and_counted(tenant) -> None:
    member = await tenant.member()
    login = _login()
    await add_person(tenant, "resident", member["id"], "居民", login, "a-good-password")
    async with browser(tenant.client) as phone:
        r = await sign_in(phone, login, "not-the-password")
        assert r.status_code == 401
        assert "tb_session" not in r.headers.get("set-cookie", "")
        unknown = await sign_in(phone, "nobody-here", "not-the-password")
        assert unknown.status_code == 401
        # the same sentence either way: the page does not tell which logins exist
        assert r.text.count("alert") == unknown.text.count("alert")
        for _ in range(5):
            await sign_in(phone, login, "still-wrong")
        locked = await sign_in(phone, login, "a-good-password")
        assert locked.status_code == 429, "the account waits out the window, even with the right password"


async def test_a_form_without_its_csrf_token_is_refused(tenant) -> None:
    member = await tenant.member()
    login = _login()
    await add_person(tenant, "resident", member["id"], "居民", login, "a-good-password")
    async with browser(tenant.client) as phone:
        await phone.get("/sign-in")  # has the CSRF cookie, but does not send the field
        r = await phone.post("/sign-in", data={"login": login, "password": "a-good-password"})
        assert r.status_code == 403
        assert "text/html" in r.headers["content-type"]
        assert "tb_session" not in r.headers.get("set-cookie", "")


async def test_one_time_link_signs_in_once(tenant) -> None:
    member = await tenant.member("王大爷")
    person = await add_person(tenant, "resident", member["id"], "王大爷", None, None)
    r = await tenant.client.post(f"/v1/people/{person['id']}/sign-in-links", json={}, headers=tenant.auth())
    assert r.status_code == 201, r.text
    link = r.json()
    assert link["url"].endswith(link["path"])
    async with browser(tenant.client) as phone:
        page = await phone.get(link["path"])
        assert page.status_code == 200 and "王大爷" in page.text
        token = await csrf(phone, link["path"])
        used = await phone.post(link["path"], data={"_csrf_token": token})
        assert used.status_code == 303 and used.headers["location"] == "/me"
    async with browser(tenant.client) as other:
        again = await other.get(link["path"])
        assert again.status_code == 410
    # revoked links cannot be used either
    r = await tenant.client.post(
        f"/v1/people/{person['id']}/sign-in-links", json={"hours": 1}, headers=tenant.auth()
    )
    second = r.json()
    assert (
        await tenant.client.delete(f"/v1/sign-in-links/{second['id']}", headers=tenant.auth())
    ).status_code == 204
    async with browser(tenant.client) as phone:
        assert (await phone.get(second["path"])).status_code == 410


async def test_a_person_sees_and_ends_their_sessions(tenant) -> None:
    member = await tenant.member()
    login = _login()
    await add_person(tenant, "resident", member["id"], "居民", login, "a-good-password")
    async with browser(tenant.client) as one, browser(tenant.client) as two:
        await sign_in(one, login, "a-good-password")
        await sign_in(two, login, "a-good-password")
        page = await one.get("/account")
        assert page.text.count("/account/sessions/") >= 2
        r = await post_form(one, "/account", "/account/sessions/end-others")
        assert r.status_code == 303
        assert (await two.get("/account")).status_code == 303  # signed out: to the sign-in page
        assert (await one.get("/account")).status_code == 200


async def test_english_and_chinese(tenant) -> None:
    async with browser(tenant.client, "en-GB,en;q=0.9") as phone:
        page = await phone.get("/sign-in")
        assert '<html lang="en"' in page.text and "Password" in page.text
    async with browser(tenant.client, "zh-CN") as phone:
        page = await phone.get("/sign-in")
        assert '<html lang="zh-CN"' in page.text


async def test_sign_in_failures_are_limited_per_address(tenant, settings, database_url, engine) -> None:
    """Past the address limit even a right password waits (429 with Retry-After), without
    a database lookup; another address is not held up."""
    import httpx

    from timebank.app import create_app

    app = create_app(settings.with_(sign_in_address_limit=3), database_url)
    app.state.engine = engine
    member = await tenant.member()
    login = _login()
    await add_person(tenant, "resident", member["id"], "居民", login, "a-good-password")
    for client_address in (("10.0.0.7", 1234), ("10.0.0.8", 1234)):
        transport = httpx.ASGITransport(app=app, client=client_address)
        async with httpx.AsyncClient(transport=transport, base_url="http://timebank.test") as phone:
            if client_address[0] == "10.0.0.7":
                for _ in range(3):
                    assert (
                        await sign_in(phone, f"nobody-{uuid.uuid4().hex[:6]}", "wrong-password")
                    ).status_code == 401
                held = await sign_in(phone, login, "a-good-password")
                assert held.status_code == 429 and int(held.headers["retry-after"]) > 0
                assert "tb_session" not in held.headers.get("set-cookie", "")
            else:
                assert (await sign_in(phone, login, "a-good-password")).status_code == 303


async def test_a_login_is_unique_across_communities(tenant, other_tenant) -> None:
    """Held by ``logins`` (migration 0012): people's own keys only say "in one community"."""
    login = _login()
    await add_person(tenant, "admin", None, "甲社区 社工", login, "correct horse battery")
    before = (await other_tenant.client.get("/v1/people", headers=other_tenant.auth())).json()
    r = await other_tenant.client.post(
        "/v1/people",
        json={
            "role": "admin",
            "display_name": "乙社区 社工",
            "login": login,
            "password": "another good password",
        },
        headers=other_tenant.auth(),
    )
    assert r.status_code == 409, r.text
    assert r.json()["type"].endswith("login-taken")
    assert (await other_tenant.client.get("/v1/people", headers=other_tenant.auth())).json() == before
    # the login still signs in to the first community's person
    async with browser(tenant.client) as phone:
        r = await sign_in(phone, login, "correct horse battery")
        assert r.status_code == 303 and r.headers["location"] == "/staff", r.text

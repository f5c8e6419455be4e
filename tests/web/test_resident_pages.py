"""The resident's pages in a real Chromium at a phone's size, in Chinese and English:
signed in with a password or a one-time link, home shows the API's balances, history,
records, rewards, redeeming and the voucher (code and QR), giving and donating. Each
page passes axe-core, reads well for older eyes and fits 360 px; each is photographed."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

import pytest
from playwright.async_api import expect

from tests.people.pages import add_person
from timebank.web.i18n import Formats
from web.browser import assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

LANGS = ["zh-CN", "en"]
PASSWORD = "a-good-password"


def fmt(lang: str) -> Formats:
    return Formats(lang.replace("-", "_"), "Asia/Shanghai")


async def check(page, name: str, lang: str) -> None:
    await screenshot(page, f"resident-{name}", lang)
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)


def new_login() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


async def api(tenant, path: str, key: str | None = None):
    r = await tenant.client.get(path, headers=tenant.auth(key))
    assert r.status_code == 200, r.text
    return r.json()


async def a_resident(tenant, name: str = "刘桂香", minutes: int = 0, points: int = 0) -> dict:
    member = await tenant.member(name)
    if minutes:
        await tenant.fund(member["accounts"]["HOUR"], "HOUR", minutes)
    if points:
        await tenant.fund(member["accounts"]["POINT"], "POINT", points)
    login = new_login()
    person = await add_person(tenant, "resident", member["id"], name, login, PASSWORD)
    return {
        "member": member,
        "login": login,
        "person": person,
        "key": await tenant.key("resident", member["id"]),
    }


async def service(tenant, member_id: str) -> None:
    """Two approved service records and one waiting (in the last days)."""
    org = await tenant.party("organisations", "华锦志愿服务队")
    recorder = await tenant.key("recorder", org["id"])
    start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=5)
    for n, (activity, hours) in enumerate([("陪老人聊天", 2), ("修水管", 1.5), ("社区义诊", 3)]):
        begin = start + timedelta(days=n)
        r = await tenant.client.post(
            "/v1/service-records",
            headers=tenant.auth(recorder),
            json={
                "member_id": member_id,
                "activity": activity,
                "category": "volunteer_service",
                "place": "社区活动室",
                "started_at": begin.isoformat(),
                "ended_at": (begin + timedelta(hours=hours)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        if n < 2:
            a = await tenant.client.post(
                f"/v1/service-records/{r.json()['id']}/approve",
                headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
            )
            assert a.status_code == 201, a.text


async def rewards(tenant) -> tuple[dict, dict]:
    merchant = await tenant.party("merchants", "幸福里爱心超市")
    key = await tenant.key("merchant", merchant["id"])
    made = []
    for body in (
        {
            "title": "十斤大米",
            "description": "东北大米，每月限兑一次",
            "price_points": 30,
            "stock": 12,
            "limit": {"count": 1, "period": "month"},
        },
        {"title": "老年体检套餐", "price_points": 20, "min_star": 3},
    ):
        r = await tenant.client.post("/v1/rewards", json=body, headers=tenant.auth(key))
        assert r.status_code == 201, r.text
        made.append(r.json())
    return made[0], made[1]


async def sign_in(page, login: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await expect(page).to_have_url(re.compile(r".*/me$"))


async def home_equals_api(page, tenant, me: dict, lang: str) -> None:
    balances = await api(tenant, f"/v1/members/{me['member']['id']}/balances", me["key"])
    f = fmt(lang)
    await expect(page.locator("#hours-balance .value")).to_have_text(f.hours(balances["HOUR"]["posted"]))
    await expect(page.locator("#points-balance .value")).to_have_text(
        f.points(balances["POINT"]["available"])
    )


@pytest.mark.parametrize("lang", LANGS)
async def test_home_history_and_records(phone, tenant, lang) -> None:
    me = await a_resident(tenant, minutes=90, points=120)
    await service(tenant, me["member"]["id"])
    page = await (await phone(lang)).new_page()
    await sign_in(page, me["login"])
    await home_equals_api(page, tenant, me, lang)
    await check(page, "home", lang)
    await page.goto("/me/history")
    await expect(page.locator("#entries li")).to_have_count(3)
    await check(page, "history-hours", lang)
    await page.goto("/me/history?asset=POINT")
    await check(page, "history-points", lang)
    async with page.expect_download() as download:
        await page.locator("#entries a[href^='/receipts/']").first.click()
    assert (await download.value).suggested_filename.startswith("receipt-")
    await page.goto("/me/records")
    await expect(page.locator("#records li")).to_have_count(3)
    await check(page, "records", lang)


@pytest.mark.parametrize("lang", LANGS)
async def test_redeem_a_reward_and_show_the_voucher(phone, tenant, lang) -> None:
    me = await a_resident(tenant, points=100)
    rice, _checkup = await rewards(tenant)
    page = await (await phone(lang)).new_page()
    await sign_in(page, me["login"])
    await page.goto("/me/rewards")
    await expect(page.locator("#may > li")).to_have_count(1)
    await expect(page.locator("#may-not > li")).to_have_count(1)
    await check(page, "rewards", lang)
    await page.locator(f"#may a[href='/me/rewards/{rice['id']}']").click()
    await check(page, "reward-confirm", lang)
    await page.locator("form[action$='/redeem'] button").click()
    await expect(page).to_have_url(re.compile(r".*/me/vouchers/[0-9a-f-]{36}$"))
    code = (await api(tenant, f"/v1/members/{me['member']['id']}/redemptions", me["key"]))["items"][0]["code"]
    await expect(page.locator("#voucher-code")).to_have_text(f"{code[:4]} {code[4:]}")
    await expect(page.locator("svg.qr")).to_be_visible()
    await expect(page.locator("[data-countdown]")).to_have_text(re.compile(r"^1?\d:\d\d$"))
    await check(page, "voucher", lang)
    voucher = page.url
    await page.goto("/me")
    await home_equals_api(page, tenant, me, lang)  # 70 points now: 30 held for the voucher
    await page.goto("/me/vouchers")
    await check(page, "vouchers", lang)
    await page.goto(voucher + "/cancel")
    await check(page, "voucher-cancel", lang)
    await page.locator("form[action$='/cancel'] button").click()
    await expect(page.locator("[role=status]")).to_be_visible()
    await check(page, "voucher-cancelled", lang)


@pytest.mark.parametrize("lang", LANGS)
async def test_give_hours_and_donate_points(phone, tenant, lang) -> None:
    me = await a_resident(tenant, "张建国", minutes=240, points=50)
    neighbour = await a_resident(tenant, "刘桂香")
    page = await (await phone(lang)).new_page()
    await sign_in(page, me["login"])
    await page.goto("/me/give")
    await check(page, "give", lang)
    await page.locator("#phone").fill("13000000000")
    await page.locator("#hours").fill("1")
    await page.locator("form[action='/me/give'] button").click()
    await expect(page.locator("[role=alert]")).to_be_visible()
    await check(page, "give-unknown-phone", lang)
    await page.locator("#phone").fill(neighbour["login"])
    await page.locator("#hours").fill("1.5")
    await page.locator("#note").fill("谢谢您帮我取药")
    await page.locator("form[action='/me/give'] button").click()
    await expect(page.locator("#neighbour")).to_have_text("刘*香")
    await check(page, "give-confirm", lang)
    # "No, change it" goes back to the form as typed, and nothing moves
    await page.locator("form[action='/me/give/change'] button").click()
    await expect(page.locator("#hours")).to_have_value("1.5")
    await expect(page.locator("#note")).to_have_value("谢谢您帮我取药")
    mine = await api(tenant, f"/v1/members/{me['member']['id']}/balances", me["key"])
    assert mine["HOUR"]["posted"] == 240
    await page.locator("form[action='/me/give'] button").click()
    await page.locator("form[action='/me/give/confirm'] button").click()
    await expect(page).to_have_url(re.compile(r".*/me/done/[0-9a-f-]{36}$"))
    await expect(page.locator("#new-balance")).to_have_text(fmt(lang).hours(150))
    await check(page, "give-done", lang)
    theirs = await api(tenant, f"/v1/members/{neighbour['member']['id']}/balances", neighbour["key"])
    assert theirs["HOUR"]["posted"] == 90

    await page.goto("/me/donate")
    await check(page, "donate", lang)
    await page.locator("#points").fill("20")
    await page.locator("form[action='/me/donate'] button").click()
    await check(page, "donate-confirm", lang)
    await page.locator("form[action='/me/donate/confirm'] button").click()
    await expect(page).to_have_url(re.compile(r".*/me/done/[0-9a-f-]{36}$"))
    await expect(page.locator("#new-balance")).to_have_text(fmt(lang).points(30))
    await check(page, "donate-done", lang)


@pytest.mark.parametrize("lang", LANGS)
async def test_sign_in_with_a_one_time_link_shows_home(phone, tenant, lang) -> None:
    member = await tenant.member("王德福")
    await tenant.fund(member["accounts"]["HOUR"], "HOUR", 330)
    await tenant.fund(member["accounts"]["POINT"], "POINT", 45)
    person = await add_person(tenant, "resident", member["id"], "王德福", None, None)
    r = await tenant.client.post(f"/v1/people/{person['id']}/sign-in-links", json={}, headers=tenant.auth())
    assert r.status_code == 201, r.text
    page = await (await phone(lang)).new_page()
    await page.goto(r.json()["path"])
    await page.locator("main form button").click()
    await expect(page).to_have_url(re.compile(r".*/me$"))
    me = {"member": member, "key": await tenant.key("resident", member["id"])}
    await home_equals_api(page, tenant, me, lang)
    await page.set_viewport_size({"width": 360, "height": 740})
    await page.get_by_role("button", name=re.compile("大字|Larger text")).click()
    await expect(page.locator("html")).to_have_class("large")
    await check(page, "home-large-text", lang)

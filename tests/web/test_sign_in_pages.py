"""Sign-in, account and staff pages in a real Chromium at a phone's size, in Chinese and
English: they work, read well for older eyes, pass axe-core, fit 360 px, and refuse a
form without its CSRF token."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import expect

from tests.people.pages import add_person
from web.browser import assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

LANGS = ["zh-CN", "en"]
TEXT = {
    "zh-CN": {"sign_in": "登录", "wrong": "不正确", "large": "大字"},
    "en": {"sign_in": "Sign in", "wrong": "not right", "large": "Larger text"},
}


async def check(page, name: str, lang: str) -> None:
    await screenshot(page, name, lang)
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)


async def _staff(tenant) -> tuple[str, str]:
    login = f"staff-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "admin", None, "社工 小周", login, "staff-password")
    return login, "staff-password"


async def sign_in(page, login: str, password: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(password)
    await page.locator("form[action='/sign-in'] button").click()


@pytest.mark.parametrize("lang", LANGS)
async def test_sign_in_page_and_a_wrong_password(phone, tenant, lang) -> None:
    login, _ = await _staff(tenant)
    page = await (await phone(lang)).new_page()
    await page.goto("/")
    assert page.url.endswith("/sign-in")
    assert await page.locator("html").get_attribute("lang") == lang
    await check(page, "sign-in", lang)
    await sign_in(page, login, "not-the-password")
    alert = page.locator("[role=alert]")
    await expect(alert).to_contain_text(TEXT[lang]["wrong"])
    await check(page, "sign-in-refused", lang)
    assert not [c for c in await page.context.cookies() if c["name"] == "tb_session"]


@pytest.mark.parametrize("lang", LANGS)
async def test_staff_sign_in_add_a_resident_and_give_a_card(phone, tenant, lang) -> None:
    member = await tenant.member("赵奶奶")
    login, password = await _staff(tenant)
    page = await (await phone(lang)).new_page()
    await sign_in(page, login, password)
    await expect(page).to_have_url(re.compile(r".*/staff$"))
    await check(page, "staff-home", lang)
    await page.goto("/staff/people")
    await check(page, "staff-people", lang)
    await page.locator("#display_name").fill("赵奶奶")
    await page.locator("#role").select_option("resident")
    await page.locator("#subject_id").select_option(member["id"])
    await page.locator("form[action='/staff/people'] button").click()
    await expect(page.locator("h1")).to_have_text("赵奶奶")
    await check(page, "staff-person", lang)
    await page.locator("form[action$='/links'] button").click()
    await expect(page.locator("svg.qr")).to_be_visible()
    await check(page, "staff-sign-in-card", lang)
    link = await page.locator("section.voucher a").get_attribute("href")

    # the card's link signs 赵奶奶 in on her own phone, once
    grandma = await (await phone(lang)).new_page()
    await grandma.goto(link)
    await check(grandma, "sign-in-link", lang)
    await grandma.locator("main form button").click()
    await expect(grandma).to_have_url(re.compile(r".*/me$"))
    again = await (await phone(lang)).new_page()
    response = await again.goto(link)
    assert response.status == 410
    await check(again, "sign-in-link-used", lang)


@pytest.mark.parametrize("lang", LANGS)
async def test_account_page_large_text_and_language_switch(phone, tenant, lang) -> None:
    login, password = await _staff(tenant)
    context = await phone(lang)
    page = await context.new_page()
    await sign_in(page, login, password)
    await page.goto("/account")
    await check(page, "account", lang)
    await page.get_by_role("button", name=TEXT[lang]["large"]).click()
    await expect(page.locator("html")).to_have_class("large")
    await check(page, "account-large-text", lang)
    # it stays on, on other pages and after signing in again on this phone
    await page.goto("/staff")
    await expect(page.locator("html")).to_have_class("large")
    # the switch offers the other language, remembered for the next pages
    other = "en" if lang == "zh-CN" else "zh-CN"
    await page.locator("form[action='/settings/language'] button").click()
    await expect(page.locator("html")).to_have_attribute("lang", other)
    await page.goto("/account")
    await expect(page.locator("html")).to_have_attribute("lang", other)


async def test_a_form_without_its_csrf_token_is_refused_and_changes_nothing(phone, tenant) -> None:
    login, password = await _staff(tenant)
    page = await (await phone("zh-CN")).new_page()
    await page.goto("/sign-in")
    await page.evaluate("document.querySelectorAll('input[name=_csrf_token]').forEach(e => e.remove())")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(password)
    async with page.expect_response(
        lambda r: r.url.endswith("/sign-in") and r.request.method == "POST"
    ) as sent:
        await page.locator("form[action='/sign-in'] button").click()
    assert (await sent.value).status == 403
    await expect(page.locator("[role=alert]")).to_be_visible()
    await screenshot(page, "csrf-refused", "zh-CN")
    assert not [c for c in await page.context.cookies() if c["name"] == "tb_session"]


async def test_a_form_aimed_at_another_community_is_refused_and_changes_nothing(
    phone, tenant, other_tenant
) -> None:
    """A staff member of one community who points a form at another community's person
    (here by rewriting the form's action in the page) gets "not found"; nothing changes."""
    theirs = await add_person(
        other_tenant, "resident", (await other_tenant.member())["id"], "别人", None, None
    )
    login, password = await _staff(tenant)
    mine = await add_person(tenant, "resident", (await tenant.member())["id"], "自己人", None, None)
    page = await (await phone("zh-CN")).new_page()
    await sign_in(page, login, password)
    await page.goto(f"/staff/people/{mine['id']}")
    await page.evaluate(
        "id => { document.querySelector('form[action$=\"/disable\"]').action = `/staff/people/${id}/disable`; }",
        theirs["id"],
    )
    async with page.expect_response(lambda r: r.request.method == "POST") as sent:
        await page.locator("form[action$='/disable'] button").click()
    assert (await sent.value).status == 404
    await expect(page.locator("[role=alert]")).to_be_visible()
    person = (await other_tenant.client.get(f"/v1/people/{theirs['id']}", headers=other_tenant.auth())).json()
    assert person["disabled_at"] is None

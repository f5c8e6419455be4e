"""The merchant's pages in a phone's browser (390×844), in Chinese and in English: a
shop assistant signs in, types a voucher's code and confirms it; wrong and reused codes
are told in words; every merchant page is screenshotted, checked with axe-core and
fits a 360 px wide screen."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio
from conftest import Tenant
from playwright.async_api import Page, expect

from tests.merchant.shop import PASSWORD, Shop, spaced
from timebank.community.service import create_community
from timebank.web import i18n
from web.browser import LANGS, assert_accessible, assert_no_sideways_scroll, screenshot


@pytest_asyncio.fixture(loop_scope="session")
async def live_shop(engine: Any, live_server: str) -> AsyncIterator[Shop]:
    """A community of its own on the live server, with a shop and its shop assistant."""
    async with engine.begin() as conn:
        created = await create_community(conn, f"幸福里社区 {uuid.uuid4().hex[:4]}")
    async with httpx.AsyncClient(base_url=live_server, timeout=60) as api:
        tenant = Tenant(api, created["community_id"], created["admin_key"])
        r = await api.get("/v1/community", headers=tenant.auth())
        assert r.status_code == 200, r.text
        tenant.accounts = r.json()["accounts"]
        yield await Shop(tenant).setup("爱心超市")


async def check(page: Page, name: str, lang: str) -> None:
    """The page as a shop assistant sees it: screenshot, accessible, no sideways scroll."""
    await screenshot(page, name, lang)
    await assert_accessible(page)
    await assert_no_sideways_scroll(page)


async def signed_in(phone: Any, shop: Shop, lang: str) -> Page:
    page = await (await phone(lang)).new_page()
    await page.goto("/sign-in")
    await page.fill("#login", shop.login)
    await page.fill("#password", PASSWORD)
    await page.locator("main form button").click()
    await page.wait_for_url("**/counter")
    return page


@pytest.mark.parametrize("lang", LANGS)
async def test_a_shop_assistant_redeems_a_voucher_at_the_counter(phone, live_shop: Shop, lang: str) -> None:
    shop = live_shop
    reward = await shop.reward(title="十斤大米" if lang == "zh-CN" else "Rice, 5 kg", price_points=30)
    member, key = await shop.resident("李秀英", points=100)
    voucher = await shop.voucher(reward, member, key)
    used = await shop.voucher(reward, member, key)
    await shop.confirm(used)
    before = await shop.points(member)

    page = await signed_in(phone, shop, lang)
    code = page.locator("#code")
    await expect(code).to_be_focused()
    assert await code.get_attribute("autocapitalize") == "characters"
    await expect(page.locator("[data-scan]")).to_be_hidden()  # no BarcodeDetector in headless Chromium
    await check(page, "merchant-counter", lang)

    await code.fill("zzzz zzzz")
    await page.locator("button.big").first.click()
    alert = page.get_by_role("alert")
    await expect(alert).to_be_visible()
    await expect(page.locator("#code")).to_have_value("zzzz zzzz")
    await check(page, "merchant-counter-wrong-code", lang)

    await page.locator("#code").fill(used["code"])
    await page.locator("button.big").first.click()
    await expect(page.get_by_role("alert")).to_be_visible()
    await check(page, "merchant-counter-used-code", lang)
    assert await shop.points(member) == before, "nothing moved"

    await page.locator("#code").fill(spaced(voucher["code"]))
    await page.locator("button.big").first.click()
    await page.wait_for_url("**/counter/voucher?**")
    await expect(page.locator("main")).to_contain_text("李*英")
    await expect(page.locator("main")).not_to_contain_text("李秀英")
    await check(page, "merchant-voucher", lang)

    await page.locator("form[data-once] button").click()
    await page.wait_for_url(f"**/counter/done/{voucher['id']}")
    await expect(page.locator("h1")).to_have_text(
        i18n.translations(lang.replace("-", "_")).gettext("Redeemed")
    )
    await check(page, "merchant-done", lang)
    after = await shop.points(member)
    assert after["available"] == before["available"] and after["balance"] == before["balance"] - 30

    # the back button and a reload of the voucher: already used, nothing more moves
    await page.go_back()
    await page.reload()
    await expect(page.get_by_role("alert")).to_be_visible()
    assert await shop.points(member) == after
    await page.goto(f"/counter/done/{voucher['id']}")
    await page.locator("a.button.big").click()
    await page.wait_for_url("**/counter")


@pytest.mark.parametrize("lang", LANGS)
async def test_the_rewards_and_statement_pages(phone, live_shop: Shop, lang: str) -> None:
    shop = live_shop
    rice = await shop.reward(
        title="十斤大米",
        description="每周一到货",
        price_points=30,
        stock=20,
        limit={"count": 2, "period": "week"},
        star_prices={"3": 25},
    )
    await shop.reward(title="理发一次", price_points=50, min_star=2)
    gone = await shop.reward(title="中秋月饼", price_points=40)
    await shop.deactivate(gone)
    member, key = await shop.resident("王建国", points=200)
    for _ in range(2):
        await shop.confirm(await shop.voucher(rice, member, key))

    page = await signed_in(phone, shop, lang)
    await page.goto("/merchant/rewards")
    await expect(page.locator("h1")).to_be_visible()
    await check(page, "merchant-rewards", lang)

    await page.fill("#title", "食用油")
    await page.fill("#price_points", "lots")
    await page.locator("form.stack button.big").click()
    await expect(page.locator("#err-price_points")).to_be_visible()
    await expect(page.locator("#price_points")).to_have_attribute("aria-invalid", "true")
    await check(page, "merchant-rewards-invalid", lang)
    await page.fill("#price_points", "15")
    await page.locator("form.stack button.big").click()
    await page.wait_for_url("**/merchant/rewards?done=created")
    await expect(page.get_by_role("status")).to_be_visible()

    await page.goto(f"/merchant/rewards/{rice['id']}")
    await check(page, "merchant-reward-edit", lang)
    await page.fill("#stock", "18")
    await page.locator("main form.stack button.big").click()
    await page.wait_for_url("**/merchant/rewards?done=saved")

    await page.goto(f"/merchant/rewards/{rice['id']}/deactivate")
    await check(page, "merchant-reward-deactivate", lang)

    await page.goto("/merchant/statement")
    await expect(page.locator("svg.chart")).to_be_visible()
    assert await page.locator("svg.chart rect").count() == 1
    await check(page, "merchant-statement", lang)
    async with page.expect_download() as download_info:
        await page.locator('a[href^="/merchant/statement.csv"]').click()
    download = await download_info.value
    assert download.suggested_filename.endswith(".csv")

    # large text (适老化) still fits a 360 px phone
    await page.locator("button[name=large]").click()
    await page.wait_for_url("**/merchant/statement")
    await expect(page.locator("html.large")).to_have_count(1)
    await assert_no_sideways_scroll(page)
    await page.goto(f"/merchant/rewards/{rice['id']}")
    await assert_no_sideways_scroll(page)

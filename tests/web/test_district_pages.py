"""The districts' pages in a real Chromium, on a phone, in Chinese and English: a
district admin signs in, reads the positions, proposes a settlement of this month (and
is told another admin must approve it); a second district admin opens it, confirms and
approves it, and the positions are back to zero; the figures page; a community's staff
read their district page; the public page shows the district position. Every page is
screenshotted (test-artifacts/screenshots/district-*), checked with axe-core, for older
eyes and for sideways scrolling at 360 px."""

from __future__ import annotations

import re
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.districts.test_district_pages import PASSWORD, crossed, district_admin
from tests.people.pages import add_person
from web.browser import LANGS, check


async def sign_in(page: Page, login: str, home: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(re.compile(f".*{re.escape(home)}$"))


@pytest.fixture
async def district(client: Any, engine: Any) -> dict[str, Any]:
    made = await crossed(client, engine)
    made["logins"] = [
        await district_admin(engine, made["d"], "街道 老周"),
        await district_admin(engine, made["d"], "街道 小吴"),
    ]
    made["staff"] = f"staff-{made['a'].id[:8]}"
    await add_person(made["a"], "admin", None, "社工 小陈", made["staff"], PASSWORD)
    return made


@pytest.mark.parametrize("lang", LANGS)
async def test_a_district_admin_reads_positions_and_two_admins_settle(phone, district, lang) -> None:
    a = district["a"]
    first = await (await phone(lang)).new_page()
    await sign_in(first, district["logins"][0], "/district")
    gauge = first.locator(f"#gauge-{a.id}-HOUR")
    await expect(gauge.locator("progress")).to_have_attribute("value", "120")
    await expect(gauge.locator(".district-position")).to_contain_text("-2")
    await check(first, "district-overview", lang)
    # the limits form folds away until asked for
    await first.locator(f"#community-{a.id} details.more > summary").click()
    await expect(first.locator(f"#hour-limit-{a.id}")).to_have_value("100")
    await check(first, "district-overview-limits", lang)

    # the figures of this month: the pair, as cards on a phone
    await first.locator("nav.tabs a[href='/district/crossings']").click()
    await first.wait_for_url(re.compile(r".*/district/crossings$"))
    await expect(first.locator("table.district-table").first).to_contain_text(district["names"][0])
    await check(first, "district-crossings", lang)

    # propose a settlement of this month
    await first.locator("nav.tabs a[href='/district/settlements']").click()
    await first.wait_for_url(re.compile(r".*/district/settlements$"))
    await check(first, "district-settlements", lang)
    await first.locator("ul.report-quick a").nth(1).click()  # this month
    await first.wait_for_url(re.compile(r".*/district/settlements\?from=.*"))
    await first.locator("#propose-form button").click()
    await first.wait_for_url(re.compile(r".*/district/settlements/[0-9a-f-]{36}\?done=proposed$"))
    settlement_url = first.url.split("?")[0]
    await expect(first.locator("#second-admin")).to_be_visible()
    assert await first.locator("#approve-link").count() == 0
    assert await first.locator("form[action$='/approve']").count() == 0
    await check(first, "district-settlement-proposed", lang)

    # another district admin approves it, after a confirmation step
    second = await (await phone(lang)).new_page()
    await sign_in(second, district["logins"][1], "/district")
    await second.locator("nav.tabs a[href='/district/settlements']").click()
    await second.locator("#open-settlement a").click()
    await second.wait_for_url(settlement_url)
    await expect(second.locator("#second-admin")).to_have_count(0)
    await check(second, "district-settlement-to-approve", lang)
    await second.locator("#approve-link").click()
    await second.wait_for_url(re.compile(r".*/approve$"))
    await check(second, "district-settlement-confirm", lang)
    await second.locator("form[action$='/approve'] button").click()
    await second.wait_for_url(re.compile(r".*\?done=approved$"))
    await expect(second.locator("p.notice")).to_be_visible()
    await expect(second.locator("#transactions dd")).to_have_count(3)  # the district's and two communities'
    await check(second, "district-settlement-approved", lang)
    assert set((await district["d"].positions()).values()) == {0}

    await second.locator("nav.tabs a[href='/district']").click()
    await second.wait_for_url(re.compile(r".*/district$"))
    await expect(second.locator(f"#gauge-{a.id}-HOUR progress")).to_have_attribute("value", "0")
    await check(second, "district-overview-settled", lang)


@pytest.mark.parametrize("lang", LANGS)
async def test_community_staff_and_the_public_see_the_district(phone, district, lang) -> None:
    a = district["a"]
    page = await (await phone(lang)).new_page()
    await sign_in(page, district["staff"], "/staff")
    await page.goto("/staff/district")
    await expect(page.locator("#district-name")).to_be_visible()
    await expect(page.locator("#recent > li")).to_have_count(2)
    assert "鲍勃" not in await page.content()
    await check(page, "district-staff", lang)

    visitor = await (await phone(lang)).new_page()
    await visitor.goto(f"/p/{a.id}")
    await expect(visitor.locator("#district")).to_be_visible()
    await expect(visitor.locator("#district-hours")).to_contain_text("-2")
    await visitor.locator("#district").scroll_into_view_if_needed()
    await check(visitor, "district-public", lang)

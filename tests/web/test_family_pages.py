"""Family links in a real Chromium (issue 18): a son in one community makes a family code,
his mother in another community of the district enters it on her phone, the staff
confirm, and the son gives her hours through the district from his phone; she lets him
see her hours and points. Every page is screenshotted on a phone in Chinese and English,
checked with axe-core, for older eyes and for sideways scrolling."""

from __future__ import annotations

import re
import uuid

import pytest
from playwright.async_api import Page, expect

from tests.districts.helpers import new_district
from tests.people.pages import add_person
from web.browser import LANGS, check

PASSWORD = "family-password-1"


async def sign_in(page: Page, login: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(lambda url: "/sign-in" not in url)


@pytest.mark.parametrize("lang", LANGS)
async def test_a_resident_gives_hours_to_his_mother_in_another_community(phone, client, engine, lang) -> None:
    d = await new_district(client, engine, 2)
    home, theirs = d.communities  # the mother's community, the son's
    mother = await home.member("王阿姨")
    son = await theirs.member("王小明")
    await theirs.fund(son["accounts"]["HOUR"], "HOUR", 600)
    await theirs.fund(son["accounts"]["POINT"], "POINT", 80)
    tag = uuid.uuid4().hex[:8]
    logins = {"son": f"fam-son-{tag}", "mother": f"fam-mum-{tag}", "staff": f"fam-staff-{tag}"}
    await add_person(theirs, "resident", son["id"], "王小明", logins["son"], PASSWORD)
    await add_person(home, "resident", mother["id"], "王阿姨", logins["mother"], PASSWORD)
    await add_person(home, "admin", None, "社工 小陈", logins["staff"], PASSWORD)

    # the son makes a family code
    son_page = await (await phone(lang)).new_page()
    await sign_in(son_page, logins["son"])
    await son_page.locator("nav a[href='/me/family']").click()
    await son_page.wait_for_url(re.compile(r".*/me/family$"))
    await check(son_page, "family-list-empty", lang)
    await son_page.locator("#relation").select_option("parent")
    await son_page.locator("form[action='/me/family/code'] button").click()
    code = (await son_page.locator("#family-code").inner_text()).strip()
    assert re.fullmatch(r"[A-Z2-9]{4} [A-Z2-9]{4}", code), code
    await check(son_page, "family-code", lang)

    # his mother enters it on her phone (a wrong code first: told so, nothing changes)
    mum_page = await (await phone(lang)).new_page()
    await sign_in(mum_page, logins["mother"])
    await mum_page.goto("/me/family")
    await mum_page.locator("#code").fill("ZZZZ 2222")
    await mum_page.locator("form[action='/me/family/accept'] button").click()
    await expect(mum_page.locator("#code-error")).to_be_visible()
    await check(mum_page, "family-code-wrong", lang)
    await mum_page.locator("#code").fill(code.lower())
    await mum_page.locator("form[action='/me/family/accept'] button").click()
    await mum_page.wait_for_url(re.compile(r".*done=accepted"))
    await expect(mum_page.locator("main")).to_contain_text("王小明")
    await check(mum_page, "family-waiting", lang)

    # the staff of her community confirm
    staff_page = await (await phone(lang)).new_page()
    await sign_in(staff_page, logins["staff"])
    await staff_page.goto("/staff/family-links")
    await expect(staff_page.locator("main")).to_contain_text("王阿姨")
    await check(staff_page, "family-staff", lang)
    await staff_page.locator("form[action$='/confirm'] button").click()
    await staff_page.wait_for_url(re.compile(r".*done=confirmed"))
    await check(staff_page, "family-staff-confirmed", lang)

    # the son gives one and a half hours, through the district
    await son_page.goto("/me/family")
    await check(son_page, "family-list", lang)
    await son_page.locator("main a.button.primary[href^='/me/family/']").click()
    await son_page.wait_for_url(re.compile(r".*/me/family/[0-9a-f-]{36}$"))
    await check(son_page, "family-link", lang)
    await son_page.locator("#asset-hour").check()
    await son_page.locator("#amount").fill("1.5")
    await son_page.locator("#note").fill("给妈妈买菜")
    await son_page.locator("form[action$='/give'] button").click()
    await expect(son_page.locator("#relative")).to_have_text("王阿姨")
    await check(son_page, "family-give-confirm", lang)
    await son_page.locator("form[action$='/give/confirm'] button").click()
    await son_page.wait_for_url(re.compile(r".*/gifts/[0-9a-f-]{36}$"))
    await expect(son_page.locator("#given")).to_be_visible()
    await check(son_page, "family-given", lang)
    r = await client.get(f"/v1/accounts/{mother['accounts']['HOUR']}", headers=home.auth())
    assert r.json()["posted"] == 90, r.text
    r = await client.get("/v1/crossings", headers=home.auth())
    assert [(c["amount_received"], c["from"]["community_id"]) for c in r.json()["items"]] == [(90, theirs.id)]

    # she lets him see her hours and points; he looks, and she sees that he did
    await mum_page.goto("/me/family")
    await mum_page.locator("main a.button.primary[href^='/me/family/']").click()
    await mum_page.locator("#grant-view").check()
    await mum_page.locator("form[action$='/grants'] button").click()
    await mum_page.wait_for_url(re.compile(r".*done=grants"))
    await son_page.goto(son_page.url.split("/gifts/")[0])
    await son_page.locator("main a[href$='/relative']").click()
    await expect(son_page.locator("#relative-hours")).to_be_visible()
    await check(son_page, "family-relative", lang)
    await mum_page.reload()
    await expect(mum_page.locator(".family-record")).to_contain_text("王小明")
    await check(mum_page, "family-link-record", lang)

    # ending asks first
    await mum_page.locator("main a[href$='/end']").click()
    await check(mum_page, "family-end-confirm", lang)

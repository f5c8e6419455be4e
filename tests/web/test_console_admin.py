"""Community administration in a real Chromium, in Chinese and English, on a phone (and
the wide pages on a laptop too): staff find members by name and by phone as they type,
register one, open the member's page and print a member card with its QR code; trust an
organisation and see the policy's versions list the change; change a setting, see the
effect change as they type and the new version's differences; issue an API key; the
supervisory board sees every page without forms, and its forged posts are refused (403)
and change nothing. Every page is screenshotted, checked with axe-core, for older eyes
and for sideways scrolling (without and with admin.css, which the lead merges into
site.css)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.people.pages import add_person
from web.browser import LANGS, assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

PASSWORD = "staff-password-1"
LAPTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}
HARMLESS = ("/settings/language", "/settings/text-size", "/sign-out")


def phone_number() -> str:
    """A mainland mobile number no other test uses (logins are unique across communities)."""
    return "13" + str(uuid.uuid4().int)[:9]


async def check(page: Page, name: str, lang: str) -> None:
    """Readable, accessible, no sideways scroll: as the page is now, and with admin.css as
    it will be once merged (the screenshot shows that)."""
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await screenshot(page, name, lang)


async def on_laptop(phone: Any, lang: str, login: str, path: str, name: str) -> Page:
    page = await (await phone(lang, **LAPTOP)).new_page()
    await sign_in(page, login)
    await page.goto(path)
    await assert_accessible(page)
    await assert_accessible(page)
    await screenshot(page, f"{name}-laptop", lang)
    return page


async def staff(tenant: Any, role: str = "admin") -> str:
    login = f"{role}-{uuid.uuid4().hex[:8]}"
    subject = None if role == "admin" else (await tenant.member("监事 老刘"))["id"]
    await add_person(tenant, role, subject, "社工 小周" if role == "admin" else "监事 老刘", login, PASSWORD)
    return login


async def sign_in(page: Page, login: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(re.compile(r".*/staff$"))


async def staff_page(phone: Any, lang: str, login: str) -> Page:
    page = await (await phone(lang)).new_page()
    await sign_in(page, login)
    return page


async def policy(tenant: Any) -> dict[str, Any]:
    return (await tenant.client.get("/v1/community/policy", headers=tenant.auth())).json()


async def forge(page: Page, action: str, fields: dict[str, str]) -> int:
    """Post a form the page does not offer (the CSRF token copied from the page): its status."""
    async with page.expect_navigation() as sent:
        await page.evaluate(
            """([action, fields]) => {
                const form = document.createElement('form');
                form.method = 'post';
                form.action = action;
                const add = (name, value) => {
                    const input = document.createElement('input');
                    input.type = 'hidden'; input.name = name; input.value = value;
                    form.appendChild(input);
                };
                add('_csrf_token', document.querySelector('input[name=_csrf_token]').value);
                for (const [name, value] of Object.entries(fields)) add(name, value);
                document.body.appendChild(form);
                form.submit();
            }""",
            [action, fields],
        )
    response = await sent.value
    assert response is not None and response.request.method == "POST"
    return response.status


@pytest.mark.parametrize("lang", LANGS)
async def test_find_register_open_a_member_and_print_a_card(phone, tenant, lang) -> None:
    zhao = await tenant.member("赵奶奶")
    qian = await tenant.member("钱爷爷")
    qian_phone, sun_phone = phone_number(), phone_number()
    await add_person(tenant, "resident", qian["id"], "钱爷爷", qian_phone, None)
    await tenant.fund(zhao["accounts"]["HOUR"], "HOUR", 150)
    await tenant.fund(zhao["accounts"]["POINT"], "POINT", 40)
    login = await staff(tenant)
    page = await staff_page(phone, lang, login)

    await page.goto("/staff/members")
    await expect(page.locator("#results .card")).to_have_count(2)
    await check(page, "admin-members", lang)
    # as it is typed (htmx asks for the list alone)
    await page.locator("#q").fill("奶奶")
    await expect(page.locator("#results .card")).to_have_count(1)
    await expect(page.locator("#results .card a")).to_have_text("赵奶奶")
    await check(page, "admin-members-found", lang)
    await page.locator("#q").fill(f"{qian_phone[:3]} {qian_phone[3:7]} {qian_phone[7:]}")
    await expect(page.locator("#results .card")).to_have_count(1)
    await expect(page.locator("#results .card a")).to_have_text("钱爷爷")
    await expect(page.locator("#results .card")).to_contain_text(qian_phone)
    await on_laptop(phone, lang, login, "/staff/members?q=%E5%A5%B6", "admin-members")

    # register a member with a phone to sign in with
    await page.locator("#display_name").fill("孙阿姨")
    await page.locator("#external_ref").fill("HJ-001")
    await page.locator("#login").fill(sun_phone)
    await page.locator("form[method=post][action='/staff/members'] button").click()
    await expect(page.locator("h1")).to_have_text("孙阿姨")
    await expect(page.locator("#sign-in")).to_contain_text(sun_phone)
    await check(page, "admin-member-new", lang)
    people = (await tenant.client.get("/v1/people", headers=tenant.auth())).json()["items"]
    assert any(p["login"] == sun_phone and p["role"] == "resident" for p in people)

    # a member with history
    await page.goto("/staff/members?q=%E8%B5%B5")
    await page.locator("#results .card a").first.click()
    await expect(page.locator("h1")).to_have_text("赵奶奶")
    await expect(page.locator("#hours-balance .value")).to_contain_text("2.5")
    await expect(page.locator("#history a[href^='/receipts/']")).to_have_count(1)
    await check(page, "admin-member", lang)
    await on_laptop(phone, lang, login, f"/staff/members/{zhao['id']}", "admin-member")
    await page.goto(f"/staff/members/{zhao['id']}/history?asset=POINT")
    await expect(page.locator("#items > li")).to_have_count(1)
    await check(page, "admin-member-history", lang)
    await page.goto(f"/staff/members/{zhao['id']}/records")
    await check(page, "admin-member-records", lang)

    # nobody signs in as her yet: a person without a phone, then her card
    await page.goto(f"/staff/members/{zhao['id']}")
    await page.locator(f"form[action='/staff/members/{zhao['id']}/person'] button").click()
    await expect(page.locator(f"form[action='/staff/members/{zhao['id']}/card']")).to_have_count(1)
    await check(page, "admin-member-person", lang)
    await page.locator(f"form[action='/staff/members/{zhao['id']}/card'] button").click()
    await expect(page.locator("svg.qr")).to_be_visible()
    await expect(page.locator(".member-card")).to_contain_text("赵奶奶")
    await check(page, "admin-member-card", lang)
    await page.emulate_media(media="print")
    await expect(page.locator("svg.qr")).to_be_visible()
    await expect(page.locator("nav.tabs")).to_be_hidden()
    await screenshot(page, "admin-member-card-print", lang)
    await page.emulate_media(media="screen")
    # the card's link is open until used: its page offers to cancel it
    await page.goto(f"/staff/members/{zhao['id']}")
    await expect(page.locator("#sign-in form[action^='/staff/links/']")).to_have_count(1)


@pytest.mark.parametrize("lang", LANGS)
async def test_trust_an_organisation_and_see_the_policy_versions(phone, tenant, lang) -> None:
    org = await tenant.party("organisations", "华锦志愿服务队")
    await tenant.party("organisations", "阳光助老队")
    await tenant.party("merchants", "老王理发店")
    login = await staff(tenant)
    page = await staff_page(phone, lang, login)

    await page.goto("/staff/organisations")
    await expect(page.locator("#results .card")).to_have_count(2)
    await check(page, "admin-organisations", lang)
    await page.locator(f"form[action='/staff/organisations/{org['id']}/trust'] button").click()
    await expect(page.locator("[role=status]")).to_contain_text("华锦志愿服务队")
    await expect(page.locator(f"#party-{org['id']} input[name=trusted]")).to_have_value("0")
    await check(page, "admin-organisations-trusted", lang)
    now = await policy(tenant)
    assert now["version"] == 1 and now["policy"]["trusted_organisations"] == [org["id"]]
    await on_laptop(phone, lang, login, "/staff/organisations", "admin-organisations")

    await page.goto("/staff/policy/versions")
    version = page.locator("#version-1")
    await expect(version).to_contain_text("华锦志愿服务队")
    await expect(version).to_contain_text("社工 小周")
    await check(page, "admin-policy-versions-trust", lang)

    # register an organisation; merchants; keys
    await page.goto("/staff/organisations")
    await page.locator("#name").fill("红星志愿者协会")
    await page.locator("form[method=post][action='/staff/organisations'] button").click()
    await expect(page.locator("[role=status]")).to_contain_text("红星志愿者协会")
    await page.goto("/staff/merchants")
    await expect(page.locator("#results .card")).to_have_count(1)
    await check(page, "admin-merchants", lang)
    await on_laptop(phone, lang, login, "/staff/merchants", "admin-merchants")
    await page.goto("/staff/organisations")
    await page.locator(f"#party-{org['id']} a[href^='/staff/keys']").click()
    await expect(page.locator("#subject-name")).to_contain_text("华锦志愿服务队")
    await expect(page.locator("#role")).to_have_value("recorder")
    await check(page, "admin-keys", lang)
    await page.locator("#label").fill("志愿平台导入")
    await page.locator("form[action='/staff/keys'] button").click()
    key = await page.locator("#new-key").text_content()
    assert key and key.startswith("tbk_")
    await check(page, "admin-key-created", lang)
    assert (await tenant.client.get("/v1/community", headers=tenant.auth(key))).status_code == 200
    await page.goto("/staff/keys")
    assert key not in await page.content()
    await on_laptop(phone, lang, login, "/staff/keys", "admin-keys")


@pytest.mark.parametrize("lang", LANGS)
async def test_change_a_setting_see_its_effect_and_the_versions(phone, tenant, lang) -> None:
    login = await staff(tenant)
    page = await staff_page(phone, lang, login)
    await page.goto("/staff/policy")
    no_stars = page.locator("#effect li[data-star='0']")
    await expect(no_stars).to_contain_text("20")
    await check(page, "admin-policy", lang)
    await on_laptop(phone, lang, login, "/staff/policy", "admin-policy")

    # as it is typed: the effect follows (htmx), and a wrong value is named at once
    await page.locator("#points_per_hour").fill("5000")
    await expect(page.locator("#check-errors a[href='#points_per_hour']")).to_be_visible()
    await expect(page.locator("#effect")).to_have_count(0)
    await check(page, "admin-policy-invalid", lang)
    await page.locator("#points_per_hour").fill("15")
    await expect(page.locator("#check-errors")).to_have_count(0)
    await expect(no_stars).to_contain_text("30")  # a 2-hour service: 30 points, now 20
    await expect(page.locator("#effect li[data-star='5']")).to_contain_text("45")
    await page.locator("#rounding_unit").fill("15")
    await page.locator("#rounding_mode").select_option("nearest")
    await expect(page.locator("#effect")).to_contain_text("105")  # 107 min 30 s → 105 minutes
    await check(page, "admin-policy-preview", lang)
    assert (await policy(tenant))["version"] == 0  # typing saves nothing

    await page.locator("form#policy-form button.primary").click()
    await expect(page).to_have_url(re.compile(r".*/staff/policy/versions\?from=0&to=1"))
    changes = page.locator("#changes table")
    await expect(changes).to_contain_text("15")
    await expect(changes.locator("del")).to_have_count(3)  # points, rounding unit, rounding mode
    await check(page, "admin-policy-saved", lang)
    now = await policy(tenant)
    assert now["version"] == 1 and now["policy"]["points_per_hour"] == 15
    assert now["policy"]["rounding"] == {"unit_minutes": 15, "mode": "nearest"}
    await on_laptop(phone, lang, login, "/staff/policy/versions?from=0&to=1#changes", "admin-policy-versions")

    # without htmx (its script not loaded) the "check and preview" button shows the same
    # effect on a whole page, saving nothing
    nojs = await (await phone(lang)).new_page()
    await nojs.route("**/vendor/htmx.min.js*", lambda route: route.abort())
    await sign_in(nojs, login)
    await nojs.goto("/staff/policy")
    await nojs.locator("#points_per_hour").fill("10")
    async with nojs.expect_navigation():
        await nojs.locator("form#policy-form button.secondary").click()
    assert nojs.url.endswith("/staff/policy/check")
    await expect(nojs.locator("#effect li[data-star='0']")).to_contain_text("20")
    await check(nojs, "admin-policy-nojs-preview", lang)
    assert (await policy(tenant))["version"] == 1


@pytest.mark.parametrize("lang", LANGS)
async def test_the_board_reads_without_forms_and_a_forged_post_changes_nothing(phone, tenant, lang) -> None:
    member = await tenant.member("陈奶奶")
    await add_person(tenant, "resident", member["id"], "陈奶奶", None, None)
    org = await tenant.party("organisations", "阳光助老队")
    await tenant.party("merchants", "老王理发店")
    r = await tenant.client.put("/v1/community/policy", json={"points_per_hour": 12}, headers=tenant.auth())
    assert r.status_code == 200
    login = await staff(tenant, "auditor")
    page = await (await phone(lang)).new_page()
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(re.compile(r".*/staff$"))
    pages = {
        "members": "/staff/members",
        "member": f"/staff/members/{member['id']}",
        "organisations": "/staff/organisations",
        "merchants": "/staff/merchants",
        "keys": "/staff/keys",
        "policy": "/staff/policy",
        "policy-versions": "/staff/policy/versions?from=0&to=1",
    }
    for name, path in pages.items():
        await page.goto(path)
        actions = await page.eval_on_selector_all(
            "form[method=post]", "forms => forms.map(f => f.getAttribute('action'))"
        )
        assert set(actions) <= set(HARMLESS), (path, actions)
        await check(page, f"admin-board-{name}", lang)
    await expect(page.locator("#effect li[data-star='0']")).to_have_count(0)  # (the versions page)
    await page.goto("/staff/policy")
    await expect(page.locator("#effect li[data-star='0']")).to_contain_text("24")

    before = await policy(tenant)
    assert await forge(page, f"/staff/organisations/{org['id']}/trust", {"trusted": "1"}) == 403
    await expect(page.locator("[role=alert]")).to_be_visible()
    await page.goto("/staff/members")
    assert await forge(page, "/staff/members", {"display_name": "假的"}) == 403
    await page.goto("/staff/policy")
    assert await forge(page, "/staff/policy", {"version": "1", "points_per_hour": "99"}) == 403
    assert await policy(tenant) == before
    listed = (await tenant.client.get("/v1/members", headers=tenant.auth())).json()["items"]
    assert "假的" not in {m["display_name"] for m in listed}

"""The approval queue and the corrections queue in a real Chromium, in Chinese and English,
on a phone (and the lists on a laptop too): an admin approves a selection and rejects one
with a reason, and the volunteers' hours, points and stars change as the API says; a
correction asked for by one admin is refused to that admin and approved by a second;
the supervisory board sees the queue without any button, and its forged approval is
refused (403) and changes nothing. Every page is screenshotted, checked with axe-core,
for older eyes and for sideways scrolling (without and with approvals.css, which the
lead merges into site.css)."""

from __future__ import annotations

import re
import uuid
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.console.approvals import PASSWORD, Desk, local
from web.browser import LANGS, assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

LAPTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}


async def check(page: Page, name: str, lang: str) -> None:
    """Readable, accessible, no sideways scroll: as the page is now, and with the queue's
    own CSS as it will be once merged (the screenshot shows that)."""
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await screenshot(page, name, lang)


async def on_laptop(phone: Any, lang: str, login: str, path: str, name: str) -> None:
    """The same page on a laptop's screen (the lists are wide pages)."""
    page = await (await phone(lang, **LAPTOP)).new_page()
    await sign_in(page, login)
    await page.goto(path)
    await assert_accessible(page)
    await screenshot(page, f"{name}-laptop", lang)


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


async def forge(page: Page, action: str, fields: dict[str, str | list[str]]) -> int:
    """Post a form the page does not offer (the CSRF token copied from the page): its status."""
    async with page.expect_response(lambda r: r.request.method == "POST") as sent:
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
                for (const [name, value] of Object.entries(fields)) {
                    for (const v of [].concat(value)) add(name, v);
                }
                document.body.appendChild(form);
                form.submit();
            }""",
            [action, fields],
        )
    return (await sent.value).status


async def setup(tenant: Any) -> tuple[Desk, dict[str, str]]:
    desk = await Desk(tenant).setup()
    for name in ("王阿姨", "李大爷", "张小妹"):
        await desk.member(name)
    r1 = await desk.record("王阿姨", local(3, 9), 2)
    r2 = await desk.record("王阿姨", local(2, 9), 7, activity="社区大扫除")
    r3 = await desk.record(
        "李大爷", local(4, 23), 1, org="阳光助老队", activity="夜间陪护", category="neighbour_aid"
    )
    r4 = await desk.record("张小妹", local(1, 14), 1.5, org="阳光助老队", activity="读报")
    return desk, {"r1": r1["id"], "r2": r2["id"], "r3": r3["id"], "r4": r4["id"]}


@pytest.mark.parametrize("lang", LANGS)
async def test_an_admin_approves_a_selection_and_rejects_one(phone, tenant, lang) -> None:
    desk, ids = await setup(tenant)
    r = await tenant.client.put(
        "/v1/community/policy",
        # the desk's records are entered by hand (back-filled, 补录): they earn points here
        json={"star_thresholds_hours": [1, 5, 10, 20, 40], "backfilled_points": True},
        headers=tenant.auth(),
    )
    assert r.status_code == 200, r.text
    login = await desk.staff("admin", "社工 小周")
    page = await staff_page(phone, lang, login)

    await page.goto("/staff/approvals")
    await expect(page.locator("#records > li")).to_have_count(4)
    await check(page, "approvals-queue", lang)
    await page.locator("details.filters summary").click()
    await page.locator("#flagged").check()
    await page.locator("#filters button.primary").click()
    await expect(page.locator("#records > li")).to_have_count(2)  # the long day and the night
    await expect(page.locator(".flags")).to_have_count(2)
    await check(page, "approvals-flagged", lang)
    await on_laptop(phone, lang, login, "/staff/approvals", "approvals-queue")
    # with a script, changing a filter swaps the list in place (htmx) and keeps the address
    await page.goto("/staff/approvals")
    await page.locator("details.filters summary").click()
    await page.locator("#sort").select_option("longest")
    await expect(page.locator("#records > li").first).to_have_attribute("data-record", ids["r2"])
    await expect(page).to_have_url(re.compile(r".*sort=longest.*"))
    await expect(page.locator("#records > li").last).to_have_attribute("data-record", ids["r3"])

    await page.goto("/staff/approvals")
    for key in ("r1", "r2"):
        await page.locator(f"#pick-{ids[key]}").check()
    await page.locator("button[name=do][value=approve]").last.click()
    await expect(page.locator("#chosen > li")).to_have_count(2)
    await check(page, "approvals-confirm", lang)
    assert await desk.balances("王阿姨") == {"HOUR": 0, "POINT": 0}  # nothing moved before the yes
    await page.locator("form[action='/staff/approvals/approve'] button").click()
    await expect(page.locator("#outcomes > li[data-outcome=ok]")).to_have_count(2)
    await expect(page.locator("#outcomes a[href^='/receipts/']")).to_have_count(2)
    await check(page, "approvals-result", lang)
    # the volunteer's hours, points and stars, as the API tells them
    assert await desk.balances("王阿姨") == {"HOUR": 540, "POINT": 93}  # 20 at 0 stars + 73 at 1 star
    standing = await desk.standing("王阿姨")
    assert standing["lifetime_minutes"] == 540 and standing["star_level"] == 2
    for key in ("r1", "r2"):
        rec = await desk.record_status(ids[key])
        assert rec["status"] == "approved"
        await expect(page.locator(f"#outcomes a[href='/receipts/{rec['transaction_id']}']")).to_have_count(1)

    # reject one, with a reason
    await page.goto("/staff/approvals")
    await page.locator(f"button[name=reject_one][value='{ids['r3']}']").click()
    await expect(page.locator("#reason")).to_be_visible()
    await check(page, "approvals-reject-confirm", lang)
    await page.locator("#reason").fill("当天没有安排夜间陪护")
    await page.locator("form[action='/staff/approvals/reject'] button").click()
    await expect(page.locator("#outcomes > li[data-outcome=ok]")).to_have_count(1)
    await check(page, "approvals-rejected", lang)
    rec = await desk.record_status(ids["r3"])
    assert rec["status"] == "rejected" and rec["reject_reason"] == "当天没有安排夜间陪护"
    assert await desk.balances("李大爷") == {"HOUR": 0, "POINT": 0}

    # a record's own page: its history and receipt; a waiting one with its decision forms
    await page.goto(f"/staff/approvals/records/{ids['r1']}")
    await expect(page.locator(".history > li")).to_have_count(2)
    await check(page, "approvals-record", lang)
    await page.goto(f"/staff/approvals/records/{ids['r4']}")
    await expect(page.locator("#reject-reason")).to_be_visible()
    await check(page, "approvals-record-waiting", lang)
    await page.goto("/staff/approvals")
    await expect(page.locator("#records > li")).to_have_count(1)
    assert (await desk.record_status(ids["r4"]))["status"] == "submitted"


@pytest.mark.parametrize("lang", LANGS)
async def test_a_correction_asked_by_one_admin_is_decided_by_another(phone, tenant, lang) -> None:
    desk, ids = await setup(tenant)
    for key in ("r1", "r2"):
        await desk.approve_by_api(ids[key])
    assert await desk.balances("王阿姨") == {"HOUR": 540, "POINT": 90}
    first_login = await desk.staff("admin", "社工 小周")
    second_login = await desk.staff("admin", "站长 老陈")
    first = await staff_page(phone, lang, first_login)
    path = f"/staff/approvals/records/{ids['r2']}"

    await first.goto(path)
    await check(first, "approvals-record-approved", lang)
    await first.locator("#correction-reason").fill("志愿者当天只服务了半天")
    await first.locator(f"form[action='{path}/reversal'] button").click()
    await expect(first.locator("#not-yours")).to_be_visible()
    await expect(first.locator(f"form[action='{path}/reversal/approve']")).to_have_count(0)
    await check(first, "approvals-correction-asked", lang)
    # the one who asked cannot decide it: the service refuses, in words, and nothing changes
    assert await forge(first, f"{path}/reversal/approve", {"idem": str(uuid.uuid4())}) == 403
    await expect(first.locator("[role=alert]")).to_be_visible()
    await check(first, "approvals-correction-refused-to-asker", lang)
    assert (await desk.record_status(ids["r2"]))["status"] == "approved"
    await first.goto("/staff/corrections")
    await expect(first.locator("#waiting > li")).to_have_count(1)
    await expect(first.locator("#waiting form")).to_have_count(0)

    second = await staff_page(phone, lang, second_login)
    await second.goto("/staff/corrections")
    await expect(second.locator("#waiting > li")).to_have_count(1)
    await expect(second.locator("#approved > li")).to_have_count(2)
    await check(second, "corrections-queue", lang)
    await on_laptop(phone, lang, second_login, "/staff/corrections", "corrections-queue")
    await second.locator(f"form[action='{path}/reversal/approve'] button").click()
    await expect(second).to_have_url(re.compile(r".*\?done=reversed$"))
    await expect(second.locator("main a[href^='/receipts/']")).to_have_count(2)  # the credit and its reversal
    await check(second, "approvals-correction-approved", lang)
    await on_laptop(phone, lang, second_login, path, "approvals-record-reversed")
    rec = await desk.record_status(ids["r2"])
    assert rec["status"] == "reversed"
    assert await desk.balances("王阿姨") == {"HOUR": 120, "POINT": 20}
    assert (await desk.standing("王阿姨"))["lifetime_minutes"] == 120


@pytest.mark.parametrize("lang", LANGS)
async def test_the_board_sees_the_queue_and_cannot_approve(phone, tenant, lang) -> None:
    desk, ids = await setup(tenant)
    await desk.approve_by_api(ids["r4"])
    board_member = await desk.member("监事 刘老师")
    login = await desk.staff("auditor", "监事 刘老师", board_member["id"])
    page = await staff_page(phone, lang, login)

    chrome = ["/settings/language", "/settings/text-size", "/sign-out"]
    for path, name in (
        ("/staff/approvals", "approvals-board"),
        (f"/staff/approvals/records/{ids['r4']}", "approvals-record-board"),
        ("/staff/corrections", "corrections-board"),
    ):
        await page.goto(path)
        actions = await page.locator("form[method=post]").evaluate_all(
            "forms => forms.map(f => f.getAttribute('action'))"
        )
        assert actions == chrome, (path, actions)
        await check(page, name, lang)
    await page.goto("/staff/approvals")
    await expect(page.locator("#records > li")).to_have_count(3)
    await expect(page.locator("#records input[type=checkbox], #records button")).to_have_count(0)

    status = await forge(
        page, "/staff/approvals/approve", {"record": [ids["r1"], ids["r2"]], "idem": str(uuid.uuid4())}
    )
    assert status == 403
    await expect(page.locator("main")).to_be_visible()
    await screenshot(page, "approvals-board-forged", lang)
    for key in ("r1", "r2", "r3"):
        assert (await desk.record_status(ids[key]))["status"] == "submitted"
    assert await desk.balances("王阿姨") == {"HOUR": 0, "POINT": 0}

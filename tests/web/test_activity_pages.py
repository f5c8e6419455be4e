"""Activities in a real Chromium (issue 17): the organiser shows the check-in QR; the
volunteer, on a phone of their own, opens the URL read from the QR image on the
organiser's page (signed out first: sign in and back), checks in, later checks out with a
newer QR, and the record waits in the approval queue. Every activity page is
screenshotted on a phone in Chinese and English, checked with axe-core, for older eyes
and for sideways scrolling."""

from __future__ import annotations

import io
import re
import uuid
from datetime import timedelta
from typing import Any

import pytest
import zxingcpp
from PIL import Image
from playwright.async_api import Page, expect
from sqlalchemy import text

from tests.activities.helpers import Activities, now
from tests.people.pages import add_person
from web.browser import (
    LANGS,
    check,
)

PASSWORD = "activity-password-1"


async def sign_in(page: Page, login: str) -> None:
    """Sign in on the page it is at (the sign-in page), and wait to leave it."""
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(lambda url: "/sign-in" not in url)


async def read_qr(page: Page) -> str:
    """The text of the QR code shown on the page, read from its image."""
    shot = await page.locator("#check-in-qr svg").screenshot()
    codes = [c.text for c in zxingcpp.read_barcodes(Image.open(io.BytesIO(shot)))]
    assert len(codes) == 1, codes
    return codes[0]


@pytest.fixture
async def acts(tenant: Any) -> Activities:
    made = await Activities(tenant).setup()
    tag = uuid.uuid4().hex[:8]
    made.logins = {"organiser": f"act-org-{tag}", "volunteer": f"act-vol-{tag}", "admin": f"act-admin-{tag}"}
    made.member, made.key = await made.volunteer("王阿姨")
    await add_person(tenant, "recorder", made.org["id"], "队长 小张", made.logins["organiser"], PASSWORD)
    await add_person(tenant, "resident", made.member["id"], "王阿姨", made.logins["volunteer"], PASSWORD)
    await add_person(tenant, "admin", None, "社工 小陈", made.logins["admin"], PASSWORD)
    made.activity = await made.ongoing(description="陪老人聊天、读报。")
    later = now() + timedelta(days=2)
    made.later = await made.publish(later, later + timedelta(hours=2), title="社区义诊")
    made.neighbour, neighbour_key = await made.volunteer("李大爷")  # no phone: the organiser checks him in
    for key in (made.key, neighbour_key):
        r = await made.sign_up(made.activity["id"], key)
        assert r.status_code == 201, r.text
    return made


@pytest.mark.parametrize("lang", LANGS)
async def test_check_in_and_out_by_the_qr_on_the_organisers_page(phone, acts, engine, lang) -> None:
    a = acts.activity
    organiser = await (await phone(lang)).new_page()
    await organiser.goto("/sign-in")
    await sign_in(organiser, acts.logins["organiser"])
    await organiser.goto("/org/activities")
    await check(organiser, "activities-org-list", lang)
    await organiser.locator(f"a[href='/org/activities/{a['id']}']").click()
    await organiser.wait_for_url(re.compile(f".*/org/activities/{a['id']}$"))
    await check(organiser, "activities-org-one", lang)
    await organiser.locator(f"a[href='/org/activities/{a['id']}/check-in']").click()
    await expect(organiser.locator("#check-in-code")).to_have_text(re.compile(r"^\d{6}$"))
    await check(organiser, "activities-check-in", lang)

    # the volunteer's phone opens the URL the QR holds: signed out, it signs in and comes back
    url = await read_qr(organiser)
    assert f"/a/{a['id']}/scan?t=" in url
    volunteer = await (await phone(lang)).new_page()
    await volunteer.goto(url)
    await volunteer.wait_for_url(re.compile(r".*/sign-in\?next="))
    await sign_in(volunteer, acts.logins["volunteer"])
    await volunteer.wait_for_url(re.compile(f".*/a/{a['id']}/scan\\?t="))
    await check(volunteer, "activities-scan", lang)
    await volunteer.locator("#scan-button").click()
    await volunteer.wait_for_url(re.compile(r".*done=checked_in"))
    await expect(volunteer.locator("#scan-result")).to_be_visible()
    await check(volunteer, "activities-scan-checked-in", lang)

    # forty minutes later (the check-in is moved back rather than waited for), a newer QR checks out
    async with engine.begin() as conn:
        await conn.execute(
            text(
                "update activity_signups set checked_in_at = checked_in_at - interval '40 minutes' "
                "where activity_id = :a"
            ),
            {"a": a["id"]},
        )
    await organiser.reload()
    url = await read_qr(organiser)
    await volunteer.goto(url)
    await volunteer.locator("#scan-button").click()
    await volunteer.wait_for_url(re.compile(r".*done=checked_out"))
    await expect(volunteer.locator("#scan-result")).to_be_visible()
    await check(volunteer, "activities-scan-checked-out", lang)

    # the volunteer's own pages
    await volunteer.goto("/me/activities")
    await expect(volunteer.locator(f"a[href='/me/activities/{acts.later['id']}']")).to_be_visible()
    await expect(volunteer.locator(f"a[href='/me/activities/{a['id']}']")).to_be_visible()  # under way, mine
    await check(volunteer, "activities-resident-list", lang)
    await volunteer.goto(f"/me/activities/{acts.later['id']}")
    await check(volunteer, "activities-resident-one", lang)
    await volunteer.locator(f"form[action='/me/activities/{acts.later['id']}/sign-up'] button").click()
    await volunteer.wait_for_url(re.compile(r".*done=signed_up"))
    await check(volunteer, "activities-resident-signed-up", lang)
    await volunteer.locator(f"form[action='/me/activities/{acts.later['id']}/withdraw'] button").click()
    await expect(volunteer.locator("#confirm-title")).to_be_visible()  # asked first, nothing changed yet
    await check(volunteer, "activities-resident-withdraw-confirm", lang)
    await volunteer.locator(f"main a[href='/me/activities/{acts.later['id']}']").click()
    await expect(volunteer.locator("#confirm-title")).to_have_count(0)

    # the attendance: present with times, and its CSV
    await organiser.goto(f"/org/activities/{a['id']}/attendance")
    await expect(organiser.locator("main")).to_contain_text("王阿姨")
    await check(organiser, "activities-attendance", lang)
    by_hand = organiser.locator(f"form:has(input[value='{acts.neighbour['id']}'])")
    await by_hand.locator("button").click()
    await organiser.wait_for_url(re.compile(r".*/attendance$"))
    await expect(organiser.locator(f"#at-{acts.neighbour['id']}")).to_be_visible()
    await check(organiser, "activities-attendance-by-hand", lang)

    # the record waits for approval
    admin = await (await phone(lang)).new_page()
    await admin.goto("/sign-in")
    await sign_in(admin, acts.logins["admin"])
    await admin.goto("/staff/approvals")
    await expect(admin.locator("main")).to_contain_text(a["title"])
    await admin.goto("/staff/activities")
    await check(admin, "activities-staff-list", lang)

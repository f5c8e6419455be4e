"""The reports' pages in a real Chromium, on a phone, in Chinese and English: an admin
opens the reports from the menu, moves between the three, picks a period, mistypes one,
and downloads the CSV and the .xlsx; a board member reads them too. Every page is
screenshotted (test-artifacts/screenshots/reports-*), checked with axe-core, for older
eyes and for sideways scrolling at 360 px; one laptop view as well."""

from __future__ import annotations

import asyncio
import io
import re
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import openpyxl
import pytest
from playwright.async_api import Page, expect

from tests.people.pages import add_person
from tests.reports.test_reports import History
from web.browser import (
    LANGS,
    assert_accessible,
    assert_no_sideways_scroll,
    assert_readable,
    check,
    screenshot,
)

PASSWORD = "report-password-1"
ZONE = ZoneInfo("Asia/Shanghai")
LAPTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}


async def sign_in(page: Page, login: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(re.compile(r".*/staff$"))


@pytest.fixture
async def history(tenant: Any, engine: Any) -> History:
    h = await History(tenant, engine).setup()
    await h.policy(star_thresholds_hours=[1, 3, 6, 10, 15])
    await h.serve(0, 0, "volunteer_service", 120)
    await h.serve(0, 1, "neighbour_aid", 60)
    await h.serve(1, 1, "day_care", 90)
    await h.serve(2, 0, "culture_health", 45)
    corrected = await h.serve(1, 0, "legal_aid", 60)
    assert await h.reverse(corrected["record"]["id"])
    await h.adjust(2, 100)
    assert await h.redeem(2, 0)
    assert await h.redeem(2, 1)
    assert await h.donate(0, 5)
    tag = uuid.uuid4().hex[:8]
    h.logins = {"admin": f"rep-admin-{tag}", "auditor": f"rep-board-{tag}"}  # type: ignore[attr-defined]
    await add_person(tenant, "admin", None, "社工 小陈", h.logins["admin"], PASSWORD)  # type: ignore[attr-defined]
    board = await tenant.member("监事 老李")
    await add_person(tenant, "auditor", board["id"], "监事 老李", h.logins["auditor"], PASSWORD)  # type: ignore[attr-defined]
    return h


async def download(page: Page, selector: str) -> tuple[str, bytes]:
    async with page.expect_download() as got:
        await page.locator(selector).click()
    d = await got.value
    return d.suggested_filename, await asyncio.to_thread(Path(await d.path()).read_bytes)


@pytest.mark.parametrize("lang", LANGS)
async def test_an_admin_reads_the_reports_on_a_phone(phone, history, lang) -> None:
    short = lang.split("-")[0]
    page = await (await phone(lang)).new_page()
    await sign_in(page, history.logins["admin"])

    await page.locator("nav.tabs a[href='/staff/reports']").click()
    await page.wait_for_url(re.compile(r".*/staff/reports$"))
    await expect(page.locator("h1")).to_be_visible()
    assert await page.locator("nav.tabs a[aria-current='page']").get_attribute("href") == "/staff/reports"
    # this month by default (the history is from today)
    assert await page.locator("#from").input_value() == datetime.now(ZONE).date().replace(day=1).isoformat()
    await expect(page.locator("#by_organisation table")).to_contain_text("华锦志愿服务队")
    assert await page.locator("svg.report-chart[role=img]").count() == 4
    await check(page, "reports-service", short)

    # a period of the last days; the last day is included
    today = datetime.now(ZONE).date()
    await page.locator("#from").fill((today - timedelta(days=1)).isoformat())
    await page.locator("#to").fill(today.isoformat())
    await page.locator(".report-period form button").click()
    await page.wait_for_url(re.compile(rf".*to={today.isoformat()}"))
    await expect(page.locator("#by_category table")).to_be_visible()

    await page.locator(".report-nav a[href^='/staff/reports/points']").click()
    await page.wait_for_url(re.compile(rf".*/staff/reports/points\?from=.*to={today.isoformat()}"))
    await expect(page.locator("#redeemed_by_merchant table")).to_contain_text("爱心超市")
    await check(page, "reports-points", short)

    await page.locator(".report-nav a[href^='/staff/reports/merchants']").click()
    await page.wait_for_url(re.compile(r".*/staff/reports/merchants\?.*"))
    await expect(page.locator("#merchants table")).to_contain_text("理发店")
    await check(page, "reports-merchants", short)

    name, body = await download(page, "a[href^='/staff/reports/merchants.csv']")
    assert name.endswith(".csv") and body.startswith(b"\xef\xbb\xbf")
    assert "爱心超市" in body.decode("utf-8-sig")
    name, body = await download(page, "a[href^='/staff/reports/merchants.xlsx']")
    assert name.endswith(".xlsx")
    book = await asyncio.to_thread(openpyxl.load_workbook, io.BytesIO(body))
    assert len(book.sheetnames) == 3

    # last month: nothing served then, and the page says so in words
    await page.locator("ul.report-quick a").nth(1).click()
    await page.wait_for_url(re.compile(r".*/staff/reports/merchants\?from=.*"))
    await page.locator(".report-nav a[href^='/staff/reports?']").click()
    await expect(page.locator(".report-empty").first).to_be_visible()
    await check(page, "reports-service-empty", short)

    # the last day before the first: explained next to the field, the form kept
    await page.locator("#from").fill(today.isoformat())
    await page.locator("#to").fill((today - timedelta(days=3)).isoformat())
    await page.locator(".report-period form button").click()
    await expect(page.locator("#to-error")).to_be_visible()
    assert await page.locator("#to").get_attribute("aria-invalid") == "true"
    assert await page.locator("table").count() == 0
    await check(page, "reports-period-error", short)


@pytest.mark.parametrize("lang", LANGS)
async def test_the_board_reads_the_reports_and_a_laptop_shows_charts_beside_tables(
    phone, history, lang
) -> None:
    short = lang.split("-")[0]
    page = await (await phone(lang)).new_page()
    await sign_in(page, history.logins["auditor"])
    await page.goto("/staff/reports/points")
    await expect(page.locator("#flows table")).to_be_visible()
    await assert_accessible(page)
    await assert_no_sideways_scroll(page)
    # larger text: still no sideways scroll, the cards and charts still fit
    await page.locator("form[action='/settings/text-size'] button").click()
    await expect(page.locator("html.large")).to_have_count(1)
    await expect(page.locator("#flows table")).to_be_visible()
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await screenshot(page, "reports-points-large", short)

    laptop = await (await phone(lang, **LAPTOP)).new_page()
    await sign_in(laptop, history.logins["auditor"])
    await laptop.goto("/staff/reports")
    await expect(laptop.locator("#by_month table")).to_be_visible()
    await assert_accessible(laptop)
    await screenshot(laptop, "reports-service-laptop", short)

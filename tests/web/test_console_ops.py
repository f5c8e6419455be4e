"""The operations page and the journal in a real Chromium, in Chinese and English, on a
phone and on a laptop: an admin and a board member open the operations page and the
journal, filter it, open a transaction and download its signed receipt. Every page is
screenshotted, checked with axe-core, for older eyes and for sideways scrolling (without
and with ops.css, which the lead merges into site.css)."""

from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from playwright.async_api import Page, expect

from tests.console.ops import PASSWORD, Ledger
from timebank.jobs.definitions import JOBS
from timebank.jobs.runner import run_once
from web.browser import LANGS, assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

LAPTOP = {"viewport": {"width": 1280, "height": 800}, "is_mobile": False, "has_touch": False}
ZONE = ZoneInfo("Asia/Shanghai")
BASE_FORMS = {"/settings/language", "/settings/text-size", "/sign-out"}


async def check(page: Page, name: str, lang: str) -> None:
    """Readable, accessible, no sideways scroll: as the page is now, and with the pages'
    own CSS as it will be once merged (the screenshot shows that)."""
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await screenshot(page, name, lang)


async def sign_in(page: Page, login: str) -> None:
    await page.goto("/sign-in")
    await page.locator("#login").fill(login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(re.compile(r".*/staff$"))


async def on_laptop(phone: Any, lang: str, login: str, paths: dict[str, str]) -> None:
    """The same pages on a laptop's screen (the journal is a table)."""
    page = await (await phone(lang, **LAPTOP)).new_page()
    await sign_in(page, login)
    for name, path in paths.items():
        await page.goto(path)
        await assert_accessible(page)
        await screenshot(page, f"{name}-laptop", lang)


async def post_forms(page: Page) -> set[str]:
    return set(
        await page.eval_on_selector_all(
            "form[method=post]", "forms => forms.map(f => new URL(f.action).pathname)"
        )
    )


async def download_receipt(page: Page, tx_id: str) -> dict[str, Any]:
    async with page.expect_download() as got:
        await page.locator(f"a[href='/receipts/{tx_id}']").click()
    download = await got.value
    assert download.suggested_filename == f"receipt-{tx_id}.json"
    return json.loads(await asyncio.to_thread(Path(await download.path()).read_bytes))


@pytest.fixture
async def ledger(tenant: Any, engine: Any) -> Ledger:
    made = await Ledger(tenant).setup()

    async def nothing() -> dict[str, Any]:
        return {}

    today = datetime.now(UTC).astimezone(ZONE).date().isoformat()
    await run_once(engine, "points-expiry", tenant.id, today, nothing)
    await tenant.integrate()
    return made


@pytest.mark.parametrize("lang", LANGS)
async def test_an_admin_reads_operations_and_the_journal(phone, ledger, lang) -> None:
    tx = ledger.tx
    page = await (await phone(lang)).new_page()
    await sign_in(page, ledger.logins["admin"])

    await page.locator("nav.tabs a[href='/staff/operations']").click()
    await expect(page.locator("h1")).to_be_visible()
    assert await page.locator("#jobs-heading + ul.cards > li").count() == len(JOBS)
    await check(page, "console-operations", lang)

    await page.locator("nav.tabs a[href='/staff/journal']").click()
    rows = page.locator("table.journal tbody tr")
    assert await rows.count() == len(tx)
    await check(page, "console-journal", lang)

    # filter: transfers over 2 hours (the filters fold away on a phone until asked for)
    await page.locator("details.more > summary").click()
    await page.locator("#kind").select_option("transfer")
    await page.locator("#over").fill("2")
    await page.locator("form.journal-filters button").click()
    await page.wait_for_url(re.compile(r".*kind=transfer.*over=2"))
    assert await rows.count() == 1
    await expect(rows.first).to_contain_text("陪诊")
    await check(page, "console-journal-filtered", lang)

    # a wrong filter is explained next to its field
    await page.locator("#over").fill("lots")
    await page.locator("form.journal-filters button").click()
    await expect(page.locator("#over-error")).to_be_visible()
    assert await page.locator("#over").get_attribute("aria-invalid") == "true"
    await check(page, "console-journal-error", lang)

    # open the transaction, download its receipt
    await page.goto("/staff/journal?kind=transfer&over=2")
    await rows.first.locator(f"a[href='/staff/journal/{tx['big']}']").click()
    await page.wait_for_url(re.compile(f".*/staff/journal/{tx['big']}$"))
    await expect(page.locator("p.notice")).to_be_visible()  # in the public log
    await check(page, "console-transaction", lang)
    receipt = await download_receipt(page, tx["big"])
    assert receipt["transaction"]["id"] == tx["big"]
    assert "log" in receipt  # integrated: with its inclusion proof

    # a reversal names what it reverses, and the link leads there
    await page.goto(f"/staff/journal/{tx['reversal']}")
    await page.locator(f"main a[href='/staff/journal/{tx['small']}']").click()
    await page.wait_for_url(re.compile(f".*/staff/journal/{tx['small']}$"))
    await check(page, "console-transaction-reversed", lang)

    await on_laptop(
        phone,
        lang,
        ledger.logins["admin"],
        {
            "console-operations": "/staff/operations",
            "console-journal": "/staff/journal",
            "console-transaction": f"/staff/journal/{tx['big']}",
        },
    )


@pytest.mark.parametrize("lang", LANGS)
async def test_the_board_reads_them_too_with_nothing_to_act_with(phone, ledger, lang) -> None:
    tx = ledger.tx
    li = ledger.members["李建国"]
    page = await (await phone(lang)).new_page()
    await sign_in(page, ledger.logins["auditor"])

    await page.goto("/staff/operations")
    assert await post_forms(page) <= BASE_FORMS
    await check(page, "console-operations-board", lang)

    # the journal, then one member's transactions by tapping their name
    await page.goto("/staff/journal")
    assert await post_forms(page) <= BASE_FORMS
    await page.locator(f"table.journal a[href='/staff/journal?holder={li['id']}']").first.click()
    await page.wait_for_url(re.compile(f".*holder={li['id']}"))
    await expect(page.locator("p.notice")).to_contain_text("李建国")
    assert await page.locator("table.journal tbody tr").count() == 5
    await check(page, "console-journal-member", lang)

    # days in the community's zone: today has them all, and the form keeps its values
    today = datetime.now(ZONE).date().isoformat()
    await page.locator("#from").fill(today)
    await page.locator("#to").fill(today)
    await page.locator("form.journal-filters button").click()
    await page.wait_for_url(re.compile(f".*from={today}.*"))
    assert await page.locator("#from").input_value() == today
    assert await page.locator("table.journal tbody tr").count() == 5

    await page.locator(f"table.journal a[href='/staff/journal/{tx['hold']}']").click()
    await page.wait_for_url(re.compile(f".*/staff/journal/{tx['hold']}$"))
    assert await post_forms(page) <= BASE_FORMS
    await expect(page.locator(f"main a[href='/staff/journal/{tx['void']}']")).to_be_visible()
    await check(page, "console-transaction-board", lang)
    receipt = await download_receipt(page, tx["hold"])
    assert receipt["transaction"]["id"] == tx["hold"]

    # the board's post to the pages is refused, whatever it sends
    status = await page.evaluate(
        """async () => {
            const token = document.querySelector('input[name=_csrf_token]').value;
            const r = await fetch('/staff/journal', {method: 'POST', body: new URLSearchParams({_csrf_token: token})});
            return r.status;
        }"""
    )
    assert status in (403, 405)
    assert uuid.UUID(tx["hold"])

"""The organisation recorder's pages in a real Chromium, in Chinese and English: a recorder
records one service for three volunteers from one form (found as they type; the one who
breaks a rule is told so next to their row), imports a CSV and an Excel file with good
and bad lines (the bad ones shown before anything is stored; uploaded again, nothing is
stored twice, as the API shows), and reads the organisation's records. Every page is
screenshotted on a phone and a laptop, checked with axe-core, for older eyes and for
sideways scrolling (without and with org.css, which the lead merges into site.css)."""

from __future__ import annotations

import asyncio
import csv
import io
import re

import pytest
from playwright.async_api import Page, expect

from tests.console.recorder import PASSWORD, Team, at, csv_of, day, new_login, team, xlsx_of
from web.browser import LANGS, assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

LAPTOP = {"width": 1280, "height": 800}
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


async def check(page: Page, name: str, lang: str) -> None:
    """Accessible, readable, no sideways scroll as the page is now and with org.css as it
    will be once merged (the screenshots show that), on a phone and on a laptop."""
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await screenshot(page, name, lang)
    phone = page.viewport_size
    await page.set_viewport_size(LAPTOP)
    try:
        await screenshot(page, f"{name}-laptop", lang)
    finally:
        await page.set_viewport_size(phone)


async def signed_in(phone, crew: Team, lang: str) -> Page:
    page = await (await phone(lang)).new_page()
    await page.goto("/sign-in")
    await page.locator("#login").fill(crew.login)
    await page.locator("#password").fill(PASSWORD)
    await page.locator("form[action='/sign-in'] button").click()
    await page.wait_for_url(re.compile(r".*/org$"))
    return page


async def add(page: Page, text: str, name: str) -> None:
    """Find a volunteer as one types, and add them to the form."""
    await page.locator("#q").fill(text)
    button = page.locator("#results button[name='add']").filter(has_text=name)
    await expect(button).to_be_visible()
    await button.click()
    await expect(page.locator("#chosen li h3").filter(has_text=name)).to_be_visible()


@pytest.mark.parametrize("lang", LANGS)
async def test_a_recorder_records_one_service_for_three_volunteers(phone, tenant, lang: str) -> None:
    crew = await team(tenant)
    wang = await crew.volunteer("王芳", ref="V-101")
    li = await crew.volunteer("李强", phone=(li_phone := new_login()))
    zhao = await crew.volunteer("赵敏")
    assert (await crew.record("赵敏", at(1, 10), 60)).status_code == 201  # busy 10:00–11:00 yesterday

    page = await signed_in(phone, crew, lang)
    assert await page.locator("html").get_attribute("lang") == lang
    await check(page, "org-record", lang)

    await add(page, "王", "王芳")
    await add(page, li_phone, "李强")  # by the phone number the resident signs in with
    await add(page, "赵", "赵敏")
    await expect(page.locator("#chosen li")).to_have_count(3)
    await expect(page.locator("#results")).to_contain_text("赵敏")
    await page.locator("#activity").fill("陪老人聊天")
    await page.locator("#category").select_option("volunteer_service")
    await page.locator("#place").fill("日间照料中心")
    await page.locator("#day").fill(day(1).isoformat())
    await page.locator("#start").fill("09:00")
    await page.locator("#end").fill("11:00")
    await page.locator(f"#minutes-{wang['id']}").fill("60")
    await check(page, "org-record-chosen", lang)

    await page.locator("button[value='record']").click()
    await expect(page.get_by_role("alert").first).to_be_visible()
    zhao_row = page.locator(f"#chosen-{zhao['id']}")
    await expect(zhao_row.locator(".alert")).to_be_visible()  # the rule it breaks, next to its row
    await expect(page.locator("#chosen li")).to_have_count(1)
    await expect(page.locator("section.notice li")).to_have_count(2)  # 王芳 and 李强 are recorded
    await check(page, "org-record-refused", lang)
    mine = {r["member_id"]: r for r in await crew.records() if r["activity"] == "陪老人聊天"}
    assert set(mine) == {wang["id"], li["id"]} and mine[wang["id"]]["minutes"] == 60

    # 赵敏 served in the afternoon: the same form, the other times
    await page.locator("#start").fill("14:00")
    await page.locator("#end").fill("15:30")
    await page.locator("button[value='record']").click()
    await page.wait_for_url(re.compile(r".*/org/done\?r=.*"))
    await expect(page.locator("#recorded li")).to_have_count(1)
    await check(page, "org-record-done", lang)
    assert len([r for r in await crew.records() if r["activity"] == "陪老人聊天"]) == 3

    # a row taken out again (htmx) is not sent
    await page.goto("/org")
    await add(page, "王", "王芳")
    await page.locator(f"#chosen-{wang['id']} button[name='remove']").click()
    await expect(page.locator("#chosen li")).to_have_count(0)
    await expect(page.locator("#chosen-status")).to_be_visible()


def _lines() -> list[str]:
    d1, d2, d3 = (day(n).isoformat() for n in (1, 2, 3))
    return [
        f"V-1,陪老人聊天,志愿服务,日间照料中心,{d1} 09:00,{d1} 11:00,李爷爷",
        f"V-2,读报,志愿服务,日间照料中心,{d1} 09:00,{d1} 10:00,",
        f"V-1,清扫,志愿服务,小区,{d1} 10:00,{d1} 12:00,",  # overlaps the first line
        f"NOBODY,清扫,志愿服务,小区,{d2} 10:00,{d2} 12:00,",  # no such volunteer
        f"V-2,义诊,文体健康,社区中心,{d3} 14:00,{d3} 16:00,",
    ]


async def _upload(page: Page, name: str, content: bytes, kind: str) -> None:
    await page.goto("/org/import")
    await page.locator("#file").set_input_files({"name": name, "mimeType": kind, "buffer": content})
    await page.locator("form[action='/org/import/preview'] button").click()
    await expect(page.locator("ul.lines")).to_be_visible()


@pytest.mark.parametrize("lang", LANGS)
async def test_a_recorder_imports_a_csv_and_an_excel_file_once(phone, tenant, lang: str) -> None:
    crew = await team(tenant)
    await crew.volunteer("王芳", ref="V-1")
    await crew.volunteer("李强", ref="V-2")
    page = await signed_in(phone, crew, lang)
    await page.goto("/org/import")
    await check(page, "org-import", lang)

    # while the file goes up and is checked, a progress bar shows (htmx and org.js)
    release = asyncio.Event()

    async def slowly(route) -> None:
        await release.wait()
        await route.continue_()

    await page.route("**/org/import/preview", slowly)
    data = csv_of(_lines())
    await page.locator("#file").set_input_files({"name": "本周.csv", "mimeType": "text/csv", "buffer": data})
    await page.locator("form[action='/org/import/preview'] button").click()
    await expect(page.locator("#upload-progress")).to_be_visible()
    await expect(page.locator("#upload-progress progress")).to_be_visible()
    release.set()
    await expect(page.locator("ul.lines")).to_be_visible()
    await page.unroute("**/org/import/preview")

    # the preview: every line's verdict, nothing stored yet
    await expect(page.locator("li.line.ok")).to_have_count(3)
    await expect(page.locator("li.line.refused")).to_have_count(2)
    refused = page.locator("li.line.refused")
    assert [await x.get_attribute("data-line") for x in await refused.all()] == ["4", "5"]
    assert await crew.records() == []
    await check(page, "org-import-preview", lang)

    await page.locator("form[action='/org/import/run'] button").click()
    await expect(page.locator("form[action='/org/import/rejected.csv']")).to_be_visible()
    assert len(await crew.records()) == 3
    await check(page, "org-import-done", lang)
    async with page.expect_download() as downloading:
        await page.locator("form[action='/org/import/rejected.csv'] button").click()
    download = await downloading.value
    rows = list(csv.reader(io.StringIO(_read(await download.path()))))
    assert [r[-2] for r in rows[1:]] == ["4", "5"]

    # the same file again: nothing new; an Excel file with one new line, one known, one bad
    await _upload(page, "本周.csv", data, "text/csv")
    await expect(page.locator("form[action='/org/import/run']")).to_have_count(0)
    await expect(page.locator("li.line.refused")).to_have_count(2)
    d4 = day(4)
    workbook = xlsx_of(
        [
            [
                "V-1",
                "陪老人聊天",
                "志愿服务",
                "日间照料中心",
                at(1, 9).replace(tzinfo=None),
                at(1, 11).replace(tzinfo=None),
                "李爷爷",
            ],
            ["V-2", "清扫", "志愿服务", "小区", f"{d4} 08:00", f"{d4} 09:30", None],
            ["V-9", "清扫", "志愿服务", "小区", f"{d4} 08:00", f"{d4} 09:30", None],
        ]
    )
    await _upload(page, "本周.xlsx", workbook, XLSX)
    await expect(page.locator("li.line.ok")).to_have_count(2)  # one of them recorded before
    await expect(page.locator("li.line.refused")).to_have_count(1)
    await check(page, "org-import-preview-xlsx", lang)
    await page.locator("form[action='/org/import/run'] button").click()
    await expect(page.locator("form[action='/org/import/rejected.csv']")).to_be_visible()
    assert len(await crew.records()) == 4
    # the workbook again: nothing is stored twice
    await _upload(page, "本周.xlsx", workbook, XLSX)
    await expect(page.locator("form[action='/org/import/run']")).to_have_count(0)
    assert len(await crew.records()) == 4


def _read(path) -> str:
    with open(path, encoding="utf-8-sig") as f:
        return f.read()


@pytest.mark.parametrize("lang", LANGS)
async def test_a_recorder_reads_the_organisations_records(phone, tenant, lang: str) -> None:
    crew = await team(tenant)
    await crew.volunteer("王芳")
    await crew.volunteer("李强")
    for n in range(1, 8):
        assert (await crew.record("王芳" if n % 2 else "李强", at(n, 9), 90)).status_code == 201
    assert (
        await crew.record("李强", at(1, 14), 60, category="culture_health", activity="义诊")
    ).status_code == 201
    page = await signed_in(phone, crew, lang)
    await page.goto("/org/records")
    await expect(page.locator("table.records tbody tr")).to_have_count(8)
    await check(page, "org-records", lang)
    await page.locator("details.filters-box summary").click()
    await page.locator("#category").select_option("culture_health")
    await page.locator("form.filters button").click()
    await expect(page.locator("table.records tbody tr")).to_have_count(1)
    await page.locator("#category").select_option("")
    await page.locator("#member").fill("王")
    await page.locator("form.filters button").click()
    await expect(page.locator("table.records tbody tr")).to_have_count(4)
    await check(page, "org-records-filtered", lang)

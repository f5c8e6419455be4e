"""The browser-test machinery itself, on what the service serves today: Chromium starts,
pages of the live server load from it alone, screenshots are written with Chinese in a
Chinese font, and the accessibility and width checks do fail on a page that breaks them."""

from __future__ import annotations

import re
import subprocess
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page, Request

from web.browser import SCREENSHOTS, assert_accessible, assert_no_sideways_scroll, screenshot

BAD_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>bad</title></head>
<body><main><img src="data:image/gif;base64,R0lGODlhAQABAAAAACw=" id="no-alt"><button id="empty"></button></main>
</body></html>"""

GOOD_PAGE = """<!DOCTYPE html><html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1"><title>时间银行</title></head>
<body><main><h1>时间银行</h1><p>居民的志愿服务时长与爱心积分。</p>
<div style="overflow-x: auto"><table><tr><td style="min-width: 600px">宽表格在自己的滚动框里</td></tr></table></div>
</main></body></html>"""

WIDE_PAGE = GOOD_PAGE.replace("<h1>", '<h1 id="wide" style="width: 500px">')


def _version_of(executable: str) -> str:
    shown = subprocess.run([executable, "--version"], capture_output=True, text=True).stdout
    found = re.search(r"\d+(\.\d+){3}", shown)  # "Chromium 156.0.8078.108 built on Debian ..."
    assert found, shown
    return found.group()


async def test_chromium_launches(browser: Browser, chromium: str) -> None:
    assert browser.is_connected()
    assert browser.version == _version_of(chromium)  # Debian's chromium, not a browser Playwright fetched
    page = await browser.new_page()
    try:
        assert await page.evaluate("1 + 1") == 2
    finally:
        await page.close()


@pytest.mark.parametrize("lang", ["en", "zh-CN"])
async def test_live_server_answers_in_a_phone_page(phone, live_server: str, lang: str) -> None:
    page = await (await phone(lang)).new_page()
    sent: list[Request] = []
    page.on("request", lambda r: sent.append(r))  # noqa: PLW0108 - Playwright cannot wrap a builtin (list.append)
    response = await page.goto("/health/live")
    assert response is not None and response.status == 200, response and await response.text()
    assert response.url == f"{live_server}/health/live"
    assert (await sent[0].all_headers())["accept-language"] == lang
    assert await page.evaluate("navigator.language") == lang
    assert page.viewport_size == {"width": 390, "height": 844}
    assert await page.evaluate("[devicePixelRatio, matchMedia('(pointer: coarse)').matches]") == [2, True]


async def test_swagger_ui_loads_only_from_the_live_server(phone, live_server: str) -> None:
    page = await (await phone("en")).new_page()
    hosts: list[str] = []
    page.on("request", lambda r: hosts.append(urlsplit(r.url).netloc))
    await page.goto("/schema", wait_until="networkidle")
    await page.locator(".swagger-ui .information-container").wait_for()
    assert await page.locator(".opblock").count() > 0  # the operations, rendered from openapi.json
    assert len(hosts) > 3 and set(hosts) == {urlsplit(live_server).netloc}, hosts


def _chinese_fonts() -> set[str]:
    """The font families fontconfig has for Chinese (a family line may list several names)."""
    listed = subprocess.run(["fc-list", ":lang=zh", "family"], capture_output=True, text=True).stdout
    return {name for line in listed.splitlines() for name in line.split(",")}


async def _fonts_used(page: Page, selector: str) -> list[str]:
    cdp = await page.context.new_cdp_session(page)
    await cdp.send("DOM.enable")
    await cdp.send("CSS.enable")
    root = (await cdp.send("DOM.getDocument"))["root"]["nodeId"]
    node = (await cdp.send("DOM.querySelector", {"nodeId": root, "selector": selector}))["nodeId"]
    used = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})
    await cdp.detach()
    return [f["familyName"] for f in used["fonts"]]


async def test_screenshot_shows_chinese_in_a_chinese_font(phone) -> None:
    # Without a CJK font (fonts-noto-cjk) Chinese is drawn as empty boxes in every screenshot.
    page = await (await phone("zh-CN")).new_page()
    await page.set_content(GOOD_PAGE)
    chinese = _chinese_fonts()
    used = await _fonts_used(page, "h1")
    assert used and set(used) <= chinese, f"{used} are not Chinese fonts ({sorted(chinese)})"
    # lang="zh-CN" on <html> picks the Simplified Chinese glyphs (without it: Noto Sans CJK JP's)
    assert not any(f.endswith((" JP", " KR", " TC", " HK")) for f in used), used
    path = await screenshot(page, "smoke-chinese", "zh-CN")
    assert path == SCREENSHOTS / "smoke-chinese-zh-CN.png"
    png = path.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and int.from_bytes(png[16:20], "big") == 780  # 390 px at 2x


async def test_assert_accessible_reports_violations(phone) -> None:
    page = await (await phone("en")).new_page()
    await page.set_content(BAD_PAGE)
    with pytest.raises(AssertionError) as failed:
        await assert_accessible(page)
    report = str(failed.value)
    assert "image-alt (critical)" in report and "#no-alt" in report, report
    assert "button-name (critical)" in report and "#empty" in report, report
    # a page without such faults passes, and so does this one with those rules left out
    await assert_accessible(page, disable=["image-alt", "button-name"])
    await page.set_content(GOOD_PAGE)
    await assert_accessible(page)


async def test_assert_no_sideways_scroll_finds_what_sticks_out(phone) -> None:
    page = await (await phone("zh-CN")).new_page()
    await page.set_content(GOOD_PAGE)
    await assert_no_sideways_scroll(page)  # the wide table scrolls inside its own box
    assert page.viewport_size == {"width": 390, "height": 844}
    await page.set_content(WIDE_PAGE)
    with pytest.raises(AssertionError) as failed:
        await assert_no_sideways_scroll(page)
    assert "h1#wide" in str(failed.value) and "scrollWidth" in str(failed.value), failed.value
    assert page.viewport_size == {"width": 390, "height": 844}  # restored after a failure too

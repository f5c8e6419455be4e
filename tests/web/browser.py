"""Helpers for the browser tests (import as ``from web.browser import ...``; tests/ is on sys.path).

await screenshot(page, "sign-in", "zh-CN")   # test-artifacts/screenshots/sign-in-zh-CN.png
await assert_accessible(page)                # axe-core: no serious or critical violation
await assert_no_sideways_scroll(page)        # nothing sticks out of a 360 px wide phone
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from axe_playwright_python.async_playwright import Axe
from playwright.async_api import Page

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / "test-artifacts" / "screenshots"  # gitignored; CI can keep it as an artifact
# Debian's chromium; tests never use a browser Playwright downloads (scripts/dev.py installs this one).
CHROMIUM = os.environ.get("TIMEBANK_CHROMIUM") or "/usr/bin/chromium"

# The phone the pages are designed for, and the narrowest one they must still fit.
PHONE = {"width": 390, "height": 844}
NARROW = 360
# The languages of the pages, as Playwright locales. A context's locale is also the Accept-Language
# Chromium sends (exactly that, e.g. "zh-CN"; Playwright's locale wins over extra_http_headers).
LANGS = ("zh-CN", "en")
BLOCKING_IMPACTS = ("serious", "critical")

_axe = Axe()  # axe-core's script ships inside axe-playwright-python; nothing is fetched


async def _settle(page: Page) -> None:
    """Two animation frames: layout, media queries and resize observers have caught up."""
    await page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")


async def screenshot(page: Page, name: str, lang: str) -> Path:
    """A full-page PNG at test-artifacts/screenshots/<name>-<lang>.png (overwritten); returns its path."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    path = SCREENSHOTS / f"{name}-{lang}.png"
    await _settle(page)
    await page.screenshot(path=str(path), full_page=True)
    return path


def _target(target: Any) -> str:
    # a CSS selector, or a list of them for elements in iframes or shadow roots
    return " >> ".join(_target(t) for t in target) if isinstance(target, list) else str(target)


async def assert_accessible(page: Page, disable: Iterable[str] = (), include: str | None = None) -> dict:
    """Run axe-core on the page; fail listing every serious or critical violation.

    ``disable``: axe rule ids to leave out (say why next to the call); ``include``: a CSS
    selector to check only part of the page. Returns axe's full result.
    """
    options: dict[str, Any] = {"resultTypes": ["violations"]}
    if disable:
        options["rules"] = {rule: {"enabled": False} for rule in disable}
    results = await _axe.run(page, context=include, options=options)
    blocking = [v for v in results.response["violations"] if v.get("impact") in BLOCKING_IMPACTS]
    if blocking:
        lines = [f"{len(blocking)} serious or critical accessibility violation(s) on {page.url}:"]
        for v in blocking:
            lines.append(f"- {v['id']} ({v['impact']}): {v['help']}  [{v['helpUrl']}]")
            lines.extend(f"    at {_target(node['target'])}" for node in v["nodes"])
        raise AssertionError("\n".join(lines))
    return results.response


_OVERFLOW_JS = """
(width) => {
  const describe = (el) => {
    let s = el.tagName.toLowerCase();
    if (el.id) s += '#' + el.id;
    const cls = (el.getAttribute('class') || '').trim().split(/\\s+/).filter(Boolean).slice(0, 3);
    if (cls.length) s += '.' + cls.join('.');
    const text = (el.innerText || el.getAttribute('aria-label') || el.getAttribute('alt') || '')
      .trim().replace(/\\s+/g, ' ').slice(0, 40);
    return text ? `${s} "${text}"` : s;
  };
  // Inside a container that scrolls or clips sideways (a wide table in overflow-x: auto)
  // an element may pass the edge without the page scrolling; the container is checked itself.
  const clipped = (el) => {
    for (let a = el.parentElement; a && a !== document.body && a !== document.documentElement; a = a.parentElement) {
      if (getComputedStyle(a).overflowX !== 'visible') return true;
    }
    return false;
  };
  const offenders = [];
  for (const el of document.body ? document.body.querySelectorAll('*') : []) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 && r.height === 0) continue;
    const right = r.right + window.scrollX;
    if (right <= width + 0.5) continue;  // sub-pixel rounding
    if (!el.checkVisibility({visibilityProperty: true})) continue;
    if (clipped(el)) continue;
    offenders.push(`${describe(el)}: right edge at ${Math.round(right)}px`);
  }
  return {scrollWidth: document.documentElement.scrollWidth, offenders};
}
"""


async def assert_no_sideways_scroll(page: Page, width: int = NARROW) -> None:
    """At a 360 px wide viewport the page must not scroll sideways, and no visible element
    may reach past the right edge (listed if one does). The viewport is restored after."""
    before = page.viewport_size
    await page.set_viewport_size({"width": width, "height": before["height"] if before else PHONE["height"]})
    try:
        await _settle(page)
        found = await page.evaluate(_OVERFLOW_JS, width)
    finally:
        if before:
            await page.set_viewport_size(before)
    problems = []
    if found["scrollWidth"] > width:
        problems.append(f"the page is {found['scrollWidth']}px wide (document.documentElement.scrollWidth)")
    if found["offenders"]:
        problems.append("elements past the right edge:\n  " + "\n  ".join(found["offenders"][:30]))
        if len(found["offenders"]) > 30:
            problems.append(f"  ... and {len(found['offenders']) - 30} more")
    assert not problems, f"{page.url} scrolls sideways at {width}px wide: " + "\n".join(problems)


async def assert_readable(page: Page) -> None:
    """For older eyes (适老化): body text at least 16 px (20 px in large-text mode), every
    control and menu link at least 44 px tall and wide enough to hit."""
    found = await page.evaluate(
        """() => {
        const large = document.documentElement.classList.contains('large');
        const size = parseFloat(getComputedStyle(document.body).fontSize);
        const small = [];
        const controls = 'button, input:not([type=hidden]), select, textarea, .button, nav a';
        for (const el of document.querySelectorAll(controls)) {
            const r = el.getBoundingClientRect();
            if (r.width === 0 && r.height === 0) continue;  // not shown
            const tick = el.type === 'checkbox' || el.type === 'radio';
            if (r.height < (tick ? 24 : 44) || r.width < 24) {
                const what = (el.innerText || el.name || '').trim().slice(0, 30);
                small.push(`${el.tagName.toLowerCase()} "${what}" ${Math.round(r.width)}x${Math.round(r.height)}`);
            }
        }
        return {large, size, small};
    }"""
    )
    least = 20 if found["large"] else 16
    assert found["size"] >= least, f"body text is {found['size']} px, less than {least} px"
    assert not found["small"], "tap targets under 44 px: " + "; ".join(found["small"])


async def check(page: Page, name: str, lang: str) -> None:
    """What every page of the browser tests must be: accessible (axe), readable, no wider
    than a phone; and a screenshot of it to look at."""
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)
    await screenshot(page, name, lang)

"""Fixtures for the browser tests: the real service in a process of its own, Debian's
chromium driven by Playwright (its driver only; no downloaded browser) and phone-sized
browser contexts in Chinese or English.

    async def test_sign_in(phone):
        ctx = await phone("zh-CN")          # or "en"; base_url is the live server
        page = await ctx.new_page()
        await page.goto("/")
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
import pytest_asyncio
from playwright.async_api import Browser, BrowserContext, Error, Request, async_playwright
from support import free_port

from timebank.core.settings import Settings
from web.browser import CHROMIUM, LANGS, PHONE

READY_SECONDS = 60
STOP_SECONDS = 20

PhoneFactory = Callable[..., Awaitable[BrowserContext]]


@pytest.fixture(scope="session")
def live_server(settings: Settings, database_url: str) -> Iterator[str]:
    """`timebank serve` on a free port, on the suite's database and signing keys; its base URL."""
    port = free_port()
    env = {
        **os.environ,
        "TIMEBANK_DATABASE_URL": database_url,
        "TIMEBANK_DATA_DIR": str(settings.data_dir),
        "TIMEBANK_LOG_LEVEL": "WARNING",
        "TIMEBANK_AUTH_FAILURE_LIMIT": "100000",
        "TIMEBANK_SIGN_IN_ADDRESS_LIMIT": "100000",  # every browser test signs in from 127.0.0.1
        "TIMEBANK_SCHEDULER": "0",  # the jobs are tested elsewhere; the log integrator stays on for receipts
    }
    # stderr to a file, not a pipe nobody reads while the session runs (a full pipe blocks the server)
    with tempfile.TemporaryFile(mode="w+") as log:
        serve = [sys.executable, "-m", "timebank.cli", "serve", "--no-demo"]
        proc = subprocess.Popen(
            [*serve, "--host", "127.0.0.1", "--port", str(port)],
            env=env,
            stdout=log,
            stderr=log,
            text=True,
        )

        def output() -> str:
            log.seek(0)
            return log.read()

        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + READY_SECONDS
            while True:
                if proc.poll() is not None:
                    pytest.fail(
                        f"timebank serve exited with {proc.returncode} before it was ready:\n{output()}"
                    )
                try:
                    if httpx.get(f"{base}/health/ready", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                if time.monotonic() > deadline:
                    pytest.fail(
                        f"timebank serve was not ready on {base} within {READY_SECONDS}s:\n{output()}"
                    )
                time.sleep(0.2)
            yield base
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(STOP_SECONDS)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


@pytest.fixture(scope="session")
def chromium() -> str:
    """The Chromium executable the tests drive: Debian's /usr/bin/chromium or $TIMEBANK_CHROMIUM."""
    if not os.path.exists(CHROMIUM):
        pytest.fail(
            f"no Chromium at {CHROMIUM}: run `python3 scripts/dev.py test` (it installs chromium and "
            "fonts-noto-cjk), or `apt-get install --no-install-recommends chromium fonts-noto-cjk`, "
            "or set TIMEBANK_CHROMIUM to a Chromium executable"
        )
    return CHROMIUM


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser(chromium: str) -> AsyncIterator[Browser]:
    """That Chromium, headless, under Playwright's driver. Fails, never skips, if it cannot start."""
    async with async_playwright() as pw:
        failure = None
        try:
            # --no-sandbox: CI runs as root, where Chromium's sandbox refuses to start. (Playwright
            # adds it by default too, chromium_sandbox=False; said here so it stays so.)
            launched = await pw.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        except Error as e:
            failure = str(e)
        if failure is not None:  # (failed outside the except block: no chained traceback before it)
            pytest.fail(f"Chromium at {chromium} did not launch under Playwright:\n{failure}")
        try:
            yield launched
        finally:
            await launched.close()


@pytest_asyncio.fixture(loop_scope="session")
async def phone(browser: Browser, live_server: str) -> AsyncIterator[PhoneFactory]:
    """``await phone(lang, **options)``: a new browser context like a phone (390×844, touch,
    device scale 2) in ``lang`` ("zh-CN" or "en": navigator.language and the Accept-Language
    header), time zone Asia/Shanghai, base_url the live server, 10 s default timeouts.

    ``options`` go to Browser.new_context (e.g. storage_state). Every context is closed
    after the test, and the test fails if a page requested any host but the live server
    (the pages must not load anything from a CDN or another site).
    """
    contexts: list[BrowserContext] = []
    elsewhere: list[str] = []
    own = urlsplit(live_server).netloc

    def record(request: Request) -> None:
        parts = urlsplit(request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != own:
            elsewhere.append(request.url)

    async def make(lang: str = "zh-CN", **options: Any) -> BrowserContext:
        if lang not in LANGS:
            raise ValueError(f"lang must be one of {sorted(LANGS)}, not {lang!r}")
        defaults: dict[str, Any] = {
            "base_url": live_server,
            "viewport": dict(PHONE),
            "screen": dict(PHONE),
            "is_mobile": True,
            "has_touch": True,
            "device_scale_factor": 2,
            "locale": lang,
            "timezone_id": "Asia/Shanghai",
        }
        ctx = await browser.new_context(**{**defaults, **options})
        ctx.set_default_timeout(10_000)
        ctx.on("request", record)
        contexts.append(ctx)
        return ctx

    yield make
    for ctx in contexts:
        await ctx.close()
    assert not elsewhere, "pages requested hosts other than the live server:\n" + "\n".join(elsewhere)

"""The public page and its in-browser verifier in a real Chromium at a phone's size, without
signing in, in Chinese and English: a genuine receipt verifies step by step (with the
browser's WebCrypto and with the vendored noble-ed25519); a receipt with one changed byte
(amount, account, signature, proof) fails at the right step and says why; a genuine
certificate verifies (typed, and opened from its QR address); the resident's history and
the staff's journal mark each row "verified in your browser". Every page passes axe-core,
fits 360 px and is photographed."""

from __future__ import annotations

import base64
import copy
import json
import re
import uuid
from pathlib import Path

import pytest
from playwright.async_api import expect

from tests.people.pages import add_person
from tests.transparency.community import VOLUNTEER, a_receipt, public_history
from web.browser import assert_accessible, assert_no_sideways_scroll, assert_readable, screenshot

LANGS = ["zh-CN", "en"]
PASSWORD = "a-good-password"
STEPS = ["signature", "leaf", "inclusion", "checkpoint"]


async def check(page, name: str, lang: str) -> None:
    await screenshot(page, name, lang)
    await assert_accessible(page)
    await assert_readable(page)
    await assert_no_sideways_scroll(page)


def flip(text: str, at: int = 10) -> str:
    """One character of a base64 text changed (still base64: a letter for another)."""
    c = text[at]
    return text[:at] + ("B" if c != "B" else "C") + text[at + 1 :]


def tampered(receipt: dict, what: str) -> dict:
    r = copy.deepcopy(receipt)
    if what == "amount":
        r["transaction"]["entries"][0]["amount"] += 1
    elif what == "account":
        a = r["transaction"]["entries"][1]["account_id"]
        r["transaction"]["entries"][1]["account_id"] = a[:-1] + ("0" if a[-1] != "0" else "1")
    elif what == "signature":
        r["set"]["signature"] = flip(r["set"]["signature"])
    elif what == "proof":
        r["log"]["inclusion_proof"][0] = flip(r["log"]["inclusion_proof"][0])
    return r


async def states(page) -> list[str]:
    return [await page.locator(f"#verify-steps [data-step={s}]").get_attribute("data-state") for s in STEPS]


async def run_check(page, receipt: dict) -> None:
    await page.locator("#receipt-text").fill(json.dumps(receipt, ensure_ascii=False, indent=2))
    await page.locator("#verify-check").click()
    await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\b(ok|fail|pending)\b"))


@pytest.mark.parametrize("lang", LANGS)
async def test_the_public_page_without_signing_in(phone, tenant, lang) -> None:
    await public_history(tenant)
    page = await (await phone(lang)).new_page()
    await page.goto(f"/p/{tenant.id}")
    await expect(page.locator("html")).to_have_attribute("lang", lang)
    await expect(page.locator("#latest-checkpoint")).to_be_visible()
    await expect(page.locator("#figures-all_time .figure")).to_have_count(5)
    await expect(page.locator("footer")).to_have_count(0)  # nobody is signed in
    await check(page, "public", lang)
    await page.locator(f"a[href='/p/{tenant.id}/verify']").first.click()
    await expect(page.locator("#receipt-text")).to_be_visible()
    await check(page, "verify", lang)


# An older browser: WebCrypto without Ed25519 (SHA-256 and SHA-512 still there).
NO_WEBCRYPTO_ED25519 = """
(() => {
  const importKey = SubtleCrypto.prototype.importKey;
  SubtleCrypto.prototype.importKey = function (format, data, algorithm, ...rest) {
    const name = typeof algorithm === 'string' ? algorithm : algorithm && algorithm.name;
    if (String(name).toLowerCase() === 'ed25519') {
      return Promise.reject(new DOMException('Unrecognized name.', 'NotSupportedError'));
    }
    return importKey.call(this, format, data, algorithm, ...rest);
  };
})();
"""


@pytest.mark.parametrize("ed25519", ["auto", "noble", "missing"])
@pytest.mark.parametrize("lang", LANGS)
async def test_a_genuine_receipt_verifies_step_by_step(phone, tenant, lang, ed25519) -> None:
    """auto: Chromium's WebCrypto Ed25519; noble: the library asked for (?engine=noble);
    missing: a browser without WebCrypto Ed25519 falls back to the library by itself."""
    history = await public_history(tenant)
    receipt = await a_receipt(tenant, history["credits"][0])
    ctx = await phone(lang)
    if ed25519 == "missing":
        await ctx.add_init_script(NO_WEBCRYPTO_ED25519)
    page = await ctx.new_page()
    await page.goto(f"/p/{tenant.id}/verify" + ("?engine=noble" if ed25519 == "noble" else ""))
    await run_check(page, receipt)
    await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\bok\b"))
    assert await states(page) == ["pass"] * 4
    kid = receipt["set"]["kid"]
    await expect(page.locator("[data-step=signature] .step-detail")).to_contain_text(kid)
    await expect(page.locator("[data-step=leaf] .step-detail")).to_contain_text(receipt["leaf_hash"])
    # which Ed25519 was used, said on the page: Chromium has WebCrypto Ed25519
    used = await page.locator("#verify-engine").inner_text()
    assert ("noble-ed25519 2.3.0" in used) == (ed25519 != "auto"), used
    assert ("WebCrypto" in used) == (ed25519 == "auto"), used
    if ed25519 == "auto":
        await check(page, "verify-ok", lang)
        # the same receipt chosen as a file
        await page.locator("#receipt-text").fill("")
        await page.locator("#receipt-file").set_input_files(
            files=[
                {
                    "name": "receipt.json",
                    "mimeType": "application/json",
                    "buffer": json.dumps(receipt).encode(),
                }
            ]
        )
        await expect(page.locator("#receipt-text")).not_to_have_value("")
        await page.locator("#verify-check").click()
        await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\bok\b"))


@pytest.mark.parametrize("ed25519", ["auto", "noble"])
async def test_one_changed_byte_fails_at_the_right_step(phone, tenant, ed25519) -> None:
    history = await public_history(tenant)
    receipt = await a_receipt(tenant, history["credits"][0])
    assert receipt["log"]["tree_size"] >= 2 and receipt["log"]["inclusion_proof"]
    page = await (await phone("en")).new_page()
    await page.goto(f"/p/{tenant.id}/verify" + ("?engine=noble" if ed25519 == "noble" else ""))
    expected = {
        "amount": (["pass", "fail", "skip", "skip"], "The transaction differs from what was logged"),
        "account": (["pass", "fail", "skip", "skip"], "The transaction differs from what was logged"),
        "signature": (["fail", "skip", "skip", "skip"], "The signature does not match"),
        "proof": (
            ["pass", "pass", "fail", "skip"],
            "The inclusion proof does not lead to the checkpoint's root",
        ),
    }
    for what, (want, words) in expected.items():
        await run_check(page, tampered(receipt, what))
        await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\bfail\b"))
        assert await states(page) == want, what
        failed = page.locator("#verify-steps [data-state=fail]")
        await expect(failed.locator(".step-detail")).to_contain_text(words)
        await expect(failed.locator(".step-state")).to_have_text("Failed")
        for skipped in await page.locator("#verify-steps [data-state=skip] .step-state").all():
            await expect(skipped).to_have_text("Not checked")
        if what == "amount" and ed25519 == "auto":
            await check(page, "verify-tampered", "en")
    # the checkpoint's signature: the body changed under the same signature
    bad = copy.deepcopy(receipt)
    root = bad["log"]["checkpoint"].split("\n")[2]
    forged_root = flip(root)
    bad["log"]["checkpoint"] = bad["log"]["checkpoint"].replace(root, forged_root)
    await run_check(page, bad)
    assert (await states(page))[:2] == ["pass", "pass"] and (await states(page))[2] == "fail"
    # not in the log yet: signed, and said plainly
    waiting = copy.deepcopy(receipt)
    del waiting["log"]
    await run_check(page, waiting)
    await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\bpending\b"))
    await expect(page.locator("#verify-summary")).to_contain_text("not in the public log yet")
    assert await states(page) == ["pass", "pass", "skip", "skip"]
    # not JSON at all
    await page.locator("#receipt-text").fill("{ not a receipt")
    await page.locator("#verify-check").click()
    await expect(page.locator("#verify-summary")).to_contain_text("This is not JSON")


async def test_a_forged_checkpoint_signature_fails_at_the_last_step(phone, tenant) -> None:
    """The root and proof are the log's, but the checkpoint's signature is broken."""
    history = await public_history(tenant)
    receipt = await a_receipt(tenant, history["credits"][0])
    note = receipt["log"]["checkpoint"]
    body, _, signature_line = note.rpartition("\n\n")
    prefix, blob = signature_line.rstrip("\n").rsplit(" ", 1)
    forged = copy.deepcopy(receipt)
    forged["log"]["checkpoint"] = f"{body}\n\n{prefix} {flip(blob, 20)}\n"
    page = await (await phone("zh-CN")).new_page()
    await page.goto(f"/p/{tenant.id}/verify")
    await run_check(page, forged)
    assert await states(page) == ["pass", "pass", "pass", "fail"]
    await check(page, "verify-tampered-checkpoint", "zh-CN")


@pytest.mark.parametrize("lang", LANGS)
async def test_a_genuine_certificate_verifies(phone, tenant, lang) -> None:
    history = await public_history(tenant)
    signed = history["certificate"]
    number = signed["certificate"]["number"]
    page = await (await phone(lang)).new_page()
    # opened from the QR code: the certificate's address sends the browser here
    await page.goto(f"/v1/certificates/{number}")
    await expect(page).to_have_url(re.compile(rf"/p/{tenant.id}/verify\?certificate={number}$"))
    await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\bok\b"))
    await expect(page.locator("[data-step=certificate]")).to_have_attribute("data-state", "pass")
    await expect(page.locator("#certificate-view")).to_contain_text(VOLUNTEER)
    await expect(page.locator("#certificate-view")).to_contain_text(signed["certificate"]["total_hours"])
    await check(page, "verify-certificate", lang)
    # pasted, and changed: 5 hours more
    forged = copy.deepcopy(signed)
    forged["certificate"]["total_hours"] = "8.50"
    await page.locator("#certificate").fill("")
    await run_check(page, forged)
    await expect(page.locator("[data-step=certificate]")).to_have_attribute("data-state", "fail")
    await expect(page.locator("#verify-summary")).to_have_class(re.compile(r"\bfail\b"))
    # an unknown number
    await page.locator("#receipt-text").fill("")
    await page.locator("#certificate").fill("TB-2026-ZZZZZZZZZZ")
    await page.locator("#verify-check").click()
    await expect(page.locator("#verify-summary")).to_contain_text("TB-2026-ZZZZZZZZZZ")


async def test_without_javascript_the_page_says_how_to_check_offline(phone, tenant) -> None:
    await public_history(tenant)
    page = await (await phone("en", java_script_enabled=False)).new_page()
    await page.goto(f"/p/{tenant.id}/verify")
    await expect(page.locator("#needs-js")).to_be_visible()
    await expect(page.locator("#needs-js")).to_contain_text("timebank verify")
    await page.goto(f"/p/{tenant.id}")
    await expect(page.locator("#figures-this_month")).to_be_visible()


@pytest.mark.parametrize("lang", LANGS)
async def test_history_and_journal_rows_are_verified_in_the_browser(phone, tenant, lang) -> None:
    history = await public_history(tenant)
    login = f"139{uuid.uuid4().int % 10**8:08d}"
    await add_person(tenant, "resident", history["volunteer"]["id"], VOLUNTEER, login, PASSWORD)
    staff = f"admin-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "admin", None, "社工 小周", staff, PASSWORD)
    ok = "Verified in your browser" if lang == "en" else None
    for who, path, name in (
        (login, "/me/history", "history-verified"),
        (staff, "/staff/journal", "journal-verified"),
    ):
        page = await (await phone(lang)).new_page()
        await page.goto("/sign-in")
        await page.locator("#login").fill(who)
        await page.locator("#password").fill(PASSWORD)
        await page.locator("form[action='/sign-in'] button").click()
        await page.goto(path)
        marks = page.locator("[data-verify-receipt]")
        count = await marks.count()
        assert count >= 2
        for i in range(count):
            await expect(marks.nth(i)).to_have_attribute("data-state", "ok")
            if ok:
                await expect(marks.nth(i)).to_contain_text(ok)
        await check(page, name, lang)
        if path == "/staff/journal":  # the console on a laptop: the mark under the time
            await page.set_viewport_size({"width": 1280, "height": 800})
            await screenshot(page, "journal-verified-laptop", lang)
        if path == "/me/history" and lang == "en":
            # a receipt changed on its way: that row says it could not be verified, and why
            first = await marks.first.get_attribute("data-verify-receipt")

            async def changed(route) -> None:
                response = await route.fetch()
                body = await response.json()
                await route.fulfill(response=response, json=tampered(body, "amount"))

            await page.route(f"**{first}", changed)
            await page.reload()
            await expect(marks.first).to_have_attribute("data-state", "fail")
            await expect(marks.first).to_contain_text("Could not verify: The transaction differs")
            await expect(marks.nth(1)).to_have_attribute("data-state", "ok")
            await screenshot(page, "history-not-verified", lang)


VECTORS = Path(__file__).parents[1] / "log" / "vectors" / "testdata" / "inclusion"

PORT_JS = """
async ({cases, texts}) => {
  const tv = globalThis.timebankVerify;
  const b = (s) => Uint8Array.from(atob(s || ''), (c) => c.charCodeAt(0));
  const inclusion = [];
  for (const c of cases) {
    let ok;
    try {
      ok = tv.equalBytes(await tv.rootFromInclusion(c.leafIdx, c.treeSize, b(c.leafHash), c.proof), b(c.root));
    } catch (e) {
      if (!(e instanceof tv.VerificationError)) throw e;
      ok = false;
    }
    inclusion.push(ok);
  }
  const jcs = texts.map((t) => {
    try {
      return tv.jcsText(tv.parseJson(t));
    } catch (e) {
      if (!(e instanceof tv.VerificationError)) throw e;
      return null;
    }
  });
  return {inclusion, jcs};
}
"""
JCS_VALUES: list[object] = [
    {"b": 1, "a": [True, False, None], "A": -7, "é": "x", "\u20ac": 2, "😀": 3, "\ue000": 4, "\uff61": 5},
    {"memo": "修水管 🔧", "ctl": '\u0000\u0008\u0009\u000a\u000c\u000d\u001f\u007f\u2028"\\/'},
    [2**53 - 1, -(2**53 - 1), 0, {"z": {"y": []}}],
    "plain",
]
JCS_REFUSED = ["1.0", "1e2", "-0.5", str(2**53), '{"a": 1.5}', "[9007199254740993]"]


async def test_the_browser_port_agrees_with_verify_py(phone, live_server) -> None:
    """verify.js checks what verify.py checks: the RFC 6962 inclusion vectors (happy and
    tampered), and JCS bytes (UTF-16 member order, escapes; floats and big integers refused)."""
    from timebank.log.verify import VerificationError, jcs, verify_inclusion

    cases = [json.loads(f.read_text()) for f in sorted(VECTORS.rglob("*.json"))]
    assert len(cases) > 80
    want_inclusion = []
    for c in cases:
        try:
            verify_inclusion(
                c["leafIdx"],
                c["treeSize"],
                base64.b64decode(c["leafHash"] or ""),
                c["proof"],
                base64.b64decode(c["root"] or ""),
            )
            want_inclusion.append(True)
        except VerificationError:
            want_inclusion.append(False)
    texts = [json.dumps(v, ensure_ascii=False) for v in JCS_VALUES] + JCS_REFUSED
    want_jcs: list[str | None] = []
    for t in texts:
        try:
            want_jcs.append(jcs(json.loads(t)).decode())
        except VerificationError:
            want_jcs.append(None)
    assert want_jcs[len(JCS_VALUES) :] == [None] * len(JCS_REFUSED)
    page = await (await phone("en")).new_page()
    await page.goto("/sign-in")  # any page of the service: the script needs its origin
    await page.add_script_tag(url="/static/verify.js", type="module")
    await page.wait_for_function("() => globalThis.timebankVerify")
    got = await page.evaluate(PORT_JS, {"cases": cases, "texts": texts})
    assert got["inclusion"] == want_inclusion
    assert got["jcs"] == want_jcs

"""The public page (``/p/{community}``) and its verifier page over HTTP, without signing in:
both languages; aggregates only (no names, no member ids); the figures equal the API's
reports for the same periods and plain-SQL sums over the entries; the policy switch; a
certificate's QR address sends a browser to the verifier."""

from __future__ import annotations

import re
import uuid
from datetime import date, datetime, timedelta
from html.parser import HTMLParser
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text

from tests.people.pages import add_person, browser, csrf, sign_in
from tests.transparency.community import MERCHANT, ORGANISATION, VOLUNTEER, public_history, settled
from timebank.core.policy import Policy
from timebank.volunteer import policy_pages
from timebank.web.i18n import Formats

ZONE = ZoneInfo("Asia/Shanghai")  # the test communities' zone


class Figures(HTMLParser):
    """The page's figures: {id of the figure: its value text}."""

    def __init__(self) -> None:
        super().__init__()
        self.values: dict[str, str] = {}
        self._id: str | None = None
        self._value: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "div" and a.get("class") == "figure":
            self._id = a.get("id")
        elif tag == "p" and a.get("class") == "value" and self._id:
            self._value = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "p" and self._value is not None and self._id:
            self.values[self._id] = "".join(self._value).strip()
            self._value, self._id = None, None

    def handle_data(self, data: str) -> None:
        if self._value is not None:
            self._value.append(data)


def figures_of(html: str) -> dict[str, str]:
    parser = Figures()
    parser.feed(html)
    return parser.values


# Plain SQL over the entries, written here independently of timebank.reports: posted
# entries of a period (by the entry's time), on members' and merchants' accounts and the
# community's expiry account.
SUMS_SQL = text(
    """
SELECT
  coalesce(sum(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END)
    FILTER (WHERE e.asset = 'HOUR' AND p.kind = 'member'
            AND (t.kind = 'service_credit' OR (t.kind = 'reversal' AND o.kind = 'service_credit'))), 0)
    AS net_minutes,
  count(DISTINCT p.id) FILTER (WHERE e.asset = 'HOUR' AND p.kind = 'member' AND t.kind = 'service_credit'
                               AND e.direction = 'credit') AS volunteers,
  coalesce(sum(CASE WHEN e.direction = 'credit' THEN e.amount ELSE -e.amount END)
    FILTER (WHERE e.asset = 'POINT' AND p.kind = 'member'
            AND (t.kind = 'service_credit' OR (t.kind = 'reversal' AND o.kind = 'service_credit'))), 0)
    AS points_issued,
  coalesce(sum(e.amount) FILTER (WHERE e.asset = 'POINT' AND p.kind = 'merchant' AND t.kind = 'redemption'
                                 AND e.direction = 'credit'), 0) AS points_redeemed,
  coalesce(sum(e.amount) FILTER (WHERE e.asset = 'POINT' AND a.system_role = 'expired' AND t.kind = 'expiry'
                                 AND e.direction = 'credit'), 0) AS points_expired
FROM entries e
JOIN transactions t ON t.id = e.transaction_id
LEFT JOIN transactions o ON o.id = t.reverses_id
JOIN accounts a ON a.id = e.account_id
LEFT JOIN parties p ON p.id = a.party_id
WHERE e.community_id = :c AND e.layer = 'posted' AND e.created_at >= :s AND e.created_at < :e
"""
)
MERCHANTS_SQL = text("SELECT count(*) FROM parties WHERE community_id = :c AND kind = 'merchant'")
FOUNDED_SQL = text("SELECT created_at FROM communities WHERE id = :c")


async def sql_sums(engine: Any, community_id: str, first: date, end: date) -> dict[str, int]:
    start = datetime.combine(first, datetime.min.time(), ZONE)
    stop = datetime.combine(end, datetime.min.time(), ZONE)
    async with engine.connect() as conn:
        row = (await conn.execute(SUMS_SQL, {"c": uuid.UUID(community_id), "s": start, "e": stop})).one()
    return dict(row._mapping)


async def periods(engine: Any, community_id: str) -> dict[str, tuple[date, date]]:
    async with engine.connect() as conn:
        founded = (await conn.execute(FOUNDED_SQL, {"c": uuid.UUID(community_id)})).scalar_one()
    today = datetime.now(ZONE).date()
    tomorrow = today + timedelta(days=1)
    return {
        "this_month": (today.replace(day=1), tomorrow),
        "all_time": (min(founded.astimezone(ZONE).date(), today), tomorrow),
    }


async def report(tenant: Any, name: str, first: date, end: date) -> dict[str, Any]:
    r = await tenant.client.get(
        f"/v1/reports/{name}",
        params={"from": first.isoformat(), "to": end.isoformat()},
        headers=tenant.auth(),
    )
    assert r.status_code == 200, r.text
    return r.json()


def no_private_data(html: str, history: dict[str, Any]) -> None:
    for secret in (
        VOLUNTEER,
        "李建国",
        ORGANISATION,
        MERCHANT,
        history["volunteer"]["id"],
        history["other"]["id"],
        history["merchant"]["id"],
        *history["volunteer"]["accounts"].values(),
    ):
        assert secret not in html, f"{secret} is on the public page"


async def test_the_public_page_without_signing_in_in_both_languages(tenant, engine) -> None:
    history = await public_history(tenant)
    zh = browser(tenant.client, "zh-CN")
    page = await zh.get(f"/p/{tenant.id}")
    assert page.status_code == 200, page.text[:500]
    assert '<html lang="zh-CN"' in page.text
    assert f'href="/p/{tenant.id}/verify"' in page.text
    assert "Content-Security-Policy" in page.headers and "<script>" not in page.text
    no_private_data(page.text, history)
    en = browser(tenant.client, "en")
    page = await en.get(f"/p/{tenant.id}")
    assert page.status_code == 200 and '<html lang="en"' in page.text
    assert "Latest signed checkpoint" in page.text and "The bank's published keys" in page.text
    no_private_data(page.text, history)
    # the latest checkpoint is the log's
    note = (await tenant.client.get("/v1/log/checkpoint", params={"community_id": tenant.id})).text
    _origin, size, root = note.split("\n")[:3]
    assert root in page.text and f"<dd>{size}</dd>" in page.text
    keys = (await tenant.client.get("/v1/log/keys")).json()["keys"]
    assert all(k["kid"] in page.text for k in keys)
    # the verifier page: no sign-in, the form and its words, the script as a file
    verify = await en.get(f"/p/{tenant.id}/verify")
    assert verify.status_code == 200
    assert '<label for="receipt-text">' in verify.text and 'id="verify-words"' in verify.text
    assert re.search(r'<script type="module" src="/static/verify.js\?v=\w+"></script>', verify.text)
    assert "timebank verify receipt.json" in verify.text  # what to do without JavaScript
    no_private_data(verify.text, history)
    script = await en.get("/static/verify.js")
    assert script.status_code == 200 and "javascript" in script.headers["content-type"]
    noble = await en.get("/static/vendor/noble-ed25519/index.js")
    assert noble.status_code == 200 and "verifyAsync" in noble.text


async def test_the_figures_equal_the_reports_and_the_sums_over_the_entries(tenant, engine) -> None:
    await public_history(tenant)
    for lang in ("zh_CN", "en"):
        phone = browser(tenant.client, lang.replace("_", "-"))
        html = (await phone.get(f"/p/{tenant.id}")).text
        shown = figures_of(html)
        f = Formats(lang, "Asia/Shanghai")
        for period, (first, end) in (await periods(engine, tenant.id)).items():
            service = await report(tenant, "service", first, end)
            points = await report(tenant, "points", first, end)
            sums = await sql_sums(engine, tenant.id, first, end)
            api = {
                "net_minutes": service["totals"]["net_minutes"],
                "volunteers": service["totals"]["active_volunteers"],
                "points_issued": points["issued"] - points["service_reversed"],
                "points_redeemed": points["redeemed"],
                "points_expired": points["expired"],
            }
            assert api == sums, (period, api, sums)
            assert sums["net_minutes"] == 390 and sums["volunteers"] == 2 and sums["points_redeemed"] == 10
            assert shown[f"{period}-hours"] == f.hours(sums["net_minutes"])
            assert shown[f"{period}-volunteers"] == f.number(sums["volunteers"])
            assert shown[f"{period}-issued"] == f.points(sums["points_issued"])
            assert shown[f"{period}-redeemed"] == f.points(sums["points_redeemed"])
            assert shown[f"{period}-expired"] == f.points(sums["points_expired"])
        async with engine.connect() as conn:
            merchants = (await conn.execute(MERCHANTS_SQL, {"c": uuid.UUID(tenant.id)})).scalar_one()
        assert shown["merchants"] == f.number(merchants) == f.number(1)


async def test_the_checkpoint_history_pages_newest_first(tenant) -> None:
    member = await tenant.member("居民")
    for _ in range(12):  # a checkpoint after each
        await tenant.fund(member["accounts"]["HOUR"], "HOUR", 30)
        await settled(tenant)
    phone = browser(tenant.client, "en")
    first = await phone.get(f"/p/{tenant.id}")
    sizes = [int(s) for s in re.findall(r"<strong>(\d+) entries</strong>", first.text)]
    assert sizes == sorted(sizes, reverse=True) and len(sizes) == 10
    more = re.search(r'href="(/p/[^"]+\?cursor=\d+)#history-title" rel="next"', first.text)
    assert more, "no link to older checkpoints"
    second = await phone.get(more.group(1))
    older = [int(s) for s in re.findall(r"<strong>(\d+) entries</strong>", second.text)]
    assert older and max(older) < min(sizes)
    assert "Back to the newest" in second.text


async def admin_phone(tenant: Any) -> Any:
    """A signed-in admin's browser (English)."""
    login = f"admin-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "admin", None, "社工 小周", login, "a-good-password")
    phone = browser(tenant.client, "en")
    assert (await sign_in(phone, login, "a-good-password")).status_code == 303
    return phone


async def test_an_unknown_community_and_a_switched_off_page_answer_404(tenant) -> None:
    phone = browser(tenant.client, "en")
    unknown = await phone.get(f"/p/{uuid.uuid4()}")
    assert unknown.status_code == 404 and "There is no community at this address" in unknown.text
    assert (await phone.get("/p/not-a-community")).status_code == 404
    assert (await phone.get(f"/p/{uuid.uuid4()}/verify")).status_code == 404
    # the policy switch, through the API: off
    policy = (await tenant.client.get("/v1/community/policy", headers=tenant.auth())).json()["policy"]
    assert policy["public_page"] is True  # the default
    r = await tenant.client.put(
        "/v1/community/policy", json={**policy, "public_page": False}, headers=tenant.auth()
    )
    assert r.status_code == 200, r.text
    for path in (f"/p/{tenant.id}", f"/p/{tenant.id}/verify"):
        off = await phone.get(path)
        assert off.status_code == 404 and "This community has not published its public page." in off.text
    # and on again through the policy editor's checkbox
    admin = await admin_phone(tenant)
    token = await csrf(admin, "/staff/policy")
    editor = (await admin.get("/staff/policy")).text
    assert 'type="checkbox" id="public_page" name="public_page" value="1"' in editor
    assert '<label class="check" for="public_page">' in editor
    form = {**policy_pages.form_of(Policy()), "version": "1", "_csrf_token": token}
    saved = await admin.post("/staff/policy", data={**form, "public_page": "1"})
    assert saved.status_code == 303, saved.text[:800]
    assert (await phone.get(f"/p/{tenant.id}")).status_code == 200
    # unticked: off again
    token = await csrf(admin, "/staff/policy")
    form = {k: v for k, v in form.items() if k != "public_page"}
    saved = await admin.post("/staff/policy", data={**form, "version": "2", "_csrf_token": token})
    assert saved.status_code == 303, saved.text[:800]
    assert (await phone.get(f"/p/{tenant.id}")).status_code == 404


async def test_a_certificates_address_sends_a_browser_to_the_verifier(tenant) -> None:
    history = await public_history(tenant)
    number = history["certificate"]["certificate"]["number"]
    url = history["certificate"]["certificate"]["verify_url"]
    assert url.endswith(f"/v1/certificates/{number}")
    html = "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,*/*;q=0.8"
    opened = await tenant.client.get(f"/v1/certificates/{number}", headers={"Accept": html})
    assert opened.status_code == 303
    assert opened.headers["location"] == f"/p/{tenant.id}/verify?certificate={number}"
    page = await browser(tenant.client, "en").get(opened.headers["location"])
    assert page.status_code == 200 and f'value="{number}"' in page.text
    # a community without its public page: the JSON, for browsers too
    policy = (await tenant.client.get("/v1/community/policy", headers=tenant.auth())).json()["policy"]
    off = await tenant.client.put(
        "/v1/community/policy", json={**policy, "public_page": False}, headers=tenant.auth()
    )
    assert off.status_code == 200, off.text
    opened = await tenant.client.get(f"/v1/certificates/{number}", headers={"Accept": html})
    assert opened.status_code == 200 and opened.json() == history["certificate"]
    # JSON clients are unchanged
    for accept in ("application/json", "*/*", None):
        r = await tenant.client.get(
            f"/v1/certificates/{number}", headers={"Accept": accept} if accept else {}
        )
        assert r.status_code == 200 and r.json() == history["certificate"], accept


async def test_a_person_reads_a_receipt_with_their_session(tenant) -> None:
    """What the history's "verified in your browser" mark fetches: the receipt, by the session."""
    history = await public_history(tenant)
    login = f"139{uuid.uuid4().int % 10**8:08d}"
    await add_person(tenant, "resident", history["volunteer"]["id"], VOLUNTEER, login, "a-good-password")
    phone = browser(tenant.client, "zh-CN")
    assert (await sign_in(phone, login, "a-good-password")).status_code == 303
    page = await phone.get("/me/history")
    assert (
        page.status_code == 200 and "data-verify-receipt=" in page.text and 'id="verify-words"' in page.text
    )
    tx = history["credits"][0]
    r = await phone.get(f"/receipts/{tx}", headers={"Accept": "application/json"})
    assert r.status_code == 200 and r.json()["transaction"]["id"] == tx
    assert f'data-verify-receipt="/receipts/{tx}"' in (await phone.get("/me/history?asset=HOUR")).text

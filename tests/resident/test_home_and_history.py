"""The resident's home, history (with receipts that verify offline), service records
and certificate, over HTTP with a signed-in phone."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta

from tests.people.pages import add_person, browser, sign_in
from tests.resident.helpers import api, approved_service, resident, text_of, visible_text
from timebank.log.verify import load_jwks, verify_receipt
from timebank.notifications.service import remind_expiring
from timebank.web.i18n import Formats

EN = Formats("en", "Asia/Shanghai")


async def shop_reward(tenant, **fields) -> dict:
    merchant = await tenant.party("merchants", "爱心超市")
    key = await tenant.key("merchant", merchant["id"])
    r = await tenant.client.post(
        "/v1/rewards", json={"title": "十斤大米", "price_points": 10, **fields}, headers=tenant.auth(key)
    )
    assert r.status_code == 201, r.text
    return r.json()


async def test_home_shows_the_balances_the_api_gives(tenant, engine) -> None:
    async with resident(tenant, minutes=150, points=40) as me:
        await approved_service(tenant, me.id, [2])
        reward = await shop_reward(tenant)
        held = await tenant.client.post(
            "/v1/redemptions",
            json={"reward_id": reward["id"], "member_id": me.id},
            headers={**tenant.auth(me.key), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert held.status_code == 201, held.text
        await remind_expiring(engine, uuid.UUID(tenant.id), datetime.now(UTC) + timedelta(days=350))

        balances = await api(tenant, f"/v1/members/{me.id}/balances", me.key)
        page = await me.page("/me")
        assert "<h1>" in page and "刘阿姨" in page
        hours = text_of(page, "hours-balance")
        points = text_of(page, "points-balance")
        assert EN.hours(balances["HOUR"]["posted"]) in hours and balances["HOUR"]["posted"] == 150 + 120
        assert EN.points(balances["POINT"]["available"]) in points
        assert balances["POINT"]["pending"] == 10 and "10 points held for my open vouchers" in points
        # the points that expire within 30 days, from the member's lots (none yet: they last a year)
        lots = (await api(tenant, f"/v1/members/{me.id}/points", me.key))["lots"]
        soon = datetime.now(UTC) + timedelta(days=30)
        expiring = sum(lot["remaining"] for lot in lots if datetime.fromisoformat(lot["expires_at"]) <= soon)
        assert expiring == 0 and "No points expire in the next 30 days." in page
        # star level and its progress, as the member view says
        member = await api(tenant, f"/v1/members/{me.id}", me.key)
        assert member["star_level"] == 0 and "0 stars of 5" in visible_text(page)
        assert (
            f'<progress id="star-progress" class="meter" max="{120 + member["minutes_to_next_level"]}" value="120"'
            in page
        )
        # the reminders the expiry job made (as if a year had nearly passed)
        assert re.search(r"\b40 points expire on \w+ \d+, \d{4}\.", visible_text(page)), visible_text(page)


async def test_history_is_paged_newest_first_and_links_receipts_that_verify(tenant) -> None:
    async with resident(tenant) as me:
        for n in range(30):
            r = await tenant.transfer(
                {
                    "from_account": tenant.accounts["issuance"]["POINT"],
                    "to_account": me.member["accounts"]["POINT"],
                    "asset": "POINT",
                    "amount": n + 1,
                    "kind": "adjustment",
                    "memo": f"第{n}笔",
                }
            )
            assert r.status_code == 201, r.text
        first = await me.page("/me/history?asset=POINT")
        assert first.count('class="card entry"') == 25
        memos = re.findall(r"<p>第(\d+)笔</p>", first)
        assert memos == [str(n) for n in range(29, 4, -1)], memos  # newest first
        assert "In +30 points" in visible_text(first)
        older = re.search(r'href="(/me/history\?asset=POINT&amp;cursor=\d+)" rel="next"', first)
        assert older, "no link to older entries"
        second = await me.page(older.group(1).replace("&amp;", "&"))
        assert re.findall(r"<p>第(\d+)笔</p>", second) == ["4", "3", "2", "1", "0"]
        assert 'rel="next"' not in second and "timebank verify" in second
        hours = await me.page("/me/history?asset=HOUR")
        assert "Nothing yet." in hours

        # each entry's receipt downloads as the API's signed receipt, and verifies offline
        tx_id = re.search(r'href="/receipts/([0-9a-f-]{36})"', first).group(1)
        download = await me.phone.get(f"/receipts/{tx_id}")
        assert download.status_code == 200, download.text
        assert download.headers["content-type"].startswith("application/json")
        assert download.headers["content-disposition"] == f'attachment; filename="receipt-{tx_id}.json"'
        receipt = download.json()
        assert receipt == await api(tenant, f"/v1/transactions/{tx_id}/receipt", me.key)
        jwks = load_jwks(await api(tenant, "/v1/log/keys"))
        verify_receipt(receipt, jwks)
        await tenant.integrate()
        logged = (await me.phone.get(f"/receipts/{tx_id}")).json()
        assert "log" in logged and verify_receipt(logged, jwks).transaction_id == tx_id

        # a neighbour cannot have my receipt
        async with resident(tenant, "王大爷") as other:
            refused = await other.phone.get(f"/receipts/{tx_id}")
            assert refused.status_code == 404 and "text/html" in refused.headers["content-type"]


async def test_records_with_their_status_in_words_and_the_certificate_pdf(tenant) -> None:
    async with resident(tenant) as me:
        day = datetime(2026, 3, 2, 1, tzinfo=UTC)
        await approved_service(tenant, me.id, [2, 3], day=day)
        org = await tenant.party("organisations", "法律咨询站")
        recorder = await tenant.key("recorder", org["id"])
        waiting = await tenant.client.post(
            "/v1/service-records",
            headers=tenant.auth(recorder),
            json={
                "member_id": me.id,
                "activity": "法律咨询",
                "category": "volunteer_service",
                "place": "活动室",
                "started_at": (day + timedelta(days=5)).isoformat(),
                "ended_at": (day + timedelta(days=5, hours=1.5)).isoformat(),
            },
        )
        assert waiting.status_code == 201, waiting.text
        page = await me.page("/me/records")
        text = visible_text(page)
        assert "<h1>My service</h1>" in page
        assert text.count("Approved") == 2 and text.count("Waiting for approval") == 1
        assert "法律咨询" in text and "1.5 h" in text and "Mar 7, 2026" in text
        assert 'action="/me/certificate"' in page and 'name="from"' in page

        pdf = await me.phone.get("/me/certificate?from=2026-03-01&to=2026-03-31")
        assert pdf.status_code == 200, pdf.text[:500]
        assert pdf.headers["content-type"] == "application/pdf"
        assert pdf.content.startswith(b"%PDF")
        wrong = await me.phone.get("/me/certificate?from=2026-03-31&to=2026-03-01")
        assert wrong.status_code == 400 and 'role="alert"' in wrong.text
        assert "Choose a first and a last day" in wrong.text
        garbled = await me.phone.get("/me/certificate?from=yesterday&to=")
        assert garbled.status_code == 400 and 'role="alert"' in garbled.text


async def test_only_residents_see_these_pages(tenant) -> None:
    merchant = await tenant.party("merchants", "理发店")
    login = f"shop{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "merchant", merchant["id"], "理发店", login, "a-good-password")
    async with browser(tenant.client, "en") as phone:
        signed_out = await phone.get("/me")
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/sign-in")
        r = await sign_in(phone, login, "a-good-password")
        assert r.status_code == 303
        for path in ("/me", "/me/history", "/me/records", "/me/rewards", "/me/give", "/me/vouchers"):
            refused = await phone.get(path)
            assert refused.status_code == 403, (path, refused.status_code)
            assert "text/html" in refused.headers["content-type"]

"""The merchant's pages over HTTP: the counter (check a code, confirm once), the shop's
rewards (publish, change, stop offering) and its statement (totals, chart, CSV), each
checked against the API's own answers."""

from __future__ import annotations

import asyncio
import csv
import html
import io
import re
import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.merchant.shop import PASSWORD, SHANGHAI, Shop, new_login, spaced, today
from tests.people.pages import add_person, browser, csrf, post_form, sign_in
from timebank.web.privacy import mask_name

HIDDEN = re.compile(r'<input type="hidden" name="(\w+)" value="([^"]*)"\s*/?>')


def hidden_fields(page: str, action: str) -> dict[str, str]:
    """The hidden fields of the form posting to ``action`` on ``page``."""
    start = page.index(f'action="{action}"')
    form = page[start : page.index("</form>", start)]
    return {name: html.unescape(value) for name, value in HIDDEN.findall(form)}


def confirm_action(page: str) -> str:
    found = re.search(r'action="(/counter/vouchers/[0-9a-f-]+/confirm)"', page)
    assert found, page[:2000]
    return found.group(1)


def alert(page: str) -> str:
    found = re.search(r'<p class="alert" role="alert"[^>]*>([^<]+)</p>', page)
    assert found, page[:3000]
    return html.unescape(found.group(1))


@pytest.fixture
async def shop(tenant: Any) -> Shop:
    return await Shop(tenant).setup()


async def look_up(phone: httpx.AsyncClient, code: str) -> httpx.Response:
    return await phone.get("/counter/voucher", params={"code": code})


async def confirm_from(phone: httpx.AsyncClient, page: httpx.Response) -> httpx.Response:
    action = confirm_action(page.text)
    return await phone.post(action, data=hidden_fields(page.text, action))


# --- privacy ------------------------------------------------------------------------------------


def test_names_are_masked_to_their_first_and_last_character() -> None:
    assert mask_name("李秀英") == "李*英"
    assert mask_name("欧阳娜娜") == "欧*娜"
    assert mask_name("张伟") == "张*"
    assert mask_name("王") == "*"
    assert mask_name(" Alice ") == "A*e"
    assert mask_name("") == "*" and mask_name(None) == "*"


# --- the counter --------------------------------------------------------------------------------


async def test_counter_checks_a_typed_code_and_confirms_it(shop) -> None:
    reward = await shop.reward(title="十斤大米", price_points=30)
    member, key = await shop.resident("李秀英", points=100)
    voucher = await shop.voucher(reward, member, key)
    before = await shop.takings()
    async with shop.assistant() as phone:
        counter = await phone.get("/counter")
        assert counter.status_code == 200
        page = counter.text
        assert 'class="counter-input"' in page and 'autocomplete="off"' in page
        assert 'autocapitalize="characters"' in page and 'inputmode="text"' in page
        assert '<label for="code">' in page and 'id="scan-form"' in page and 'name="qr"' in page
        assert 'data-scan="scan-form" hidden' in page and "data-scan-video hidden playsinline muted" in page
        assert "data-scan-failed hidden" in page and "style=" not in page

        found = await look_up(phone, spaced(voucher["code"]))
        assert found.status_code == 200, found.text
        assert "李*英" in found.text and "李秀英" not in found.text
        assert "十斤大米" in found.text and "30 points" in found.text
        fields = hidden_fields(found.text, confirm_action(found.text))
        assert fields["code"] == voucher["code"] and uuid.UUID(fields["idem"])
        assert (await shop.points(member))["available"] == 70, "looking up moves nothing"

        done = await confirm_from(phone, found)
        assert done.status_code == 303, done.text
        assert done.headers["location"] == f"/counter/done/{voucher['id']}"
        success = await phone.get(done.headers["location"])
        assert success.status_code == 200
        assert "Redeemed" in success.text and "十斤大米" in success.text and "+30 points" in success.text
        redemption = (await shop.c.get(f"/v1/redemptions/{voucher['id']}", headers=shop.t.auth())).json()
        assert redemption["status"] == "confirmed"
        assert f'href="/receipts/{redemption["resolution_id"]}"' in success.text
        assert 'href="/counter"' in success.text and "Next customer" in success.text

    points = await shop.points(member)
    assert points["available"] == points["balance"] == 70
    assert (await shop.takings())["posted"] - before["posted"] == 30
    statement = (await shop.statement(today(), today())).json()
    assert [i["redemption_id"] for i in statement["items"]] == [voucher["id"]]
    assert statement["totals"] == {"redemptions": 1, "points": 30}


async def test_a_double_confirm_moves_the_points_once(shop) -> None:
    reward = await shop.reward(price_points=25)
    member, key = await shop.resident(points=100)
    voucher = await shop.voucher(reward, member, key)
    async with shop.assistant() as phone:
        found = await look_up(phone, voucher["code"])
        first = await confirm_from(phone, found)
        again = await confirm_from(phone, found)  # the same form sent twice (a double tap, a resend)
        assert first.status_code == again.status_code == 303
        assert first.headers["location"] == again.headers["location"] == f"/counter/done/{voucher['id']}"
        after = (await shop.points(member), await shop.takings())
        # a second look-up form for the same voucher (another idem): already used, nothing moves
        second_form = await phone.post(
            confirm_action(found.text),
            data={**hidden_fields(found.text, confirm_action(found.text)), "idem": str(uuid.uuid4())},
        )
        assert second_form.status_code == 409
        assert "already used" in alert(second_form.text)
        assert (await shop.points(member), await shop.takings()) == after
    assert after[0]["available"] == after[0]["balance"] == 75
    statement = (await shop.statement(today(), today())).json()
    assert statement["totals"] == {"redemptions": 1, "points": 25}


async def test_wrong_reused_and_other_shops_codes_change_nothing(shop, tenant, other_tenant) -> None:
    reward = await shop.reward(price_points=10)
    member, key = await shop.resident(points=100)
    used = await shop.voucher(reward, member, key)
    open_one = await shop.voucher(reward, member, key)
    other_shop = await Shop(tenant).setup("理发店")
    theirs = await shop.voucher(await other_shop.reward(title="理发", price_points=5), member, key)
    elsewhere = await Shop(other_tenant).setup("外社区超市")
    stranger, stranger_key = await elsewhere.resident("外人")
    far = await elsewhere.voucher(await elsewhere.reward(), stranger, stranger_key)
    async with shop.assistant() as phone:
        done = await confirm_from(phone, await look_up(phone, used["code"]))
        assert done.status_code == 303
        before = (await shop.points(member), await shop.takings(), await other_shop.takings())

        wrong = await look_up(phone, "ZZZZ-ZZZZ")
        assert wrong.status_code == 404 and "No open voucher of your shop has this code" in alert(wrong.text)
        assert 'value="ZZZZ-ZZZZ"' in wrong.text, "what was typed stays, to correct it"
        reused = await look_up(phone, used["code"])
        assert reused.status_code == 404 and "already used" in alert(reused.text)
        other = await look_up(phone, theirs["code"])
        assert other.status_code == 404 and "No open voucher of your shop" in alert(other.text)
        far_away = await look_up(phone, far["code"])
        assert far_away.status_code == 404 and "No open voucher of your shop" in alert(far_away.text)
        empty = await look_up(phone, "   ")
        assert empty.status_code == 400 and "Type the code" in alert(empty.text)
        bad_qr = await post_form(phone, "/counter", "/counter/voucher", qr="not.a-voucher-token")
        assert bad_qr.status_code == 404 and "QR code" in alert(bad_qr.text)

        # posting a confirm with a wrong code, or for another shop's voucher, is refused too
        found = await look_up(phone, open_one["code"])
        fields = hidden_fields(found.text, confirm_action(found.text))
        mistyped = await phone.post(confirm_action(found.text), data={**fields, "code": "ZZZZZZZZ"})
        assert mistyped.status_code == 422 and "not right" in alert(mistyped.text)
        fresh = {**fields, "idem": str(uuid.uuid4())}
        foreign = await phone.post(
            f"/counter/vouchers/{theirs['id']}/confirm", data={**fresh, "code": theirs["code"]}
        )
        assert foreign.status_code == 403
        fresh = {**fields, "idem": str(uuid.uuid4())}
        unknown = await phone.post(
            f"/counter/vouchers/{far['id']}/confirm", data={**fresh, "code": far["code"]}
        )
        assert unknown.status_code == 404 and "No open voucher" in alert(unknown.text)
    assert (await shop.points(member), await shop.takings(), await other_shop.takings()) == before
    far_points = await elsewhere.points(stranger)
    assert far_points["balance"] - far_points["available"] == 10, "still held"


async def test_counter_confirms_a_scanned_qr(shop) -> None:
    reward = await shop.reward(price_points=12)
    member, key = await shop.resident("欧阳娜娜", points=50)
    voucher = await shop.voucher(reward, member, key)
    async with shop.assistant() as phone:
        found = await post_form(phone, "/counter", "/counter/voucher", qr=voucher["qr"])
        assert found.status_code == 200, found.text
        assert "欧*娜" in found.text
        fields = hidden_fields(found.text, confirm_action(found.text))
        assert fields["qr"] == voucher["qr"] and "code" not in fields
        done = await confirm_from(phone, found)
        assert done.status_code == 303
        # a scanner that types the QR into the code box works as well (and now: already used)
        typed = await look_up(phone, voucher["qr"])
        assert typed.status_code == 404 and "QR code" in alert(typed.text)
    assert (await shop.points(member))["available"] == 38


async def test_an_expired_voucher_is_refused_at_the_counter(shop, tenant) -> None:
    current = (await shop.c.get("/v1/community/policy", headers=tenant.auth())).json()["policy"]
    r = await shop.c.put(
        "/v1/community/policy", json={**current, "voucher_seconds": 1}, headers=tenant.auth()
    )
    assert r.status_code == 200, r.text
    reward = await shop.reward(price_points=10)
    member, key = await shop.resident(points=20)
    voucher = await shop.voucher(reward, member, key)
    await asyncio.sleep(1.2)  # its time ran out (the expiry job has not run yet)
    async with shop.assistant() as phone:
        r = await look_up(phone, voucher["code"])
        assert r.status_code == 409 and "expired" in alert(r.text)
    points = await shop.points(member)
    assert points["balance"] - points["available"] == 10, "still held, until the expiry job"


async def test_only_merchants_use_the_merchant_pages(shop, tenant) -> None:
    member = await tenant.member("刘阿姨")
    login = new_login()
    await add_person(tenant, "resident", member["id"], "刘阿姨", login, PASSWORD)
    async with browser(tenant.client, "en") as phone:
        assert (await sign_in(phone, login, PASSWORD)).status_code == 303
        for path in (
            "/counter",
            "/counter/voucher?code=ABCDEFGH",
            "/merchant/rewards",
            "/merchant/statement",
        ):
            r = await phone.get(path)
            assert r.status_code == 403, (path, r.status_code)
            assert "text/html" in r.headers["content-type"]
    async with browser(tenant.client, "en") as signed_out:
        r = await signed_out.get("/counter")
        assert r.status_code == 303 and r.headers["location"].startswith("/sign-in")


async def test_counter_speaks_chinese(shop) -> None:
    async with shop.assistant("zh-CN") as phone:
        page = await phone.get("/counter")
        assert page.status_code == 200 and 'lang="zh-CN"' in page.text


# --- rewards ------------------------------------------------------------------------------------


async def test_rewards_are_published_changed_and_stopped(shop) -> None:
    async with shop.assistant() as phone:
        empty = await phone.get("/merchant/rewards")
        assert empty.status_code == 200 and "<h1>Our rewards</h1>" in empty.text
        created = await post_form(
            phone,
            "/merchant/rewards",
            "/merchant/rewards",
            title="  洗剪吹 ",
            description="周一至周五",
            price_points="1,200",
            stock="5",
            limit_count="1",
            limit_period="month",
            min_star="1",
            star_3="1000",
            valid_from="2025-06-01",
            valid_until="2099-06-30",
        )
        assert created.status_code == 303, created.text
        assert created.headers["location"] == "/merchant/rewards?done=created"
        listed = await phone.get(created.headers["location"])
        assert "The reward is published" in listed.text and "洗剪吹" in listed.text
        (reward,) = (
            await shop.c.get(f"/v1/rewards?merchant_id={shop.merchant['id']}", headers=shop.t.auth(shop.key))
        ).json()["items"]
        assert reward["title"] == "洗剪吹" and reward["description"] == "周一至周五"
        assert reward["price_points"] == 1200 and reward["stock"] == 5 and reward["min_star"] == 1
        assert reward["limit"] == {"count": 1, "period": "month"} and reward["star_prices"] == {"3": 1000}
        assert datetime.fromisoformat(reward["valid_from"]) == datetime(2025, 6, 1, tzinfo=SHANGHAI)
        assert datetime.fromisoformat(reward["valid_until"]) == datetime(2099, 7, 1, tzinfo=SHANGHAI)

        edit_path = f"/merchant/rewards/{reward['id']}"
        edit = await phone.get(edit_path)
        assert edit.status_code == 200 and 'value="2099-06-30"' in edit.text and 'value="1200"' in edit.text
        form = {
            "title": "洗剪吹",
            "description": "周一至周五",
            "price_points": "900",
            "stock": "",
            "limit_count": "",
            "limit_period": "",
            "min_star": "1",
            "star_1": "",
            "star_2": "",
            "star_3": "800",
            "star_4": "",
            "star_5": "",
            "valid_from": "2025-06-01",
            "valid_until": "2099-06-30",
        }
        saved = await post_form(phone, edit_path, edit_path, **form)
        assert saved.status_code == 303 and saved.headers["location"] == "/merchant/rewards?done=saved"
        changed = (await shop.c.get(f"/v1/rewards/{reward['id']}", headers=shop.t.auth(shop.key))).json()
        assert changed["price_points"] == 900 and changed["stock"] is None and changed["limit"] is None
        assert changed["star_prices"] == {"3": 800} and changed["valid_until"] == reward["valid_until"]

        # in words, next to the field; nothing saved
        bad = await post_form(
            phone, edit_path, edit_path, **{**form, "price_points": "lots", "limit_count": "3"}
        )
        assert bad.status_code == 400
        assert "The price is a whole number of points" in bad.text and "A limit is a number" in bad.text
        assert 'aria-invalid="true"' in bad.text and 'value="lots"' in bad.text
        zero = await post_form(phone, "/merchant/rewards", "/merchant/rewards", title="米", price_points="0")
        assert zero.status_code == 400 and "The price is a whole number of points" in zero.text
        nameless = await post_form(
            phone, "/merchant/rewards", "/merchant/rewards", title=" ", price_points="5"
        )
        assert nameless.status_code == 400 and "Give the reward a name" in nameless.text
        backwards = await post_form(
            phone,
            "/merchant/rewards",
            "/merchant/rewards",
            title="米",
            price_points="5",
            valid_from="2030-01-02",
            valid_until="2030-01-01",
        )
        assert backwards.status_code == 400 and "on or after the first day" in backwards.text
        assert (
            await shop.c.get(f"/v1/rewards/{reward['id']}", headers=shop.t.auth(shop.key))
        ).json() == changed

        ask = await phone.get(f"{edit_path}/deactivate")
        assert ask.status_code == 200 and "Yes, stop offering it" in ask.text
        stopped = await post_form(phone, f"{edit_path}/deactivate", f"{edit_path}/deactivate")
        assert (
            stopped.status_code == 303 and stopped.headers["location"] == "/merchant/rewards?done=deactivated"
        )
        after = (await shop.c.get(f"/v1/rewards/{reward['id']}", headers=shop.t.auth(shop.key))).json()
        assert after["active"] is False
        listed = await phone.get("/merchant/rewards")
        assert "No longer offered" in listed.text


async def test_another_shops_reward_is_not_found(shop, tenant) -> None:
    other = await Shop(tenant).setup("理发店")
    theirs = await other.reward(title="理发")
    async with shop.assistant() as phone:
        assert (await phone.get(f"/merchant/rewards/{theirs['id']}")).status_code == 404
        token = await csrf(phone, "/merchant/rewards")
        r = await phone.post(f"/merchant/rewards/{theirs['id']}/deactivate", data={"_csrf_token": token})
        assert r.status_code == 404
    assert (await other.c.get(f"/v1/rewards/{theirs['id']}", headers=tenant.auth())).json()["active"] is True


# --- the statement ------------------------------------------------------------------------------


async def test_statement_page_and_csv_match_the_api(shop) -> None:
    rice = await shop.reward(title="大米, 5kg", price_points=20)
    oil = await shop.reward(title="食用油", price_points=15)
    member, key = await shop.resident(points=100)
    async with shop.assistant() as phone:
        for reward in (rice, oil):
            voucher = await shop.voucher(reward, member, key)
            assert (await confirm_from(phone, await look_up(phone, voucher["code"]))).status_code == 303
        await shop.voucher(rice, member, key)  # held, not confirmed: not in the statement

        day = today()
        first, last = day.replace(day=1), day
        api = (await shop.statement(first, last)).json()
        assert api["totals"] == {"redemptions": 2, "points": 35}
        page = await phone.get(f"/merchant/statement?from={first}&to={last}")
        assert page.status_code == 200
        text = page.text
        assert f'<p class="value">{api["totals"]["points"]}</p>' in text
        assert f'<p class="value">{api["totals"]["redemptions"]}</p>' in text
        assert 'role="img"' in text and '<title id="chart-title">' in text and "35 points in all" in text
        assert text.count("<rect ") == 1, "one bar: today"
        assert '<td class="num">35</td>' in text and "style=" not in text
        for item in api["items"]:
            assert f'href="/receipts/{item["transaction_id"]}"' in text

        default = await phone.get("/merchant/statement")  # this month
        assert default.status_code == 200
        month_last = (first.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
        month = (await shop.statement(first, month_last)).json()
        assert f'<p class="value">{month["totals"]["points"]}</p>' in default.text
        assert f'value="{first}"' in default.text and f'value="{month_last}"' in default.text

        download = await phone.get(f"/merchant/statement.csv?from={first}&to={last}")
        assert download.status_code == 200
        assert download.headers["content-type"] == "text/csv; charset=utf-8"
        assert download.headers["content-disposition"].startswith("attachment;")
        assert download.content == (await shop.statement(first, last, "csv")).content  # byte for byte
        rows = list(csv.reader(io.StringIO(download.content.decode("utf-8-sig"))))
        assert [r[3] for r in rows[1:-1]] == ["大米, 5kg", "食用油"] and rows[-1][5] == "35"

        bad = await phone.get("/merchant/statement?from=someday&to=2025-01-01")
        assert bad.status_code == 400 and "Enter the days as dates" in alert(bad.text)
        backwards = await phone.get(f"/merchant/statement?from={last}&to={last - timedelta(days=1)}")
        assert backwards.status_code == 400 and "on or after the first day" in alert(backwards.text)
        year = await phone.get(f"/merchant/statement?from={last - timedelta(days=300)}&to={last}")
        assert year.status_code == 200 and "Points received per month" in year.text

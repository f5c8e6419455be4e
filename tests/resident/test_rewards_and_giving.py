"""Rewards (why not, in words), redeeming once, the voucher with its code and QR,
cancelling, giving hours to a neighbour and points to the fund: value moves once, and
nothing moves on a mistake. Another community's ids are not found."""

from __future__ import annotations

import re
import uuid

from tests.resident.helpers import IDEM, api, resident, text_of, visible_text
from timebank.web.privacy import mask_name


async def merchant_with_rewards(tenant, name: str = "爱心超市") -> dict:
    merchant = await tenant.party("merchants", name)
    key = await tenant.key("merchant", merchant["id"])

    async def reward(**fields):
        body = {"title": "十斤大米", "price_points": 10, **fields}
        r = await tenant.client.post("/v1/rewards", json=body, headers=tenant.auth(key))
        assert r.status_code == 201, r.text
        return r.json()

    return {"merchant": merchant, "key": key, "reward": reward}


async def test_rewards_i_may_redeem_and_those_i_may_not_with_why(tenant) -> None:
    shop = await merchant_with_rewards(tenant)
    rice = await shop["reward"](
        title="十斤大米", price_points=10, stock=3, limit={"count": 1, "period": "month"}
    )
    tv = await shop["reward"](title="电视机", price_points=500)
    vip = await shop["reward"](title="体检套餐", price_points=5, min_star=3)
    async with resident(tenant, points=15) as me:
        page = await me.page("/me/rewards")
        assert "<h1>Rewards</h1>" in page and "爱心超市" in page
        may, may_not = text_of(page, "may"), text_of(page, "may-not")
        assert "十斤大米" in may and "10 points" in may and "At most 1 a month" in may and "In stock 3" in may
        assert "电视机" in may_not and "You do not have enough points." in may_not
        assert "体检套餐" in may_not and "It needs a higher star level." in may_not
        assert f'href="/me/rewards/{rice["id"]}"' in page
        # the reasons are the API's
        listed = {i["id"]: i for i in (await api(tenant, "/v1/rewards", me.key))["items"]}
        assert listed[tv["id"]]["eligibility"]["reasons"] == ["insufficient_points"]
        assert listed[vip["id"]]["eligibility"]["reasons"] == ["star_level"]
        # a reward I may not redeem has no redeem button on its page, but says why
        page = await me.page(f"/me/rewards/{tv['id']}")
        assert "You do not have enough points." in page and "/redeem" not in page


async def test_redeem_once_see_the_voucher_and_cancel_it(tenant) -> None:
    shop = await merchant_with_rewards(tenant)
    rice = await shop["reward"](title="十斤大米", price_points=10)
    async with resident(tenant, points=25) as me:
        confirm = await me.page(f"/me/rewards/{rice['id']}")
        assert "<h1>Redeem 十斤大米 for 10 points?</h1>" in confirm
        assert "I have 25 points" in visible_text(confirm) and "I will have after 15 points" in visible_text(
            confirm
        )
        idem = IDEM.search(confirm).group(1)
        first = await me.post(f"/me/rewards/{rice['id']}", f"/me/rewards/{rice['id']}/redeem", idem=idem)
        assert first.status_code == 303, first.text[:1000]
        voucher_path = first.headers["location"]
        assert re.fullmatch(r"/me/vouchers/[0-9a-f-]{36}", voucher_path)
        again = await me.post(f"/me/rewards/{rice['id']}", f"/me/rewards/{rice['id']}/redeem", idem=idem)
        assert again.status_code == 303 and again.headers["location"] == voucher_path  # a double tap: once
        mine = (await api(tenant, f"/v1/members/{me.id}/redemptions", me.key))["items"]
        assert len(mine) == 1
        points = (await api(tenant, f"/v1/members/{me.id}/balances", me.key))["POINT"]
        assert points["pending"] == 10 and points["available"] == 15

        voucher = await me.page(voucher_path)
        code = mine[0]["code"]
        assert f'<p class="code" id="voucher-code">{code[:4]} {code[4:]}</p>' in voucher
        assert re.search(r'<svg class="qr" role="img" aria-label="[^"]+"[^>]*viewBox', voucher)
        assert "<path" in voucher and "style=" not in voucher.split("<svg", 1)[1].split("</svg>")[0]
        assert "十斤大米" in voucher and "爱心超市" in voucher and "Ready to use" in voucher
        assert re.search(r'data-countdown="[^"]+Z" data-expired-text="Expired">1?\d:\d\d</span>', voucher)
        assert "/me/vouchers" in await me.page("/me/rewards")
        assert mine[0]["id"] in await me.page("/me/vouchers")

        # cancel, with a confirmation first
        ask = await me.page(f"{voucher_path}/cancel")
        assert "Cancel the voucher for 十斤大米?" in ask
        cancelled = await me.form(f"{voucher_path}/cancel", f"{voucher_path}/cancel")
        assert (
            cancelled.status_code == 303 and cancelled.headers["location"] == f"{voucher_path}?done=cancelled"
        )
        after = await me.page(cancelled.headers["location"])
        assert (
            "The voucher is cancelled." in after and "Cancelled" in after and 'id="voucher-code"' not in after
        )
        state = await api(tenant, f"/v1/redemptions/{mine[0]['id']}", me.key)
        assert state["status"] == "cancelled"
        points = (await api(tenant, f"/v1/members/{me.id}/balances", me.key))["POINT"]
        assert points["pending"] == 0 and points["available"] == 25
        # cancelling again changes nothing and says why
        ask = await me.page(f"{voucher_path}/cancel")
        assert "It cannot be cancelled." in ask and 'name="idem"' not in ask
        twice = await me.post(voucher_path, f"{voucher_path}/cancel", idem=str(uuid.uuid4()))
        assert twice.status_code == 409 and "cannot be cancelled" in twice.text
        assert "This voucher was already used, cancelled or has expired." in twice.text


async def test_a_refused_redemption_shows_the_form_again_with_why(tenant) -> None:
    shop = await merchant_with_rewards(tenant)
    rice = await shop["reward"](title="十斤大米", price_points=10, stock=1)
    async with resident(tenant, points=30) as me, resident(tenant, "王大爷", points=30) as neighbour:
        form = await me.page(f"/me/rewards/{rice['id']}")
        # the neighbour takes the last one while my form is open
        taken = await neighbour.form(f"/me/rewards/{rice['id']}", f"/me/rewards/{rice['id']}/redeem")
        assert taken.status_code == 303
        idem = IDEM.search(form).group(1)
        refused = await me.post(f"/me/rewards/{rice['id']}", f"/me/rewards/{rice['id']}/redeem", idem=idem)
        assert refused.status_code == 409 and 'role="alert"' in refused.text
        assert "It is out of stock." in refused.text
        assert (await api(tenant, f"/v1/members/{me.id}/balances", me.key))["POINT"]["available"] == 30


async def test_give_hours_to_a_neighbour_once(tenant) -> None:
    async with (
        resident(tenant, "张三", minutes=180) as me,
        resident(tenant, "刘桂香", minutes=0) as neighbour,
    ):
        typed = f"+86 {neighbour.login[:3]} {neighbour.login[3:7]} {neighbour.login[7:]}"
        check = await me.post("/me/give", "/me/give", phone=typed, hours="1.5", note="谢谢帮我买菜")
        assert check.status_code == 200, check.text[:1000]
        assert mask_name("刘桂香") == "刘*香" and "刘*香" in check.text and "刘桂香" not in check.text
        assert "Give 1.5 h to 刘*香?" in check.text
        idem = IDEM.search(check.text).group(1)
        fields = {"phone": typed, "hours": "1.5", "note": "谢谢帮我买菜", "idem": idem}
        done = await me.post("/me/give", "/me/give/confirm", **fields)
        assert done.status_code == 303, done.text[:1000]
        again = await me.post("/me/give", "/me/give/confirm", **fields)  # resent: nothing more moves
        assert again.status_code == 303 and again.headers["location"] == done.headers["location"]
        mine = await api(tenant, f"/v1/members/{me.id}/balances", me.key)
        theirs = await api(tenant, f"/v1/members/{neighbour.id}/balances", neighbour.key)
        assert mine["HOUR"]["posted"] == 90 and theirs["HOUR"]["posted"] == 90
        result = await me.page(done.headers["location"])
        assert "You gave 1.5 h to your neighbour." in result and "1.5 h" in text_of(result, "new-balance")
        tx_id = done.headers["location"].rsplit("/", 1)[1]
        assert f'href="/receipts/{tx_id}"' in result
        receipt = await me.phone.get(f"/receipts/{tx_id}")
        assert receipt.status_code == 200 and receipt.json()["transaction"]["memo"] == "谢谢帮我买菜"
        history = visible_text(await neighbour.page("/me/history?asset=HOUR"))
        assert "From a neighbour In +1.5 h" in history and "谢谢帮我买菜" in history

        async def unchanged() -> None:
            assert (await api(tenant, f"/v1/members/{me.id}/balances", me.key))["HOUR"]["posted"] == 90
            assert (await api(tenant, f"/v1/members/{neighbour.id}/balances", neighbour.key))["HOUR"][
                "posted"
            ] == 90

        unknown = await me.post("/me/give", "/me/give", phone="13000000000", hours="1")
        assert (
            unknown.status_code == 404
            and "No resident of this community has that phone number" in unknown.text
        )
        too_many = await me.post("/me/give", "/me/give", phone=neighbour.login, hours="25")
        assert too_many.status_code == 400 and "from 0.5 to 24" in too_many.text
        for wrong in ("0", "0.2", "abc", "-1"):
            refused = await me.post("/me/give", "/me/give", phone=neighbour.login, hours=wrong)
            assert refused.status_code == 400, wrong
        own = await me.post("/me/give", "/me/give", phone=me.login, hours="1")
        assert own.status_code == 400 and "your own phone number" in own.text
        # more than I have: the ledger refuses at the confirmation, in words
        check = await me.post("/me/give", "/me/give", phone=neighbour.login, hours="2")
        idem = IDEM.search(check.text).group(1)
        broke = await me.post(
            "/me/give", "/me/give/confirm", phone=neighbour.login, hours="2", note="", idem=idem
        )
        assert broke.status_code == 422 and "There is not enough in your account for this." in broke.text
        # the same form's key with other values is refused, not run
        other = await me.post(
            "/me/give", "/me/give/confirm", phone=neighbour.login, hours="0.5", note="", idem=idem
        )
        assert other.status_code == 409
        # "No, change it" goes back to the form as typed
        back = await me.post("/me/give", "/me/give/change", phone=neighbour.login, hours="0.5", note="x")
        assert (
            back.status_code == 200
            and 'value="0.5"' in back.text
            and "<h1>Give hours to a neighbour</h1>" in back.text
        )
        await unchanged()


async def test_donate_points_to_the_community_fund(tenant) -> None:
    fund = tenant.accounts["fund"]["POINT"]
    before = (await tenant.balance(fund))["posted"]
    async with resident(tenant, points=50) as me:
        check = await me.post("/me/donate", "/me/donate", points="20", note="一点心意")
        assert check.status_code == 200 and "Donate 20 points to the community fund?" in check.text
        idem = IDEM.search(check.text).group(1)
        fields = {"points": "20", "note": "一点心意", "idem": idem}
        done = await me.post("/me/donate", "/me/donate/confirm", **fields)
        assert done.status_code == 303, done.text[:1000]
        again = await me.post("/me/donate", "/me/donate/confirm", **fields)
        assert again.headers["location"] == done.headers["location"]
        assert (await tenant.balance(fund))["posted"] == before + 20
        assert (await api(tenant, f"/v1/members/{me.id}/balances", me.key))["POINT"]["posted"] == 30
        result = await me.page(done.headers["location"])
        assert "You donated 20 points to the community fund." in result
        tx = await api(tenant, f"/v1/transactions/{done.headers['location'].rsplit('/', 1)[1]}", me.key)
        assert tx["kind"] == "donation" and tx["memo"] == "一点心意"
        # more than I have: refused in words, nothing moves
        check = await me.post("/me/donate", "/me/donate", points="31")
        idem = IDEM.search(check.text).group(1)
        broke = await me.post("/me/donate", "/me/donate/confirm", points="31", note="", idem=idem)
        assert broke.status_code == 422 and "There is not enough in your account for this." in broke.text
        bad = await me.post("/me/donate", "/me/donate", points="1.5")
        assert bad.status_code == 400 and 'role="alert"' in bad.text
        assert (await tenant.balance(fund))["posted"] == before + 20


async def test_another_communitys_ids_are_not_found(tenant, other_tenant) -> None:
    theirs = await merchant_with_rewards(other_tenant)
    their_reward = await theirs["reward"](title="理发", price_points=5)
    async with (
        resident(other_tenant, "外人", points=20, minutes=60) as stranger,
        resident(tenant, points=20) as me,
        resident(tenant, "王大爷", points=20) as neighbour,
    ):
        made = await stranger.form(
            f"/me/rewards/{their_reward['id']}", f"/me/rewards/{their_reward['id']}/redeem"
        )
        their_voucher = made.headers["location"]
        their_tx = (await api(other_tenant, f"/v1/members/{stranger.id}/redemptions", stranger.key))["items"][
            0
        ]["hold_id"]
        ours = await merchant_with_rewards(tenant)
        rice = await ours["reward"]()
        mine = (await me.form(f"/me/rewards/{rice['id']}", f"/me/rewards/{rice['id']}/redeem")).headers[
            "location"
        ]
        for path in (
            f"/me/rewards/{their_reward['id']}",
            their_voucher,
            f"{their_voucher}/cancel",
            f"/receipts/{their_tx}",
            f"/me/done/{their_tx}",
            mine,  # my neighbour's voucher is not theirs to see either
            f"/me/rewards/{uuid.uuid4()}",
        ):
            page = await neighbour.phone.get(path) if path == mine else await me.phone.get(path)
            assert page.status_code == 404, (path, page.status_code)
            assert "text/html" in page.headers["content-type"]
        assert (await neighbour.phone.get(mine)).status_code == 404
        # redeeming another community's reward, or cancelling another's voucher, moves nothing
        token = await me.page("/me/rewards")  # (any page of mine gives a CSRF token)
        assert token
        redeem = await me.post(
            "/me/rewards", f"/me/rewards/{their_reward['id']}/redeem", idem=str(uuid.uuid4())
        )
        assert redeem.status_code == 404
        cancel = await neighbour.post("/me/rewards", f"{mine}/cancel", idem=str(uuid.uuid4()))
        assert cancel.status_code == 404
        assert (await api(tenant, f"/v1/members/{me.id}/balances", me.key))["POINT"]["pending"] == 10
        # a neighbour in another community is not found by phone
        unknown = await me.post("/me/give", "/me/give", phone=stranger.login, hours="1")
        assert unknown.status_code == 404


async def test_phone_numbers_that_lead_nowhere_are_limited(tenant) -> None:
    """The give page names (masked) whoever has a number: guessing numbers is cut short."""
    async with (
        resident(tenant, "张三", minutes=180) as me,
        resident(tenant, "刘桂香", minutes=0) as neighbour,
    ):
        for n in range(10):
            r = await me.post("/me/give", "/me/give", phone=f"1370000{n:04d}", hours="1", note="")
            assert r.status_code == 404
        r = await me.post("/me/give", "/me/give", phone=neighbour.login, hours="1", note="")
        assert r.status_code == 429 and "刘*香" not in r.text
        mine = await api(tenant, f"/v1/members/{me.id}/balances", me.key)
        assert mine["HOUR"]["posted"] == 180

"""Redemption at a merchant of another community of the district (issue 18, 通存通兑), through
the HTTP API on real PostgreSQL: the member of A redeems B's reward (the hold is in A's ledger,
toward A's clearing account, at the district's rate), B's merchant confirms with the same code
(the hold posts as the sending part of a crossing), cancel and expiry release the hold in A's
ledger, limits refuse a confirmation and change nothing, replays and races make one crossing,
and rounding never creates points."""

from __future__ import annotations

import asyncio
import uuid
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import msgspec
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support import problem

from tests.districts.helpers import District, new_district, new_tenant
from timebank import schemas
from timebank.audits import run_audit
from timebank.core.terms import Asset
from timebank.districts.crossing import amounts
from timebank.redemption import redemptions as redemption_service
from timebank.redemption import rules


class Across:
    """A district of two communities: a member of A (with points) and a merchant of B."""

    def __init__(self, district: District) -> None:
        self.d = district
        self.a, self.b = district.communities
        self.c = self.a.client

    async def setup(self, points: int = 100) -> Across:
        self.member = await self.a.member("阿姨")
        await self.a.fund(self.member["accounts"]["POINT"], "POINT", points)
        self.resident = await self.a.key("resident", self.member["id"])
        self.merchant = await self.b.party("merchants", "隔壁超市")
        self.merchant_key = await self.b.key("merchant", self.merchant["id"])
        return self

    async def reward(self, **fields: Any) -> dict[str, Any]:
        body = {"title": "一袋大米", "price_points": 10, **fields}
        r = await self.c.post("/v1/rewards", json=body, headers=self.b.auth(self.merchant_key))
        assert r.status_code == 201, r.text
        return r.json()

    async def redeem(self, reward: dict[str, Any], key: str | None = None, idem: str | None = None) -> Any:
        return await self.c.post(
            "/v1/redemptions",
            json={"reward_id": reward["id"], "member_id": self.member["id"]},
            headers={**self.a.auth(key or self.resident), "Idempotency-Key": idem or str(uuid.uuid4())},
        )

    async def confirm(self, held: dict[str, Any], idem: str | None = None, key: str | None = None) -> Any:
        headers = self.b.auth(key or self.merchant_key)
        if idem:
            headers["Idempotency-Key"] = idem
        return await self.c.post(
            f"/v1/redemptions/{held['id']}/confirm", json={"code": held["code"]}, headers=headers
        )

    async def cancel(self, held: dict[str, Any], key: str, idem: str | None = None) -> Any:
        headers = self.a.auth(key)
        if idem:
            headers["Idempotency-Key"] = idem
        return await self.c.post(f"/v1/redemptions/{held['id']}/cancel", headers=headers)

    async def points(self) -> dict[str, Any]:
        r = await self.c.get(f"/v1/members/{self.member['id']}/points", headers=self.a.auth(self.resident))
        assert r.status_code == 200, r.text
        return r.json()

    async def merchant_points(self) -> int:
        return (await self.b.balance(self.merchant["accounts"]["POINT"]))["posted"]

    async def positions(self) -> tuple[int, int]:
        p = await self.d.positions()
        return p[(self.a.id, "POINT")], p[(self.b.id, "POINT")]

    async def get_reward(self, reward: dict[str, Any]) -> dict[str, Any]:
        r = await self.c.get(f"/v1/rewards/{reward['id']}", headers=self.b.auth())
        assert r.status_code == 200, r.text
        return r.json()

    async def crossings(self) -> list[dict[str, Any]]:
        r = await self.c.get("/v1/crossings", headers=self.b.auth())
        assert r.status_code == 200, r.text
        return r.json()["items"]


@pytest.fixture
async def across(client, engine) -> Across:
    return await Across(await new_district(client, engine, 2)).setup()


def conforms(body: Any, shape: Any) -> Any:
    return msgspec.convert(body, shape, strict=True)


async def assert_audit_clean(engine: Any) -> None:
    report = await run_audit(engine)
    assert report.ok, {k: v for k, v in report.results.items() if v}


@pytest.mark.parametrize(
    ("rate", "price", "paid", "received"),
    [((1, 1), 10, 10, 10), ((3, 2), 10, 15, 10), ((3, 2), 7, 11, 7), ((1, 3), 10, 4, 12)],
    ids=["1:1", "3:2", "3:2-rounded", "1:3-merchant-gets-the-worth"],
)
async def test_redeem_at_another_communitys_merchant_and_confirm(across, engine, rate, price, paid, received):
    a, b, c = across.a, across.b, across.c
    if rate != (1, 1):
        await across.d.set_rate(a, b, *rate)
    reward = await across.reward(price_points=price, stock=3, limit={"count": 2, "period": "month"})

    # A's resident finds B's rewards: the rewards and merchants' names, what they cost in A's points
    listed = await c.get("/v1/rewards", params={"community_id": b.id}, headers=a.auth(across.resident))
    assert listed.status_code == 200, listed.text
    (item,) = conforms(listed.json(), schemas.RewardPage).items
    assert item.id == reward["id"] and item.merchant_name == "隔壁超市" and item.community_id == b.id
    assert item.eligibility.may_redeem and item.eligibility.price_points == price
    assert item.eligibility.pay_points == paid
    one = await c.get(f"/v1/rewards/{reward['id']}", headers=a.auth(across.resident))
    assert one.status_code == 200 and one.json()["eligibility"]["pay_points"] == paid

    # redeem with the same route: the hold is in A's ledger, member → A's clearing
    made = await across.redeem(reward)
    assert made.status_code == 201, made.text
    held = made.json()
    conforms(held, schemas.Redemption)
    assert held["status"] == "held" and held["price_points"] == price and held["paid_points"] == paid
    assert held["received_points"] == received and held["rate"] == {"from": rate[0], "to": rate[1]}
    assert held["community_id"] == b.id and held["member_community_id"] == a.id
    assert held["code"] and held["qr"]
    hold = held["transaction"]
    assert hold["id"] == held["hold_id"] and hold["status"] == "pending"
    clearing = {leg["account_id"] for leg in hold["entries"] if leg["direction"] == "credit"}
    assert clearing == {a.accounts["clearing"]["POINT"]}
    pts = await across.points()
    assert (pts["balance"], pts["available"]) == (100, 100 - paid)  # held, not spent
    assert await across.positions() == (0, 0) and await across.crossings() == []
    assert (await across.get_reward(reward))["held"] == 1

    # the member sees the voucher among their own; B's merchant finds it at the counter
    mine = await c.get(f"/v1/members/{across.member['id']}/redemptions", headers=a.auth(across.resident))
    assert [(r["id"], r.get("code")) for r in mine.json()["items"]] == [(held["id"], held["code"])]
    counter = await c.get(
        "/v1/redemptions", params={"code": held["code"]}, headers=b.auth(across.merchant_key)
    )
    assert counter.status_code == 200 and counter.json()["id"] == held["id"], counter.text

    # B's merchant confirms: one crossing, A → district → B, the merchant credited
    done = await across.confirm(held)
    assert done.status_code == 201, done.text
    body = conforms(done.json(), schemas.Redemption)
    assert body.status == "confirmed" and body.crossing_id
    assert body.transaction.id != held["hold_id"]  # the merchant's part, in B's ledger
    (crossing,) = await across.crossings()
    assert crossing["id"] == body.crossing_id
    assert (crossing["amount_sent"], crossing["amount_received"]) == (paid, received)
    assert crossing["from"]["transaction_id"] == body.resolution_id
    assert crossing["to"]["transaction_id"] == body.transaction.id
    assert await across.positions() == (-paid, received)
    assert await across.merchant_points() == received
    pts = await across.points()
    assert (pts["balance"], pts["available"]) == (100 - paid, 100 - paid)
    assert sum(lot["remaining"] for lot in pts["lots"]) == 100 - paid  # the lots were consumed
    after = await across.get_reward(reward)
    assert (after["stock"], after["held"], after["redeemed"]) == (2, 0, 1)
    # rounding created nothing: what arrived is worth no more than what left
    assert received * rate[0] <= paid * rate[1]

    # the merchant's statement shows what it received; the member's list shows it confirmed
    today = datetime.now(ZoneInfo("Asia/Shanghai")).date()
    statement = await c.get(
        f"/v1/merchants/{across.merchant['id']}/statement",
        params={"from": str(today - timedelta(days=1)), "to": str(today + timedelta(days=1))},
        headers=b.auth(across.merchant_key),
    )
    assert statement.status_code == 200, statement.text
    assert [(i["redemption_id"], i["points"]) for i in statement.json()["items"]] == [(held["id"], received)]
    mine = await c.get(f"/v1/members/{across.member['id']}/redemptions", headers=a.auth(across.resident))
    assert mine.json()["items"][0]["status"] == "confirmed"
    await assert_audit_clean(engine)


async def test_cancel_and_expiry_release_the_hold_in_the_members_ledger(across, engine):
    a, b = across.a, across.b
    reward = await across.reward(price_points=30, stock=1)
    # the resident cancels
    held = (await across.redeem(reward)).json()
    assert (await across.points())["available"] == 70
    gone = await across.cancel(held, across.resident)
    assert gone.status_code == 201 and gone.json()["status"] == "cancelled", gone.text
    assert (await across.points())["available"] == 100
    # B's merchant cancels (its key is B's; the hold is A's): once, and a replay answers the same
    held = (await across.redeem(reward)).json()
    r = await across.c.post(
        f"/v1/redemptions/{held['id']}/cancel",
        headers={**b.auth(across.merchant_key), "Idempotency-Key": "x1"},
    )
    assert r.status_code == 201 and r.json()["status"] == "cancelled", r.text
    again = await across.c.post(
        f"/v1/redemptions/{held['id']}/cancel",
        headers={**b.auth(across.merchant_key), "Idempotency-Key": "x1"},
    )
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert again.json() == r.json() | {"transaction": again.json()["transaction"]}
    assert (await across.points())["available"] == 100
    back = await across.get_reward(reward)
    assert (back["stock"], back["held"]) == (1, 0)
    # a voucher that times out (B's voucher time) is voided in A's ledger by A's sweep
    current = (await across.c.get("/v1/community/policy", headers=b.auth())).json()["policy"]
    r = await across.c.put("/v1/community/policy", json={**current, "voucher_seconds": 1}, headers=b.auth())
    assert r.status_code == 200, r.text
    held = (await across.redeem(reward)).json()
    await asyncio.sleep(1.2)
    problem(await across.confirm(held), 409, "voucher-expired")
    async with engine.begin() as conn:
        assert await redemption_service.expire_due(conn, uuid.UUID(b.id)) == 0  # not B's ledger
        assert await redemption_service.expire_due(conn, uuid.UUID(a.id)) == 1
    gone = await across.c.get(f"/v1/redemptions/{held['id']}", headers=a.auth(across.resident))
    assert gone.json()["status"] == "expired"
    assert (await across.points())["available"] == 100
    assert await across.crossings() == [] and await across.positions() == (0, 0)
    await assert_audit_clean(engine)


async def test_a_confirmation_past_a_limit_is_refused_and_changes_nothing(across, engine):
    reward = await across.reward(price_points=40)
    # at the hold the limits are checked already (B's position would pass +30)
    await across.d.set_limits(across.b, POINT=30)
    problem(await across.redeem(reward), 422, "crossing-limit")
    assert (await across.points())["available"] == 100 and (await across.get_reward(reward))["held"] == 0
    # within the limits when held; A's limit is lowered before the merchant confirms
    await across.d.set_limits(across.b, POINT=1000)
    held = (await across.redeem(reward)).json()
    await across.d.set_limits(across.a, POINT=39)
    body = problem(await across.confirm(held), 422, "crossing-limit")
    assert body["community_id"] == across.a.id
    assert (await across.points())["available"] == 60 and (await across.points())["balance"] == 100
    assert await across.positions() == (0, 0) and await across.crossings() == []
    assert await across.merchant_points() == 0
    still = await across.c.get(f"/v1/redemptions/{held['id']}", headers=across.b.auth(across.merchant_key))
    assert still.json()["status"] == "held"
    # and B's limit, likewise
    await across.d.set_limits(across.a, POINT=1000)
    await across.d.set_limits(across.b, POINT=39)
    problem(await across.confirm(held, idem="b-limit"), 422, "crossing-limit")
    # once the limits allow it, the same voucher confirms (a new request)
    await across.d.set_limits(across.b, POINT=40)
    done = await across.confirm(held, idem="ok-now")
    assert done.status_code == 201, done.text
    assert await across.positions() == (-40, 40)
    await assert_audit_clean(engine)


async def test_double_and_concurrent_confirmations_make_one_crossing(across, engine):
    reward = await across.reward(price_points=10)
    held = (await across.redeem(reward)).json()
    first = await across.confirm(held, idem="k1")
    assert first.status_code == 201, first.text
    replay = await across.confirm(held, idem="k1")
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    assert replay.json()["transaction"]["id"] == first.json()["transaction"]["id"]
    assert replay.json()["crossing_id"] == first.json()["crossing_id"]
    problem(await across.confirm(held, idem="k2"), 409, "voucher-used")
    problem(await across.confirm(held), 409, "voucher-used")
    assert len(await across.crossings()) == 1

    # two confirmations of one voucher at once (different keys, and the same key): one crossing
    for keys in (("c1", "c2"), ("same", "same")):
        held = (await across.redeem(reward)).json()
        answers = await asyncio.gather(*(across.confirm(held, idem=f"{held['id']}-{k}") for k in keys))
        codes = sorted(r.status_code for r in answers)
        assert codes == ([201, 409] if keys[0] != keys[1] else [201, 201]), [r.text for r in answers]
    assert len(await across.crossings()) == 3
    assert await across.positions() == (-30, 30) and await across.merchant_points() == 30
    assert (await across.points())["balance"] == 70
    await assert_audit_clean(engine)


async def test_redeem_replays_and_the_merchant_redeems_with_the_members_token(across, engine):
    reward = await across.reward(price_points=10)
    first = await across.redeem(reward, idem="same")
    again = await across.redeem(reward, idem="same")
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json()["id"] == first.json()["id"]
    assert (await across.points())["available"] == 90
    # at B's counter, with the A resident's QR token: the hold is still in A's ledger
    token = (
        await across.c.post(
            f"/v1/members/{across.member['id']}/redemption-token", headers=across.a.auth(across.resident)
        )
    ).json()["token"]
    body = {"reward_id": reward["id"], "member_id": across.member["id"], "member_token": token}
    headers = {**across.b.auth(across.merchant_key), "Idempotency-Key": "counter-1"}
    made = await across.c.post("/v1/redemptions", json=body, headers=headers)
    assert made.status_code == 201, made.text
    replay = await across.c.post("/v1/redemptions", json=body, headers=headers)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == made.json()["id"]
    assert (
        made.json()["member_community_id"] == across.a.id
        and made.json()["transaction"]["status"] == "pending"
    )
    assert (await across.points())["available"] == 80
    assert (await across.confirm(made.json())).status_code == 201
    await assert_audit_clean(engine)


async def test_a_community_outside_the_district_sees_and_redeems_nothing(across, client, engine):
    outsider = await new_tenant(client, engine, "外区")
    stranger = await outsider.member("路人")
    key = await outsider.key("resident", stranger["id"])
    reward = await across.reward()
    problem(
        await client.get("/v1/rewards", params={"community_id": across.b.id}, headers=outsider.auth(key)),
        404,
        "not-found",
    )
    problem(await client.get(f"/v1/rewards/{reward['id']}", headers=outsider.auth(key)), 404, "not-found")
    r = await client.post(
        "/v1/redemptions",
        json={"reward_id": reward["id"], "member_id": stranger["id"]},
        headers={**outsider.auth(key), "Idempotency-Key": str(uuid.uuid4())},
    )
    problem(r, 404, "not-found")
    # within the district, members stay unseen: B's admin cannot list A's member's redemptions
    r = await client.get(f"/v1/members/{across.member['id']}/redemptions", headers=across.b.auth())
    assert r.status_code == 404, r.text


@settings(max_examples=300, deadline=None)
@given(
    rate_from=st.integers(1, 1_000_000),
    rate_to=st.integers(1, 1_000_000),
    price=st.integers(1, 1_000_000_000),
)
def test_the_cost_is_the_least_that_covers_the_price_and_creates_nothing(rate_from, rate_to, price):
    paid = rules.cost_at(price, rate_from, rate_to)
    amt = amounts(Asset.POINT, paid, rate_from, rate_to)
    assert amt.sent == paid and amt.kept == 0  # the crossing sends all of it
    assert amt.received == rules.worth_there(paid, rate_from, rate_to) >= price  # the price is covered
    assert amt.received * rate_from <= amt.sent * rate_to  # nothing created
    assert rules.worth_there(paid - 1, rate_from, rate_to) < price  # and no point more than needed
    assert (amt.received - price) * rate_from < rate_to  # any excess is less than one of the member's points

"""Rewards and redemption through the HTTP API, on real PostgreSQL: every rule and role,
vouchers (code and signed QR), FIFO use of points lots, expiry, concurrency, neighbour
help and donations, statements, and a clean audit after all of it."""

from __future__ import annotations

import asyncio
import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from support import problem

from timebank.audits import run_audit
from timebank.log.verify import load_jwks, verify_receipt
from timebank.redemption import redemptions as redemption_service
from timebank.redemption import vouchers

CODE_CHARS = set(vouchers.ALPHABET)
SHANGHAI = ZoneInfo("Asia/Shanghai")


class Shop:
    """A community with a merchant (and its key), a second merchant and helpers."""

    def __init__(self, tenant: Any) -> None:
        self.t = tenant
        self.c = tenant.client

    async def setup(self) -> Shop:
        self.merchant = await self.t.party("merchants", "爱心超市")
        self.merchant_key = await self.t.key("merchant", self.merchant["id"])
        self.other_merchant = await self.t.party("merchants", "理发店")
        self.other_key = await self.t.key("merchant", self.other_merchant["id"])
        return self

    async def resident(self, name: str = "居民", points: int = 0) -> tuple[dict[str, Any], str]:
        member = await self.t.member(name)
        if points:
            await self.t.fund(member["accounts"]["POINT"], "POINT", points)
        return member, await self.t.key("resident", member["id"])

    async def reward(self, key: str | None = None, **fields: Any) -> dict[str, Any]:
        body = {"title": "十斤大米", "price_points": 10, **fields}
        r = await self.c.post("/v1/rewards", json=body, headers=self.t.auth(key or self.merchant_key))
        assert r.status_code == 201, r.text
        return r.json()

    async def redeem(
        self, reward: dict[str, Any], member: dict[str, Any], key: str, idem: str | None = None, **extra: Any
    ) -> Any:
        return await self.c.post(
            "/v1/redemptions",
            json={"reward_id": reward["id"], "member_id": member["id"], **extra},
            headers={**self.t.auth(key), "Idempotency-Key": idem or str(uuid.uuid4())},
        )

    async def confirm(self, redemption_id: str, key: str | None = None, **body: Any) -> Any:
        return await self.c.post(
            f"/v1/redemptions/{redemption_id}/confirm",
            json=body,
            headers=self.t.auth(key or self.merchant_key),
        )

    async def cancel(self, redemption_id: str, key: str) -> Any:
        return await self.c.post(f"/v1/redemptions/{redemption_id}/cancel", headers=self.t.auth(key))

    async def get_reward(self, reward_id: str, key: str | None = None) -> dict[str, Any]:
        r = await self.c.get(f"/v1/rewards/{reward_id}", headers=self.t.auth(key))
        assert r.status_code == 200, r.text
        return r.json()

    async def points(self, member: dict[str, Any], key: str | None = None) -> dict[str, Any]:
        r = await self.c.get(f"/v1/members/{member['id']}/points", headers=self.t.auth(key))
        assert r.status_code == 200, r.text
        return r.json()

    async def policy(self, **changes: Any) -> None:
        current = (await self.c.get("/v1/community/policy", headers=self.t.auth())).json()["policy"]
        r = await self.c.put("/v1/community/policy", json={**current, **changes}, headers=self.t.auth())
        assert r.status_code == 200, r.text


@pytest.fixture
async def shop(tenant: Any) -> Shop:
    return await Shop(tenant).setup()


async def assert_audit_clean(engine: Any) -> None:
    report = await run_audit(engine)
    assert report.ok, {k: v for k, v in report.results.items() if v}


async def test_rewards_are_published_changed_and_listed_by_the_right_keys(shop, tenant, other_tenant):
    c, t = shop.c, tenant
    member, resident = await shop.resident("甲")
    own = await shop.reward(
        title="  理发一次 ",
        price_points=50,
        stock=5,
        limit={"count": 1, "period": "month"},
        min_star=1,
        star_prices={"3": 40, "5": 30},
        description="周一至周五",
    )
    assert own["merchant_id"] == shop.merchant["id"] and own["title"] == "理发一次"
    assert own["stock"] == 5 and own["held"] == 0 and own["redeemed"] == 0 and own["active"] is True
    assert own["limit"] == {"count": 1, "period": "month"} and own["star_prices"] == {"3": 40, "5": 30}
    # an admin publishes for a merchant; a merchant only for itself; residents not at all
    by_admin = await shop.reward(key=t.admin_key, merchant_id=shop.other_merchant["id"], title="洗剪吹")
    assert by_admin["merchant_id"] == shop.other_merchant["id"]
    problem(
        await c.post("/v1/rewards", json={"title": "x", "price_points": 1}, headers=t.auth()),
        400,
        "invalid-request",
    )
    problem(
        await c.post(
            "/v1/rewards",
            json={"merchant_id": shop.other_merchant["id"], "title": "x", "price_points": 1},
            headers=t.auth(shop.merchant_key),
        ),
        403,
        "forbidden",
    )
    problem(
        await c.post("/v1/rewards", json={"title": "x", "price_points": 1}, headers=t.auth(resident)),
        403,
        "forbidden",
    )
    problem(
        await c.post(
            "/v1/rewards",
            json={"merchant_id": member["id"], "title": "x", "price_points": 1},
            headers=t.auth(),
        ),
        404,
        "not-found",
    )
    # bad input: a clear 400, nothing written
    before = len((await c.get("/v1/rewards", headers=t.auth())).json()["items"])
    for bad in (
        {"title": "", "price_points": 1},
        {"title": "x", "price_points": 0},
        {"title": "x", "price_points": "5"},
        {"title": "x", "price_points": 1, "stock": -1},
        {"title": "x", "price_points": 1, "limit": {"count": 1, "period": "fortnight"}},
        {"title": "x", "price_points": 1, "limit": {"count": 0, "period": "day"}},
        {"title": "x", "price_points": 1, "star_prices": {"7": 1}},
        {"title": "x", "price_points": 1, "star_prices": {"2": 0}},
        {"title": "x", "price_points": 1, "min_star": 6},
        {
            "title": "x",
            "price_points": 1,
            "valid_from": "2026-12-01T00:00:00Z",
            "valid_until": "2026-11-01T00:00:00Z",
        },
        {"title": "x", "price_points": 1, "colour": "red"},
    ):
        problem(
            await c.post("/v1/rewards", json=bad, headers=t.auth(shop.merchant_key)), 400, "invalid-request"
        )
    assert len((await c.get("/v1/rewards", headers=t.auth())).json()["items"]) == before
    # changes: by its merchant or an admin; null clears; other merchants may not
    r = await c.patch(
        f"/v1/rewards/{own['id']}",
        json={"price_points": 45, "stock": None, "limit": None},
        headers=t.auth(shop.merchant_key),
    )
    assert r.status_code == 200, r.text
    assert r.json()["price_points"] == 45 and r.json()["stock"] is None and r.json()["limit"] is None
    assert r.json()["title"] == "理发一次" and r.json()["min_star"] == 1
    problem(
        await c.patch(f"/v1/rewards/{own['id']}", json={"price_points": 1}, headers=t.auth(shop.other_key)),
        403,
        "forbidden",
    )
    problem(
        await c.patch(f"/v1/rewards/{own['id']}", json={"price_points": -1}, headers=t.auth()),
        400,
        "invalid-request",
    )
    # listing and filters; another community sees nothing
    mine = (await c.get(f"/v1/rewards?merchant_id={shop.merchant['id']}", headers=t.auth())).json()["items"]
    assert [x["id"] for x in mine] == [own["id"]]
    r = await c.post(f"/v1/rewards/{own['id']}/deactivate", headers=t.auth(shop.merchant_key))
    assert r.status_code == 200 and r.json()["active"] is False
    assert own["id"] not in [x["id"] for x in (await c.get("/v1/rewards", headers=t.auth())).json()["items"]]
    inactive = (await c.get("/v1/rewards?active=false", headers=t.auth())).json()["items"]
    assert [x["id"] for x in inactive] == [own["id"]]
    assert (await c.get(f"/v1/rewards/{own['id']}", headers=other_tenant.auth())).status_code == 404
    assert (await c.get("/v1/rewards", headers=other_tenant.auth())).json()["items"] == []
    # paging
    for i in range(3):
        await shop.reward(title=f"商品{i}")
    first = (await c.get("/v1/rewards?limit=2", headers=t.auth())).json()
    second = (await c.get(f"/v1/rewards?limit=2&cursor={first['next_cursor']}", headers=t.auth())).json()
    assert len(first["items"]) == 2 and not {x["id"] for x in first["items"]} & {
        x["id"] for x in second["items"]
    }


async def test_a_resident_sees_whether_and_why_not(shop, tenant):
    c = shop.c
    await shop.policy(star_thresholds_hours=[1, 2, 3, 4, 5])
    member, resident = await shop.resident("乙", points=40)
    await tenant.fund(member["accounts"]["HOUR"], "HOUR", 1)  # hours given are not service: still no stars
    plain = await shop.reward(title="米", price_points=20, limit={"count": 1, "period": "day"})
    starred = await shop.reward(title="油", price_points=10, min_star=1)
    gone = await shop.reward(title="面", price_points=5, stock=0)
    dear = await shop.reward(title="电饭锅", price_points=500)
    later = await shop.reward(
        title="月饼", price_points=5, valid_from=(datetime.now(UTC) + timedelta(days=30)).isoformat()
    )
    over = await shop.reward(
        title="粽子",
        price_points=5,
        valid_from=(datetime.now(UTC) - timedelta(days=30)).isoformat(),
        valid_until=(datetime.now(UTC) - timedelta(days=1)).isoformat(),
    )
    seen = {
        x["id"]: x["eligibility"]
        for x in (await c.get("/v1/rewards", headers=tenant.auth(resident))).json()["items"]
    }
    assert seen[plain["id"]] == {"may_redeem": True, "reasons": [], "price_points": 20, "star_level": 0}
    assert seen[starred["id"]]["reasons"] == ["star_level"]
    assert seen[gone["id"]]["reasons"] == ["out_of_stock"]
    assert seen[dear["id"]]["reasons"] == ["insufficient_points"]
    assert seen[later["id"]]["reasons"] == ["not_valid_yet"]
    assert seen[over["id"]]["reasons"] == ["no_longer_valid"]
    # staff see the rewards without a resident's eligibility
    assert "eligibility" not in (await c.get("/v1/rewards", headers=tenant.auth())).json()["items"][0]
    # each reason refuses a redemption with the same words
    for reward, reason in (
        (starred, "star_level"),
        (gone, "out_of_stock"),
        (dear, "insufficient_points"),
        (later, "not_valid_yet"),
        (over, "no_longer_valid"),
    ):
        body = problem(await shop.redeem(reward, member, resident), 409, "reward-unavailable")
        assert body["reason"] == reason
    # the limit, once reached
    assert (await shop.redeem(plain, member, resident)).status_code == 201
    assert (await shop.get_reward(plain["id"], resident))["eligibility"]["reasons"] == ["limit_reached"]
    assert (
        problem(await shop.redeem(plain, member, resident), 409, "reward-unavailable")["reason"]
        == "limit_reached"
    )
    # VIP love-exchange: a star (one approved hour) unlocks the starred reward at its star price
    org = await tenant.party("organisations", "志愿队")
    start = datetime(2026, 11, 2, 1, tzinfo=UTC)
    rec = (
        await c.post(
            "/v1/service-records",
            json={
                "member_id": member["id"],
                "organisation_id": org["id"],
                "activity": "助老",
                "category": "volunteer_service",
                "place": "社区",
                "started_at": start.isoformat(),
                "ended_at": (start + timedelta(hours=1)).isoformat(),
            },
            headers=tenant.auth(),
        )
    ).json()
    assert (
        await c.post(f"/v1/service-records/{rec['id']}/approve", headers=tenant.auth())
    ).status_code == 201
    r = await c.patch(f"/v1/rewards/{starred['id']}", json={"star_prices": {"1": 7}}, headers=tenant.auth())
    assert r.status_code == 200, r.text
    assert (await shop.get_reward(starred["id"], resident))["eligibility"] == {
        "may_redeem": True,
        "reasons": [],
        "price_points": 7,
        "star_level": 1,
    }
    held = await shop.redeem(starred, member, resident)
    assert held.status_code == 201 and held.json()["price_points"] == 7 and held.json()["star_level"] == 1


async def test_redeem_and_confirm_at_the_counter(shop, tenant, engine):
    c = shop.c
    member, resident = await shop.resident("丙", points=100)
    _stranger, stranger_key = await shop.resident("丁", points=100)
    reward = await shop.reward(title="一袋面粉", price_points=30, stock=3)
    idem = str(uuid.uuid4())
    r = await shop.redeem(reward, member, resident, idem=idem)
    assert r.status_code == 201, r.text
    held = r.json()
    assert held["status"] == "held" and held["price_points"] == 30 and held["title"] == "一袋面粉"
    assert len(held["code"]) == 8 and set(held["code"]) <= CODE_CHARS
    expires = datetime.fromisoformat(held["expires_at"])
    assert timedelta(minutes=14) < expires - datetime.now(UTC) <= timedelta(minutes=15)
    assert held["transaction"]["kind"] == "redemption" and held["transaction"]["status"] == "pending"
    assert "set" in held["transaction"]
    # the QR verifies with the published keys alone, and names this voucher
    keys = load_jwks((await c.get("/v1/log/keys")).json())
    claims = vouchers.read_token(held["qr"], vouchers.VOUCHER, keys, datetime.now(UTC))
    assert claims["redemption_id"] == held["id"] and claims["code"] == held["code"]
    with pytest.raises(vouchers.TokenError):
        vouchers.read_token(
            held["qr"][:-2] + ("AA" if held["qr"][-2:] != "AA" else "BB"),
            vouchers.VOUCHER,
            keys,
            datetime.now(UTC),
        )
    with pytest.raises(vouchers.TokenError, match="expired"):
        vouchers.read_token(held["qr"], vouchers.VOUCHER, keys, expires + timedelta(seconds=1))
    # replay: the same answer, the same voucher
    again = await shop.redeem(reward, member, resident, idem=idem)
    assert again.status_code == 201 and again.headers.get("Idempotent-Replayed") == "true"
    assert {k: again.json()[k] for k in ("id", "code", "qr")} == {k: held[k] for k in ("id", "code", "qr")}
    # held: points reserved, one unit reserved
    pts = await shop.points(member, resident)
    assert pts["balance"] == 100 and pts["available"] == 70
    assert (await shop.get_reward(reward["id"]))["stock"] == 2 and (await shop.get_reward(reward["id"]))[
        "held"
    ] == 1
    # the counter finds it by code (another merchant does not)
    found = await c.get(
        f"/v1/redemptions?code={held['code'].lower()}", headers=tenant.auth(shop.merchant_key)
    )
    assert found.status_code == 200 and found.json()["id"] == held["id"]
    assert (
        await c.get(f"/v1/redemptions?code={held['code']}", headers=tenant.auth(shop.other_key))
    ).status_code == 404
    # wrong code, another merchant, a resident: refused, nothing moves
    wrong = "".join("2" if ch != "2" else "3" for ch in held["code"])
    problem(await shop.confirm(held["id"], code=wrong), 422, "wrong-voucher-code")
    problem(await shop.confirm(held["id"], shop.other_key, code=held["code"]), 403, "forbidden")
    problem(await shop.confirm(held["id"], resident, code=held["code"]), 403, "forbidden")
    problem(await shop.confirm(held["id"]), 400, "invalid-request")
    # the resident cannot post or void the hold behind the redemption's back
    problem(
        await c.post(
            f"/v1/transactions/{held['hold_id']}/void",
            headers={**tenant.auth(resident), "Idempotency-Key": str(uuid.uuid4())},
        ),
        409,
        "not-a-hold",
    )
    assert (await shop.points(member))["available"] == 70
    # the right code (as typed, with a dash and in lower case)
    typed = f"{held['code'][:4]}-{held['code'][4:]}".lower()
    done = await shop.confirm(held["id"], code=typed)
    assert done.status_code == 201, done.text
    confirmed = done.json()
    assert confirmed["status"] == "confirmed" and confirmed["transaction"]["phase"] == "post"
    assert confirmed["resolution_id"] == confirmed["transaction"]["id"] and "qr" not in confirmed
    replay = await shop.confirm(held["id"], code=typed)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["transaction"]["id"] == confirmed["transaction"]["id"]
    # the code cannot be used twice, by a new request or by the other way in
    problem(
        await c.post(
            f"/v1/redemptions/{held['id']}/confirm",
            json={"code": held["code"]},
            headers={**tenant.auth(shop.merchant_key), "Idempotency-Key": "another"},
        ),
        409,
        "voucher-used",
    )
    problem(await shop.cancel(held["id"], resident), 409, "voucher-used")
    assert (await shop.points(member))["balance"] == 70
    assert (await tenant.balance(shop.merchant["accounts"]["POINT"]))["posted"] == 30
    after = await shop.get_reward(reward["id"])
    assert (after["stock"], after["held"], after["redeemed"]) == (2, 0, 1)
    # a confirmation by QR
    second = (await shop.redeem(reward, member, resident)).json()
    problem(await shop.confirm(second["id"], qr=held["qr"]), 422, "wrong-voucher-code")
    assert (await shop.confirm(second["id"], qr=second["qr"])).status_code == 201
    # who reads what
    assert (
        await c.get(f"/v1/redemptions/{held['id']}", headers=tenant.auth(stranger_key))
    ).status_code == 404
    assert (
        await c.get(f"/v1/redemptions/{held['id']}", headers=tenant.auth(shop.other_key))
    ).status_code == 404
    mine = (await c.get(f"/v1/members/{member['id']}/redemptions", headers=tenant.auth(resident))).json()[
        "items"
    ]
    assert [x["id"] for x in mine] == [second["id"], held["id"]]
    assert (
        await c.get(f"/v1/members/{member['id']}/redemptions", headers=tenant.auth(stranger_key))
    ).status_code == 404
    # receipts of the hold and its post verify offline
    await tenant.integrate()
    for tx_id in (held["hold_id"], confirmed["resolution_id"]):
        receipt = (await c.get(f"/v1/transactions/{tx_id}/receipt", headers=tenant.auth(resident))).json()
        verify_receipt(receipt, keys)
    await assert_audit_clean(engine)


async def test_cancel_gives_back_points_stock_and_limit(shop, tenant, engine):
    member, resident = await shop.resident("戊", points=50)
    other, other_key = await shop.resident("己", points=50)
    reward = await shop.reward(price_points=20, stock=1, limit={"count": 1, "period": "week"})
    held = (await shop.redeem(reward, member, resident)).json()
    assert (
        problem(await shop.redeem(reward, other, other_key), 409, "reward-unavailable")["reason"]
        == "out_of_stock"
    )
    problem(await shop.cancel(held["id"], other_key), 404, "not-found")
    problem(await shop.cancel(held["id"], shop.other_key), 403, "forbidden")
    r = await shop.cancel(held["id"], resident)
    assert (
        r.status_code == 201
        and r.json()["status"] == "cancelled"
        and r.json()["transaction"]["phase"] == "void"
    )
    assert (await shop.points(member))["available"] == 50
    back = await shop.get_reward(reward["id"])
    assert (back["stock"], back["held"], back["redeemed"]) == (1, 0, 0)
    # the limit came back too; the merchant and an admin may cancel as well
    again = (await shop.redeem(reward, member, resident)).json()
    assert (await shop.cancel(again["id"], shop.merchant_key)).status_code == 201
    third = (await shop.redeem(reward, member, resident)).json()
    assert (await shop.cancel(third["id"], tenant.admin_key)).status_code == 201
    assert (await shop.redeem(reward, other, other_key)).status_code == 201
    await assert_audit_clean(engine)


async def test_a_merchant_redeems_with_the_residents_token(shop, tenant, engine):
    c = shop.c
    member, resident = await shop.resident("庚", points=40)
    other, _ = await shop.resident("辛", points=40)
    reward = await shop.reward(price_points=10)
    r = await c.post(f"/v1/members/{member['id']}/redemption-token", headers=tenant.auth(resident))
    assert r.status_code == 201, r.text
    token = r.json()["token"]
    assert (
        await c.post(f"/v1/members/{other['id']}/redemption-token", headers=tenant.auth(resident))
    ).status_code == 404
    problem(await shop.redeem(reward, member, shop.merchant_key), 400, "invalid-request")  # no token
    problem(await shop.redeem(reward, other, shop.merchant_key, member_token=token), 400, "invalid-request")
    problem(
        await shop.redeem(reward, member, shop.merchant_key, member_token=token[:-3] + "abc"),
        400,
        "invalid-request",
    )
    other_reward = await shop.reward(key=shop.other_key, price_points=10)
    problem(await shop.redeem(other_reward, member, shop.merchant_key, member_token=token), 403, "forbidden")
    made = await shop.redeem(reward, member, shop.merchant_key, member_token=token)
    assert made.status_code == 201, made.text
    assert (await shop.confirm(made.json()["id"], code=made.json()["code"])).status_code == 201
    body = problem(
        await shop.redeem(reward, member, shop.merchant_key, member_token=token), 400, "invalid-request"
    )
    assert "already used" in body["detail"]
    problem(await shop.redeem(reward, member, resident, member_token=token), 400, "invalid-request")
    problem(await shop.redeem(reward, member, tenant.admin_key), 403, "forbidden")
    # one token, two rewards at once: one redemption, one clear refusal
    fresh = (
        await c.post(f"/v1/members/{member['id']}/redemption-token", headers=tenant.auth(resident))
    ).json()["token"]
    second_reward = await shop.reward(price_points=5)
    both = await asyncio.gather(
        shop.redeem(reward, member, shop.merchant_key, member_token=fresh),
        shop.redeem(second_reward, member, shop.merchant_key, member_token=fresh),
    )
    assert sorted(r.status_code for r in both) == [201, 400], [r.text for r in both]
    assert (await shop.points(member))["available"] in (20, 25)
    await assert_audit_clean(engine)


async def test_an_expired_voucher_cannot_be_confirmed_and_the_sweep_voids_it(shop, tenant, engine):
    await shop.policy(voucher_seconds=1)
    member, resident = await shop.resident("壬", points=30)
    reward = await shop.reward(price_points=30, stock=1, limit={"count": 1, "period": "day"})
    held = (await shop.redeem(reward, member, resident)).json()
    assert (await shop.points(member))["available"] == 0
    await asyncio.sleep(1.2)
    problem(await shop.confirm(held["id"], code=held["code"]), 409, "voucher-expired")
    assert (await shop.get_reward(reward["id"]))["held"] == 1  # until the sweep
    async with engine.begin() as conn:
        assert await redemption_service.expire_due(conn, uuid.UUID(tenant.id)) == 1
    async with engine.begin() as conn:
        assert await redemption_service.expire_due(conn, uuid.UUID(tenant.id)) == 0  # once
    gone = (await shop.c.get(f"/v1/redemptions/{held['id']}", headers=tenant.auth(resident))).json()
    assert gone["status"] == "expired" and gone["resolution_id"] and "code" not in gone
    # the same request again is answered as before; a new one finds the voucher expired for good
    problem(await shop.confirm(held["id"], code=held["code"]), 409, "voucher-expired")
    problem(
        await shop.c.post(
            f"/v1/redemptions/{held['id']}/confirm",
            json={"code": held["code"]},
            headers={**tenant.auth(shop.merchant_key), "Idempotency-Key": "later"},
        ),
        409,
        "voucher-used",
    )
    assert (await shop.points(member))["available"] == 30
    back = await shop.get_reward(reward["id"])
    assert (back["stock"], back["held"], back["redeemed"]) == (1, 0, 0)
    # the limit came back: the resident may redeem again
    await shop.policy(voucher_seconds=900)
    assert (await shop.redeem(reward, member, resident)).status_code == 201
    await assert_audit_clean(engine)


async def test_points_are_spent_oldest_expiry_first_across_lots(shop, tenant, engine):
    member, resident = await shop.resident("癸")
    for months in (12, 1, 6):  # three lots, credited in this order, expiring in 1, 6, 12 months
        await shop.policy(points_expiry={"kind": "months_after_credit", "months": months})
        await tenant.fund(member["accounts"]["POINT"], "POINT", 30)
    lots = (await shop.points(member, resident))["lots"]
    expiry = [datetime.fromisoformat(x["expires_at"]) for x in lots]
    assert expiry == sorted(expiry) and [x["remaining"] for x in lots] == [30, 30, 30]
    first, middle, last = (x["id"] for x in lots)
    # local midnight in Asia/Shanghai
    assert all(d.astimezone(SHANGHAI).time().isoformat() == "00:00:00" for d in expiry)
    reward = await shop.reward(price_points=50)
    held = (await shop.redeem(reward, member, resident)).json()
    assert [x["remaining"] for x in (await shop.points(member))["lots"]] == [
        30,
        30,
        30,
    ]  # a hold spends nothing yet
    assert (await shop.confirm(held["id"], code=held["code"])).status_code == 201
    after = {x["id"]: x["remaining"] for x in (await shop.points(member))["lots"]}
    assert first not in after and after == {middle: 10, last: 30}
    # a donation to the community fund spends the same way
    fund = tenant.accounts["fund"]["POINT"]
    r = await tenant.transfer(
        {
            "from_account": member["accounts"]["POINT"],
            "to_account": fund,
            "asset": "POINT",
            "amount": 15,
            "kind": "donation",
        },
        key=resident,
    )
    assert r.status_code == 201, r.text
    assert {x["id"]: x["remaining"] for x in (await shop.points(member))["lots"]} == {last: 25}
    # an admin's reversal of the redemption gives the points back to the lots they came from
    posted = (await shop.c.get(f"/v1/redemptions/{held['id']}", headers=tenant.auth())).json()[
        "resolution_id"
    ]
    rev = await shop.c.post(
        f"/v1/transactions/{posted}/reverse",
        json={"reason": "商品缺货, 退回积分"},
        headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert rev.status_code == 201, rev.text
    assert {x["id"]: x["remaining"] for x in (await shop.points(member))["lots"]} == {
        first: 30,
        middle: 20,
        last: 25,
    }
    await assert_audit_clean(engine)


async def test_neighbour_help_and_donations_are_ordinary_transfers(shop, tenant, engine):
    helper, helper_key = await shop.resident("张师傅")
    neighbour, neighbour_key = await shop.resident("李奶奶", points=20)
    await tenant.fund(neighbour["accounts"]["HOUR"], "HOUR", 120)
    # 邻里互助: the neighbour gives an hour to the helper, from her own account only
    r = await tenant.transfer(
        {
            "from_account": neighbour["accounts"]["HOUR"],
            "to_account": helper["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 60,
            "memo": "修水管",
        },
        key=neighbour_key,
    )
    assert r.status_code == 201 and "set" in r.json(), r.text
    gift = r.json()
    problem(
        await tenant.transfer(
            {
                "from_account": neighbour["accounts"]["HOUR"],
                "to_account": helper["accounts"]["HOUR"],
                "asset": "HOUR",
                "amount": 1,
            },
            key=helper_key,
        ),
        403,
        "forbidden",
    )
    # donation: points to the community fund, and only there
    fund = tenant.accounts["fund"]["POINT"]
    d = await tenant.transfer(
        {
            "from_account": neighbour["accounts"]["POINT"],
            "to_account": fund,
            "asset": "POINT",
            "amount": 5,
            "kind": "donation",
        },
        key=neighbour_key,
    )
    assert d.status_code == 201, d.text
    problem(
        await tenant.transfer(
            {
                "from_account": neighbour["accounts"]["POINT"],
                "to_account": helper["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 5,
                "kind": "donation",
            },
            key=neighbour_key,
        ),
        400,
        "invalid-request",
    )
    assert (await tenant.balance(helper["accounts"]["HOUR"]))["posted"] == 60
    assert (await shop.points(neighbour))["balance"] == 15
    await tenant.integrate()
    keys = load_jwks((await shop.c.get("/v1/log/keys")).json())
    for tx in (gift, d.json()):
        verify_receipt(
            (await shop.c.get(f"/v1/transactions/{tx['id']}/receipt", headers=tenant.auth())).json(), keys
        )
    await assert_audit_clean(engine)


async def test_merchant_statement_as_json_and_csv(shop, tenant, engine):
    c = shop.c
    member, resident = await shop.resident("周", points=100)
    rice = await shop.reward(title="大米, 5kg", price_points=20)
    oil = await shop.reward(title="食用油", price_points=15)
    done = []
    for reward in (rice, oil, rice):
        held = (await shop.redeem(reward, member, resident)).json()
        if len(done) < 2:
            assert (await shop.confirm(held["id"], code=held["code"])).status_code == 201
            done.append(held["id"])
    today = datetime.now(UTC).astimezone(SHANGHAI).date()
    url = f"/v1/merchants/{shop.merchant['id']}/statement?from={today - timedelta(days=1)}&to={today}"
    r = await c.get(url, headers=tenant.auth(shop.merchant_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert [i["redemption_id"] for i in body["items"]] == done
    assert body["totals"] == {"redemptions": 2, "points": 35} and body["timezone"] == "Asia/Shanghai"
    assert body["from"] == str(today - timedelta(days=1)) and body["to"] == str(today)
    csv_r = await c.get(url + "&format=csv", headers=tenant.auth(tenant.admin_key))
    assert csv_r.status_code == 200 and csv_r.headers["content-type"] == "text/csv; charset=utf-8"
    rows = list(csv.reader(io.StringIO(csv_r.content.decode("utf-8-sig"))))
    assert rows[0][:3] == ["redemption_id", "confirmed_at", "reward_id"]
    assert (
        [row[3] for row in rows[1:-1]] == ["大米, 5kg", "食用油"]
        and rows[-1][:2] == ["total", "2 redemptions"]
        and rows[-1][5] == "35"
    )
    by_accept = await c.get(url, headers={**tenant.auth(), "Accept": "text/csv"})
    assert by_accept.headers["content-type"] == "text/csv; charset=utf-8"
    # the other merchant's statement is empty; it may not read this one; bad periods are refused
    other = await c.get(
        f"/v1/merchants/{shop.other_merchant['id']}/statement?from={today}&to={today}",
        headers=tenant.auth(shop.other_key),
    )
    assert other.json()["items"] == [] and other.json()["totals"] == {"redemptions": 0, "points": 0}
    problem(await c.get(url, headers=tenant.auth(shop.other_key)), 404, "not-found")
    problem(await c.get(url, headers=tenant.auth(resident)), 403, "forbidden")
    problem(
        await c.get(
            f"/v1/merchants/{shop.merchant['id']}/statement?from={today}&to={today - timedelta(days=1)}",
            headers=tenant.auth(),
        ),
        400,
        "invalid-request",
    )
    problem(
        await c.get(
            f"/v1/merchants/{shop.merchant['id']}/statement?from=2020-01-01&to={today}", headers=tenant.auth()
        ),
        400,
        "invalid-request",
    )
    await assert_audit_clean(engine)


async def test_fifty_members_race_for_ten_units(shop, tenant, engine):
    reward = await shop.reward(title="限量春联", price_points=5, stock=10)
    people = [await shop.resident(f"居民{i}", points=10) for i in range(50)]
    answers = await asyncio.gather(*(shop.redeem(reward, m, k) for m, k in people))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 10 and codes.count(409) == 40, codes
    assert {a.json()["reason"] for a in answers if a.status_code == 409} == {"out_of_stock"}
    after = await shop.get_reward(reward["id"])
    assert (after["stock"], after["held"]) == (0, 10)
    await assert_audit_clean(engine)


async def test_one_member_races_twenty_times_for_what_covers_three(shop, tenant, engine):
    member, resident = await shop.resident("抢购者", points=30)
    reward = await shop.reward(title="鸡蛋", price_points=10)
    answers = await asyncio.gather(*(shop.redeem(reward, member, resident) for _ in range(20)))
    codes = sorted(a.status_code for a in answers)
    assert codes.count(201) == 3 and codes.count(409) == 17, codes
    assert {a.json()["reason"] for a in answers if a.status_code == 409} == {"insufficient_points"}
    pts = await shop.points(member)
    assert pts["balance"] == 30 and pts["available"] == 0
    # and a limit under the same race
    limited = await shop.reward(title="牛奶", price_points=1, limit={"count": 2, "period": "month"})
    rich, rich_key = await shop.resident("富余者", points=100)
    answers = await asyncio.gather(*(shop.redeem(limited, rich, rich_key) for _ in range(10)))
    assert sorted(a.status_code for a in answers).count(201) == 2
    await assert_audit_clean(engine)


async def test_answers_match_the_documented_shapes(shop, tenant):
    import msgspec

    from timebank import schemas

    def conforms(body: Any, shape: Any) -> Any:
        return msgspec.convert(body, shape, strict=True)

    member, resident = await shop.resident("形", points=50)
    reward = conforms(
        await shop.reward(
            stock=3,
            limit={"count": 2, "period": "quarter"},
            star_prices={"2": 8},
            valid_until="2099-01-01T00:00:00+08:00",
        ),
        schemas.Reward,
    )
    conforms((await shop.c.get("/v1/rewards", headers=tenant.auth(resident))).json(), schemas.RewardPage)
    held = conforms((await shop.redeem({"id": reward.id}, member, resident)).json(), schemas.Redemption)
    conforms((await shop.confirm(held.id, code=held.code)).json(), schemas.Redemption)
    conforms(
        (await shop.c.get(f"/v1/redemptions/{held.id}", headers=tenant.auth())).json(), schemas.Redemption
    )
    conforms(
        (await shop.c.get(f"/v1/members/{member['id']}/redemptions", headers=tenant.auth(resident))).json(),
        schemas.RedemptionPage,
    )
    conforms(
        (
            await shop.c.post(f"/v1/members/{member['id']}/redemption-token", headers=tenant.auth(resident))
        ).json(),
        schemas.MemberToken,
    )
    conforms(await shop.points(member, resident), schemas.MemberPoints)
    today = datetime.now(SHANGHAI).date()
    conforms(
        (
            await shop.c.get(
                f"/v1/merchants/{shop.merchant['id']}/statement?from={today}&to={today}",
                headers=tenant.auth(),
            )
        ).json(),
        schemas.Statement,
    )

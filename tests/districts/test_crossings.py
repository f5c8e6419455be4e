"""Crossings between communities of a district, through the API, on real PostgreSQL.

What must hold: three balanced parts, each in its own ledger, committed together;
idempotent by key; limits never passed under concurrency; rounding never creates
points; clearing balance = position; no community (nor the district) reads another's
members; settlement (four eyes) brings positions back to zero; receipts verify offline.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from support import problem

from tests.districts.helpers import District, cross, new_district
from timebank.audits import run_audit
from timebank.core.terms import Asset
from timebank.districts import reference
from timebank.districts.audit import district_checks
from timebank.districts.crossing import amounts
from timebank.log import integration


async def get_json(d_or_t: Any, path: str, key: str | None = None) -> Any:
    r = await d_or_t.client.get(path, headers=d_or_t.auth(key))
    assert r.status_code == 200, r.text
    return r.json()


async def posted(tenant, account_id: str) -> int:
    return (await tenant.balance(account_id))["posted"]


async def district_audit(engine) -> dict[str, list[Any]]:
    report = await run_audit(engine, groups=(district_checks,))
    return report.results


async def audit_clean(engine) -> None:
    report = await run_audit(engine)
    wrong = {name: rows[:3] for name, rows in report.results.items() if rows}
    assert not wrong, wrong


async def test_crossings_between_three_communities_with_both_assets(client, engine):
    d = await new_district(client, engine, 3)
    a, b, c = d.communities
    await d.set_rate(b, c, 3, 2)  # 3 of B's points are worth 2 of C's (and A's 1 is worth C's 2)
    alice, bob, carol = await a.member("阿丽"), await b.member("鲍勃"), await c.member("卡罗")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 600)
    await b.fund(bob["accounts"]["POINT"], "POINT", 100)
    alice_key, bob_key = await a.key("resident", alice["id"]), await b.key("resident", bob["id"])

    # HOUR from a member of A to a member of B, one to one.
    r = await cross(
        a,
        alice_key,
        {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "HOUR", "amount": 90, "memo": "给爸爸"},
    )
    assert r.status_code == 201, r.text
    hours = r.json()
    assert (hours["amount_sent"], hours["amount_received"], hours["kept"]) == (90, 90, 0)
    assert await posted(a, alice["accounts"]["HOUR"]) == 510
    assert await posted(b, bob["accounts"]["HOUR"]) == 90

    # POINT from B to C at 3:2: 10 asked, 6 arrive, 9 leave, 1 stays with the sender.
    r = await cross(
        b, bob_key, {"to_community_id": c.id, "to_party_id": carol["id"], "asset": "POINT", "amount": 10}
    )
    assert r.status_code == 201, r.text
    points = r.json()
    assert (points["amount_sent"], points["amount_received"], points["kept"]) == (9, 6, 1)
    assert points["rate"] == {"from": 3, "to": 2}
    assert await posted(b, bob["accounts"]["POINT"]) == 91
    assert await posted(c, carol["accounts"]["POINT"]) == 6

    # From C's fund (an admin) to A's fund, POINT, default rate 1:1.
    await c.fund(c.accounts["fund"]["POINT"], "POINT", 50)
    r = await cross(
        c,
        None,
        {
            "to_community_id": a.id,
            "to_account_id": a.accounts["fund"]["POINT"],
            "asset": "POINT",
            "amount": 20,
            "from_account_id": c.accounts["fund"]["POINT"],
        },
    )
    assert r.status_code == 201, r.text

    positions = await d.positions()
    assert positions[(a.id, "HOUR")] == -90 and positions[(b.id, "HOUR")] == 90
    assert positions[(b.id, "POINT")] == -9 and positions[(c.id, "POINT")] == 6 - 20
    assert positions[(a.id, "POINT")] == 10  # C's 2 points per district point : A's 1

    # Each part is an ordinary transaction of its own ledger, naming the crossing and the others.
    for crossing in (hours, points):
        parts = [
            (
                d.communities[[t.id for t in d.communities].index(crossing["from"]["community_id"])],
                crossing["from"]["transaction_id"],
            ),
            (
                d.communities[[t.id for t in d.communities].index(crossing["to"]["community_id"])],
                crossing["to"]["transaction_id"],
            ),
        ]
        reasons = set()
        for tenant, tx_id in parts:
            tx = await get_json(tenant, f"/v1/transactions/{tx_id}")
            assert tx["kind"] == "crossing" and tx["community_id"] == tenant.id
            reasons.add(tx["reason"])
        district_tx = await get_json(d, f"/v1/transactions/{crossing['district']['transaction_id']}")
        assert district_tx["community_id"] == d.id
        reasons.add(district_tx["reason"])
        assert len(reasons) == 1
        ref = reference.parse(reasons.pop())
        assert ref is not None and str(ref.crossing_id) == crossing["id"]
        assert (ref.sent, ref.received) == (crossing["amount_sent"], crossing["amount_received"])
        # Both communities list it; the sender and the recipient read it; the district too.
        for tenant in (parts[0][0], parts[1][0]):
            listed = await get_json(tenant, "/v1/crossings")
            assert crossing["id"] in [x["id"] for x in listed["items"]]
        seen_by_district = await get_json(d, f"/v1/crossings/{crossing['id']}")
        assert seen_by_district["from"]["account_id"] is None and "memo" not in seen_by_district
    assert (await get_json(a, f"/v1/crossings/{hours['id']}", alice_key))["memo"] == "给爸爸"
    assert (await get_json(b, f"/v1/crossings/{hours['id']}", bob_key))["amount_received"] == 90
    assert (await client.get(f"/v1/crossings/{hours['id']}", headers=c.auth())).status_code == 404

    # The communities' points reports say what crossed (members' entries, like every figure there).
    today = datetime.now(UTC).date()
    period = f"from={today - timedelta(days=2)}&to={today + timedelta(days=2)}"
    assert (await get_json(b, f"/v1/reports/points?{period}"))["crossed_out"] == 9
    assert (await get_json(c, f"/v1/reports/points?{period}"))["crossed_in"] == 6
    await audit_clean(engine)


async def test_a_crossing_replays_by_key_and_refuses_another_body(client, engine):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await a.member("甲"), await b.member("乙")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 100)
    key = await a.key("resident", alice["id"])
    body = {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "HOUR", "amount": 30}
    first = await cross(a, key, body, idem="gift-1")
    again = await cross(a, key, body, idem="gift-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert await posted(b, bob["accounts"]["HOUR"]) == 30
    other = await cross(a, key, {**body, "amount": 31}, idem="gift-1")
    assert problem(other, 409, "idempotency-conflict")
    assert await posted(a, alice["accounts"]["HOUR"]) == 70


async def test_refusals_change_nothing(client, engine):
    d = await new_district(client, engine, 2, hour_limit=100)
    a, b = d.communities
    lone = await new_district(client, engine, 1)
    alice, bob = await a.member("甲"), await b.member("乙")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 500)
    key = await a.key("resident", alice["id"])
    base = {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "HOUR"}

    assert problem(await cross(a, key, {**base, "amount": 101}), 422, "crossing-limit")
    assert problem(await cross(a, key, {**base, "amount": 600}), 422, "crossing-limit")
    await d.set_limits(a, HOUR=1000)
    await d.set_limits(b, HOUR=1000)
    assert problem(await cross(a, key, {**base, "amount": 600}), 422, "insufficient-funds")
    outsider = lone.communities[0]
    assert problem(
        await cross(a, key, {**base, "to_community_id": outsider.id, "amount": 1}), 422, "not-in-district"
    )
    assert problem(
        await cross(a, key, {**base, "to_community_id": a.id, "amount": 1}), 400, "invalid-request"
    )
    # Someone else's account, or a system account of the other community, is refused.
    bob_key = await b.key("resident", bob["id"])
    assert problem(
        await cross(
            b,
            bob_key,
            {
                "to_community_id": a.id,
                "to_party_id": alice["id"],
                "asset": "HOUR",
                "amount": 1,
                "from_account_id": b.accounts["fund"]["HOUR"],
            },
        ),
        403,
        "forbidden",
    )
    assert problem(
        await cross(
            a,
            key,
            {
                "to_community_id": b.id,
                "to_account_id": b.accounts["issuance"]["HOUR"],
                "asset": "HOUR",
                "amount": 1,
            },
        ),
        400,
        "invalid-request",
    )
    positions = await d.positions()
    assert positions[(a.id, "HOUR")] == positions[(b.id, "HOUR")] == 0
    assert await posted(a, alice["accounts"]["HOUR"]) == 500
    listed = await get_json(a, "/v1/crossings")
    assert listed["items"] == []


async def test_thirty_two_concurrent_crossings_never_pass_a_limit(client, engine):
    d = await new_district(client, engine, 3, hour_limit=1000)
    a, b, c = d.communities
    senders = []
    for n in range(32):
        m = await a.member(f"志愿者{n}")
        await a.fund(m["accounts"]["HOUR"], "HOUR", 100)
        senders.append((m, await a.key("resident", m["id"])))
    bob, carol = await b.member("乙"), await c.member("丙")
    # Half go to B, half to C: A's limit (1000 out) binds, not the recipients' own.
    results = await asyncio.gather(
        *(
            cross(
                a,
                key,
                {
                    "to_community_id": (b if n % 2 else c).id,
                    "to_party_id": (bob if n % 2 else carol)["id"],
                    "asset": "HOUR",
                    "amount": 100,
                },
            )
            for n, (_, key) in enumerate(senders)
        )
    )
    codes = sorted(r.status_code for r in results)
    assert codes.count(201) == 10 and codes.count(422) == 22, codes
    assert all(problem(r, 422, "crossing-limit") for r in results if r.status_code == 422)
    positions = await d.positions()
    assert positions[(a.id, "HOUR")] == -1000
    assert positions[(b.id, "HOUR")] + positions[(c.id, "HOUR")] == 1000
    # And into one community: B's limit binds when everyone sends to B.
    d2 = await new_district(client, engine, 3, hour_limit=500)
    x, y, z = d2.communities
    target = await y.member("收")
    senders = []
    for n, home in enumerate([x, z] * 16):
        m = await home.member(f"送{n}")
        await home.fund(m["accounts"]["HOUR"], "HOUR", 100)
        senders.append((home, await home.key("resident", m["id"])))
    results = await asyncio.gather(
        *(
            cross(
                home,
                key,
                {"to_community_id": y.id, "to_party_id": target["id"], "asset": "HOUR", "amount": 100},
            )
            for home, key in senders
        )
    )
    assert sum(r.status_code == 201 for r in results) == 5
    assert (await d2.positions())[(y.id, "HOUR")] == 500
    assert await posted(y, target["accounts"]["HOUR"]) == 500
    assert not any((await district_audit(engine)).values())


@given(requested=st.integers(1, 10**9), rate_from=st.integers(1, 1000), rate_to=st.integers(1, 1000))
def test_the_rounding_rule_never_creates_points(requested: int, rate_from: int, rate_to: int) -> None:
    if requested * rate_to < rate_from:
        return  # nothing would arrive: refused (tested through the API below)
    amt = amounts(Asset.POINT, requested, rate_from, rate_to)
    assert amt.received * rate_from <= amt.sent * rate_to  # never more value out than in
    assert amt.sent <= requested and amt.kept >= 0
    assert (amt.received + 1) * rate_from > requested * rate_to  # as much arrives as the points allow
    # the sender keeps whatever did not buy a whole point, and no more
    assert amt.sent == -(-amt.received * rate_from // rate_to)


async def test_rounding_at_three_to_two_never_creates_points(client, engine):
    d = await new_district(client, engine, 2, point_limit=10**6)
    a, b = d.communities
    await d.set_rate(a, b, 3, 2)
    alice, bob = await a.member("甲"), await b.member("乙")
    await a.fund(alice["accounts"]["POINT"], "POINT", 100_000)
    alice_key, bob_key = await a.key("resident", alice["id"]), await b.key("resident", bob["id"])

    async def run(moves: list[tuple[bool, int]]) -> None:
        for to_b, amount in moves:
            before_a = await posted(a, alice["accounts"]["POINT"])
            before_b = await posted(b, bob["accounts"]["POINT"])
            sender, key, there, who = (a, alice_key, b, bob) if to_b else (b, bob_key, a, alice)
            r = await cross(
                sender,
                key,
                {"to_community_id": there.id, "to_party_id": who["id"], "asset": "POINT", "amount": amount},
            )
            after_a = await posted(a, alice["accounts"]["POINT"])
            after_b = await posted(b, bob["accounts"]["POINT"])
            if r.status_code != 201:
                assert r.status_code in (400, 422), r.text  # too few to arrive, or not enough points
                assert (after_a, after_b) == (before_a, before_b)
                continue
            x = r.json()
            # A's points are worth 2/3 of B's: in B's units, what exists never grows.
            assert (after_a * 2 + after_b * 3) <= (before_a * 2 + before_b * 3)
            if to_b:
                assert (before_a - after_a, after_b - before_b) == (x["amount_sent"], x["amount_received"])
                assert x["amount_received"] * 3 <= x["amount_sent"] * 2
            else:
                assert (before_b - after_b, after_a - before_a) == (x["amount_sent"], x["amount_received"])
                assert x["amount_received"] * 2 <= x["amount_sent"] * 3
            assert x["kept"] == amount - x["amount_sent"]

    await run([(True, 10), (True, 1), (True, 2), (False, 1), (True, 40), (False, 26), (False, 1)])
    rng = random.Random(18)  # a fixed random walk back and forth: the same every run
    await run([(rng.random() < 0.6, rng.randint(1, 40)) for _ in range(40)])
    too_few = await cross(
        a, alice_key, {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "POINT", "amount": 1}
    )
    assert problem(too_few, 400, "invalid-request")
    assert not any((await district_audit(engine)).values())


async def test_no_community_nor_the_district_reads_another_communitys_members(client, engine):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await a.member("甲"), await b.member("乙秘密")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 100)
    key = await a.key("resident", alice["id"])
    crossing = (
        await cross(
            a, key, {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "HOUR", "amount": 10}
        )
    ).json()
    # A's admin sees the district and the other communities by name, not B's people.
    seen = await get_json(a, "/v1/community/district")
    assert [x["id"] for x in seen["communities"]] == [b.id]
    assert "乙秘密" not in str(seen)
    for path in (
        f"/v1/members/{bob['id']}",
        f"/v1/accounts/{bob['accounts']['HOUR']}",
        f"/v1/transactions/{crossing['to']['transaction_id']}",
        f"/v1/transactions/{crossing['to']['transaction_id']}/receipt",
    ):
        assert (await client.get(path, headers=a.auth())).status_code == 404, path
    # The district admin reaches no community's routes and sees no member in what it reads.
    for path in (
        "/v1/members",
        f"/v1/members/{bob['id']}",
        f"/v1/accounts/{bob['accounts']['HOUR']}",
        "/v1/reports/service?from=2026-01-01&to=2026-02-01",
        "/v1/community",
    ):
        assert (await client.get(path, headers=d.auth())).status_code == 403, path
    for path in (
        "/v1/district",
        "/v1/district/positions",
        f"/v1/crossings/{crossing['id']}",
        "/v1/district/crossings?from=2026-01-01&to=2027-01-01",
    ):
        body = await get_json(d, path)
        assert "乙秘密" not in str(body) and bob["id"] not in str(body) and alice["id"] not in str(body), path
        assert bob["accounts"]["HOUR"] not in str(body), path
    # A district admin cannot make keys for a community, nor a community admin district keys.
    assert problem(
        await client.post("/v1/api-keys", json={"role": "admin"}, headers=d.auth()), 400, "invalid-request"
    )
    assert problem(
        await client.post("/v1/api-keys", json={"role": "district_admin"}, headers=a.auth()),
        400,
        "invalid-request",
    )
    # Nor consent for a community it is not: another community's admin cannot join B to a district.
    assert (await client.post("/v1/community/district", json={"district_id": d.id}, headers=a.auth())).json()[
        "status"
    ] == "joined"  # its own: already joined


async def test_joining_needs_both_consents(client, engine):
    d = await new_district(client, engine, 0)
    from tests.districts.helpers import new_tenant

    t = await new_tenant(client, engine)
    r = await client.post("/v1/community/district", json={"district_id": d.id}, headers=t.auth())
    assert r.status_code == 200 and r.json()["status"] == "asked"
    assert "clearing" not in (await get_json(t, "/v1/community"))["accounts"]
    assert (await get_json(d, "/v1/district/positions"))["items"] == []
    other = await new_district(client, engine, 0)
    r = await client.post("/v1/district/communities", json={"community_id": t.id}, headers=other.auth())
    assert problem(r, 409, "conflict")
    r = await client.post("/v1/district/communities", json={"community_id": t.id}, headers=d.auth())
    assert r.status_code == 200 and r.json()["status"] == "joined"
    assert set((await get_json(t, "/v1/community"))["accounts"]["clearing"]) == {"HOUR", "POINT"}
    # A resident may read the community's district, not consent for it.
    m = await t.member("居民")
    key = await t.key("resident", m["id"])
    assert (await get_json(t, "/v1/community/district", key))["status"] == "joined"
    assert (
        await client.post("/v1/community/district", json={"district_id": d.id}, headers=t.auth(key))
    ).status_code == 403


async def test_settlement_returns_positions_to_zero_with_four_eyes(client, engine):
    d = await new_district(client, engine, 3)
    a, b, c = d.communities
    await d.set_rate(a, c, 3, 2)
    alice, bob, carol = await a.member("甲"), await b.member("乙"), await c.member("丙")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 300)
    await a.fund(alice["accounts"]["POINT"], "POINT", 300)
    key = await a.key("resident", alice["id"])
    for there, who, asset, amount in ((b, bob, "HOUR", 120), (c, carol, "HOUR", 60), (c, carol, "POINT", 30)):
        r = await cross(
            a, key, {"to_community_id": there.id, "to_party_id": who["id"], "asset": asset, "amount": amount}
        )
        assert r.status_code == 201, r.text
    before = await d.positions()
    assert before[(a.id, "POINT")] == -30 and before[(c.id, "POINT")] == 20

    second = await d.second_admin_key()
    r = await client.post(
        "/v1/district/settlements", json={"from": "2026-01-01", "to": "2027-01-01"}, headers=d.auth()
    )
    assert r.status_code == 201, r.text
    proposal = r.json()
    assert proposal["status"] == "proposed"
    assert {(x["community_id"], x["asset"]): x["amount"] for x in proposal["lines"]} == {
        k: v for k, v in before.items() if v
    }
    totals = {(t["community_id"], t["asset"]): t for t in proposal["statement"]["by_community"]}
    assert totals[(a.id, "HOUR")]["sent"] == 180 and totals[(b.id, "HOUR")]["received"] == 120
    again = await client.post(
        "/v1/district/settlements", json={"from": "2026-01-01", "to": "2027-01-01"}, headers=d.auth(second)
    )
    assert problem(again, 409, "conflict")  # one open proposal at a time
    own = await client.post(f"/v1/district/settlements/{proposal['id']}/approve", headers=d.auth())
    assert problem(own, 403, "four-eyes")
    assert await d.positions() == before
    done = await client.post(f"/v1/district/settlements/{proposal['id']}/approve", headers=d.auth(second))
    assert done.status_code == 200, done.text
    settled = done.json()
    assert settled["status"] == "approved" and len(settled["parts"]) == 3
    assert all(v == 0 for v in (await d.positions()).values())
    for t in (a, b, c):
        for asset in ("HOUR", "POINT"):
            assert (await t.balance(t.accounts["clearing"][asset]))["posted"] == 0
    # Members keep what they received; the issuance accounts absorbed the difference.
    assert await posted(b, bob["accounts"]["HOUR"]) == 120
    twice = await client.post(f"/v1/district/settlements/{proposal['id']}/approve", headers=d.auth(second))
    assert problem(twice, 409, "conflict")
    nothing = await client.post(
        "/v1/district/settlements", json={"from": "2026-01-01", "to": "2027-01-01"}, headers=d.auth()
    )
    assert problem(nothing, 400, "invalid-request")
    listed = await get_json(d, "/v1/district/settlements")
    assert listed["items"][0]["id"] == proposal["id"]
    assert not any((await district_audit(engine)).values())


async def test_every_receipt_of_a_crossing_verifies_offline(client, engine, tmp_path):
    from tests.log.test_receipts_api import published, verify_cli

    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await a.member("甲"), await b.member("乙")
    await a.fund(alice["accounts"]["POINT"], "POINT", 50)
    key = await a.key("resident", alice["id"])
    crossing = (
        await cross(
            a, key, {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "POINT", "amount": 25}
        )
    ).json()
    district_log = _DistrictLog(d)
    # The worker's pass integrates every ledger's log, the district's too.
    app = client.app
    await integration.integrate_all(engine, app.state.signer, app.state.settings.log_origin)
    jwks = await published(client)
    for ledger, part in ((a, "from"), (district_log, "district"), (b, "to")):
        tx_id = crossing[part]["transaction_id"]
        r = await client.get(f"/v1/transactions/{tx_id}/receipt", headers=ledger.auth())
        assert r.status_code == 200, r.text
        receipt = r.json()
        ref = reference.parse(receipt["transaction"]["reason"])
        assert ref is not None and str(ref.crossing_id) == crossing["id"]
        result = verify_cli(tmp_path, receipt, jwks)
        assert result.exit_code == 0, result.output
        assert "included at index" in result.output


class _DistrictLog:
    """The district's ledger, read like a community's (its log is one more log)."""

    def __init__(self, d: District) -> None:
        self.d = d
        self.client = d.client

    def auth(self, key: str | None = None) -> dict[str, str]:
        return self.d.auth(key)


async def test_the_audit_fails_when_one_part_of_a_crossing_is_tampered_with(client, engine):
    from sqlalchemy import text

    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await a.member("甲"), await b.member("乙")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 50)
    key = await a.key("resident", alice["id"])
    crossing = (
        await cross(
            a, key, {"to_community_id": b.id, "to_party_id": bob["id"], "asset": "HOUR", "amount": 20}
        )
    ).json()
    name = "every crossing has its three parts with the amounts its rate gives"
    assert (await district_audit(engine))[name] == []
    # Tamper in a transaction that is rolled back: the audit's snapshot sees it, nothing stays.
    tx_id = crossing["to"]["transaction_id"]
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(
            text("UPDATE entries SET amount = 19 WHERE transaction_id = :t"), {"t": uuid.UUID(tx_id)}
        )
        from timebank.districts.audit import district_checks as checks

        results = await checks(conn)
        await conn.rollback()
    assert [row["crossing_id"] for row in results[name]] == [crossing["id"]]
    assert "receiving part" in results[name][0]["problem"]
    async with engine.connect() as conn:
        await conn.execute(text("SET LOCAL session_replication_role = replica"))
        await conn.execute(text("DELETE FROM entries WHERE transaction_id = :t"), {"t": uuid.UUID(tx_id)})
        await conn.execute(text("DELETE FROM transactions WHERE id = :t"), {"t": uuid.UUID(tx_id)})
        results = await checks(conn)
        await conn.rollback()
    assert "missing" in results[name][0]["problem"]
    assert (await district_audit(engine))[name] == []


async def test_no_cycle_of_crossings_gains_points(client, engine):
    """Rates are ratios of one value per community: A → B → C → A never ends with more."""
    d = await new_district(client, engine, 3, point_limit=10**6)
    a, b, c = d.communities
    for t, value in ((a, 1), (b, 2), (c, 4)):
        await d.set_points_value(t, value)
    ma, mb, mc = await a.member("甲"), await b.member("乙"), await c.member("丙")
    await a.fund(ma["accounts"]["POINT"], "POINT", 1000)
    keys = {
        a.id: await a.key("resident", ma["id"]),
        b.id: await b.key("resident", mb["id"]),
        c.id: await c.key("resident", mc["id"]),
    }
    holders = {a.id: ma, b.id: mb, c.id: mc}
    amount = 1000
    for here, there in ((a, b), (b, c), (c, a)):
        r = await cross(
            here,
            keys[here.id],
            {
                "to_community_id": there.id,
                "to_party_id": holders[there.id]["id"],
                "asset": "POINT",
                "amount": amount,
            },
        )
        assert r.status_code == 201, r.text
        amount = r.json()["amount_received"]
    assert amount <= 1000
    assert await posted(a, ma["accounts"]["POINT"]) <= 1000
    seen = await get_json(d, "/v1/district")
    assert {(x["a_points"], x["b_points"]) for x in seen["rates"]} == {
        (1, 2),
        (2, 1),
        (1, 4),
        (4, 1),
        (2, 4),
        (4, 2),
        (1, 2),
    } & {(x["a_points"], x["b_points"]) for x in seen["rates"]}


async def test_a_lowered_limit_lets_a_position_back_but_never_past_the_other_side(client, engine):
    d = await new_district(client, engine, 2, hour_limit=100)
    a, b = d.communities
    ma, mb = await a.member("甲"), await b.member("乙")
    await a.fund(ma["accounts"]["HOUR"], "HOUR", 500)
    await b.fund(mb["accounts"]["HOUR"], "HOUR", 500)
    ka, kb = await a.key("resident", ma["id"]), await b.key("resident", mb["id"])
    to_b = {"to_community_id": b.id, "to_party_id": mb["id"], "asset": "HOUR"}
    to_a = {"to_community_id": a.id, "to_party_id": ma["id"], "asset": "HOUR"}
    assert (await cross(a, ka, {**to_b, "amount": 100})).status_code == 201  # A at -100
    await d.set_limits(a, HOUR=50)
    await d.set_limits(b, HOUR=500)
    assert problem(await cross(a, ka, {**to_b, "amount": 1}), 422, "crossing-limit")  # further away: no
    assert (await cross(b, kb, {**to_a, "amount": 20}),)[0].status_code == 201  # back toward zero: yes
    # -80 + 180 would be +100, beyond ±50 on the other side: refused although smaller in size.
    assert problem(await cross(b, kb, {**to_a, "amount": 160}), 422, "crossing-limit")
    assert (await d.positions())[(a.id, "HOUR")] == -80


async def test_no_transfer_or_reversal_moves_one_part_of_a_crossing(client, engine):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    ma, mb = await a.member("甲"), await b.member("乙")
    await a.fund(ma["accounts"]["HOUR"], "HOUR", 100)
    key = await a.key("resident", ma["id"])
    crossing = (
        await cross(a, key, {"to_community_id": b.id, "to_party_id": mb["id"], "asset": "HOUR", "amount": 30})
    ).json()
    headers = {**a.auth(), "Idempotency-Key": str(uuid.uuid4())}
    r = await client.post(
        f"/v1/transactions/{crossing['from']['transaction_id']}/reverse",
        json={"reason": "撤销"},
        headers=headers,
    )
    assert problem(r, 409, "not-reversible")
    clearing = a.accounts["clearing"]["HOUR"]
    for body in (
        {
            "from_account": clearing,
            "to_account": ma["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 1,
            "kind": "adjustment",
        },
        {
            "from_account": a.accounts["issuance"]["HOUR"],
            "to_account": clearing,
            "asset": "HOUR",
            "amount": 1,
            "kind": "adjustment",
        },
    ):
        assert problem(await a.transfer(body), 403, "forbidden")
    r = await client.post(
        "/v1/transfers/batch",
        headers=a.auth(),
        json={
            "transfers": [
                {
                    "idempotency_key": "x",
                    "from_account": clearing,
                    "to_account": ma["accounts"]["HOUR"],
                    "asset": "HOUR",
                    "amount": 1,
                    "kind": "adjustment",
                }
            ]
        },
    )
    assert r.json()["results"][0]["problem"]["status"] == 403
    assert not any((await district_audit(engine)).values())

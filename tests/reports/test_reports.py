"""Reports through the HTTP API (``/v1/reports``): a concrete history with exact figures,
and a property test: for random small histories, every report total equals a sum over
the ledger's entries, written here in plain SQL independently of ``timebank.reports``."""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest_asyncio
from conftest import Tenant
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import problem

from timebank import app as app_module
from timebank.community.service import create_community
from timebank.core.settings import Settings
from timebank.points.expiry import expire_points
from timebank.reports.controllers import ReportController
from timebank.reports.rollups import fold

DAY = datetime(2026, 11, 2, tzinfo=UTC)  # a past Monday: the service's own time (not the ledger's)
CATEGORIES = ("volunteer_service", "neighbour_aid", "day_care", "legal_aid", "culture_health")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def client(
    database_url: str, settings: Settings, engine: AsyncEngine
) -> AsyncIterator[httpx.AsyncClient]:
    """The app with the reports' routes (until app.py lists ``ReportController`` itself)."""
    routes = app_module.ROUTES
    added = ReportController not in routes
    if added:
        routes.append(ReportController)
    try:
        app = app_module.create_app(settings, database_url)
    finally:
        if added:
            routes.remove(ReportController)
    app.state.engine = engine
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://timebank.test", timeout=60
    ) as c:
        c.app = app  # type: ignore[attr-defined]
        yield c


async def new_tenant(client: httpx.AsyncClient, engine: AsyncEngine) -> Tenant:
    async with engine.begin() as conn:
        created = await create_community(conn, f"报表社区 {uuid.uuid4().hex[:6]}")
    t = Tenant(client, created["community_id"], created["admin_key"])
    t.accounts = (await client.get("/v1/community", headers=t.auth())).json()["accounts"]
    return t


def period() -> dict[str, str]:
    """A period holding today wherever the community is: [today - 2, today + 2)."""
    today = datetime.now(UTC).date()
    return {"from": (today - timedelta(days=2)).isoformat(), "to": (today + timedelta(days=2)).isoformat()}


class History:
    """A community with two organisations, two merchants, members and helpers that act
    through the API as its admins, recorders, merchants and residents."""

    def __init__(self, t: Tenant, engine: AsyncEngine) -> None:
        self.t, self.c, self.engine = t, t.client, engine
        self.slot = 0  # each record gets its own hour of DAY, so none overlaps another

    async def setup(self, members: int = 3) -> History:
        t = self.t
        self.orgs = [await t.party("organisations", n) for n in ("华锦志愿服务队", "邻里互助会")]
        self.recorders = [await t.key("recorder", o["id"]) for o in self.orgs]
        self.merchants = [await t.party("merchants", n) for n in ("爱心超市", "理发店")]
        self.merchant_keys = [await t.key("merchant", m["id"]) for m in self.merchants]
        self.second_admin = await t.key("admin")
        self.members = [await t.member(f"居民{i}") for i in range(members)]
        self.residents = [await t.key("resident", m["id"]) for m in self.members]
        self.rewards = [
            await self.reward(k, price) for k, price in zip(self.merchant_keys, (30, 7), strict=True)
        ]
        return self

    async def policy(self, **changes: Any) -> None:
        current = (await self.c.get("/v1/community/policy", headers=self.t.auth())).json()["policy"]
        # The history's records are entered by hand (back-filled, 补录): they earn points here.
        changes = {"backfilled_points": True, **changes}
        r = await self.c.put("/v1/community/policy", json={**current, **changes}, headers=self.t.auth())
        assert r.status_code == 200, r.text

    async def reward(self, key: str, price: int) -> dict[str, Any]:
        r = await self.c.post(
            "/v1/rewards", json={"title": f"礼品 {price}", "price_points": price}, headers=self.t.auth(key)
        )
        assert r.status_code == 201, r.text
        return r.json()

    async def serve(self, member: int, org: int, category: str, minutes: int) -> dict[str, Any]:
        """Record and approve a service; the approval's answer (record and transaction)."""
        start = DAY + timedelta(hours=5 * self.slot)
        self.slot += 1
        body = {
            "member_id": self.members[member]["id"],
            "activity": "陪老人聊天",
            "category": category,
            "place": "华锦社区",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(minutes=minutes)).isoformat(),
        }
        r = await self.c.post("/v1/service-records", json=body, headers=self.t.auth(self.recorders[org]))
        assert r.status_code == 201, r.text
        r = await self.c.post(
            f"/v1/service-records/{r.json()['id']}/approve",
            headers={**self.t.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code in (200, 201), r.text
        return r.json()

    async def reverse(self, record_id: str) -> bool:
        """A correction with four eyes: asked by the admin, approved by the second admin;
        False if the ledger refuses it (the volunteer has spent what it would take back)."""
        r = await self.c.post(
            f"/v1/service-records/{record_id}/reversal", json={"reason": "重复登记"}, headers=self.t.auth()
        )
        assert r.status_code == 201, r.text
        r = await self.c.post(
            f"/v1/service-records/{record_id}/reversal/approve",
            headers={**self.t.auth(self.second_admin), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code in (201, 422), r.text
        return r.status_code == 201

    async def redeem(self, member: int, shop: int) -> bool:
        """Redeem the shop's reward and have the merchant confirm it; False if refused."""
        r = await self.c.post(
            "/v1/redemptions",
            json={"reward_id": self.rewards[shop]["id"], "member_id": self.members[member]["id"]},
            headers={**self.t.auth(self.residents[member]), "Idempotency-Key": str(uuid.uuid4())},
        )
        if r.status_code != 201:
            return False
        held = r.json()
        r = await self.c.post(
            f"/v1/redemptions/{held['id']}/confirm",
            json={"code": held["code"]},
            headers=self.t.auth(self.merchant_keys[shop]),
        )
        assert r.status_code == 201, r.text
        return True

    async def donate(self, member: int, amount: int) -> bool:
        r = await self.t.transfer(
            {
                "from_account": self.members[member]["accounts"]["POINT"],
                "to_account": self.t.accounts["fund"]["POINT"],
                "asset": "POINT",
                "amount": amount,
                "kind": "donation",
            },
            key=self.residents[member],
        )
        return r.status_code == 201

    async def adjust(self, member: int, amount: int) -> None:
        """An admin's adjustment: points from the issuance account (or back to it, if negative)."""
        mine, issuance = self.members[member]["accounts"]["POINT"], self.t.accounts["issuance"]["POINT"]
        r = await self.t.transfer(
            {
                "from_account": issuance if amount > 0 else mine,
                "to_account": mine if amount > 0 else issuance,
                "asset": "POINT",
                "amount": abs(amount),
                "kind": "adjustment",
            }
        )
        assert r.status_code == 201 or amount < 0, r.text

    async def expire(self, days: int = 400) -> dict[str, Any]:
        """The points expiry as of ``days`` from now (every lot due by then expires)."""
        return await expire_points(
            self.engine, uuid.UUID(self.t.id), datetime.now(UTC) + timedelta(days=days)
        )

    async def report(self, name: str, key: str | None = None, **params: str) -> dict[str, Any]:
        r = await self.c.get(f"/v1/reports/{name}", params=params or period(), headers=self.t.auth(key))
        assert r.status_code == 200, r.text
        return r.json()


def groups(rows: list[dict[str, Any]]) -> dict[str, tuple[int, int, int, int]]:
    return {
        g["key"]: (g["credited_minutes"], g["reversed_minutes"], g["net_minutes"], g["records"]) for g in rows
    }


async def test_a_history_reports_exact_figures(client, engine):
    h = await History(await new_tenant(client, engine), engine).setup()
    await h.policy(star_thresholds_hours=[1, 3, 6, 10, 15])
    a, b = (o["id"] for o in h.orgs)
    # m0: 120 min at A (0 stars before: 20 points), 60 min at B (1 star: 60 × 10/60 × 1.05 = 10)
    assert (await h.serve(0, 0, "volunteer_service", 120))["record"]["points"] == 20
    assert (await h.serve(0, 1, "neighbour_aid", 60))["record"]["points"] == 10
    # m1: 60 min at B (10 points), 60 min at A (1 star: 10 points), then corrected
    assert (await h.serve(1, 1, "neighbour_aid", 60))["record"]["points"] == 10
    corrected = await h.serve(1, 0, "day_care", 60)
    assert corrected["record"]["points"] == 10
    assert await h.reverse(corrected["record"]["id"])
    # m2 never serves: 100 points by an adjustment, redeems the supermarket's reward (30)
    await h.adjust(2, 100)
    assert await h.redeem(2, 0)
    assert await h.donate(0, 5)
    # every lot expires: m0 30 - 5, m1 10 (its corrected lot went with the reversal), m2 70
    assert (await h.expire())["points"] == 25 + 10 + 70
    await h.policy(points_expiry={"kind": "months_after_credit", "months": 1})
    await h.adjust(2, 7)

    s = await h.report("service")
    assert s["from"] == period()["from"] and s["to"] == period()["to"] and s["generated_at"]
    assert s["totals"] == {
        "credited_minutes": 300,
        "reversed_minutes": 60,
        "net_minutes": 240,
        "records": 4,
        "active_volunteers": 2,
        "new_volunteers": 2,
    }
    assert groups(s["by_organisation"]) == {a: (180, 60, 120, 2), b: (120, 0, 120, 2)}
    assert {g["key"]: g["name"] for g in s["by_organisation"]} == {a: "华锦志愿服务队", b: "邻里互助会"}
    assert groups(s["by_category"]) == {
        "volunteer_service": (120, 0, 120, 1),
        "neighbour_aid": (120, 0, 120, 2),
        "day_care": (60, 60, 0, 1),
    }
    assert {g["key"]: g["name"] for g in s["by_category"]}["day_care"] == "日间照料"
    assert sum(g["net_minutes"] for g in s["by_month"]) == 240
    # m0: 3 hours (2 stars), m1: 1 hour (1 star)
    assert [x["volunteers"] for x in s["star_levels"]] == [0, 1, 1, 0, 0, 0]

    p = await h.report("points")
    figures = {k: p[k] for k in ("issued", "service_reversed", "redeemed", "expired", "donated", "adjusted")}
    assert figures == {
        "issued": 50,
        "service_reversed": 10,
        "redeemed": 30,
        "expired": 105,
        "donated": 5,
        "adjusted": 107,
    }
    assert (p["outstanding_at_start"], p["outstanding"], p["members_net_change"]) == (0, 7, 7)
    expiring = {x["days"]: x["points"] for x in p["expiring"]}
    assert expiring[90] == 7 and expiring[30] in (0, 7)
    shop = h.merchants[0]
    assert p["redeemed_by_merchant"] == [
        {"merchant_id": shop["id"], "name": "爱心超市", "redemptions": 1, "points": 30}
    ]
    assert p["redeemed_by_reward"] == [
        {
            "reward_id": h.rewards[0]["id"],
            "merchant_id": shop["id"],
            "title": "礼品 30",
            "redemptions": 1,
            "points": 30,
        }
    ]

    m = await h.report("merchants")
    assert {
        x["name"]: (x["redemptions"], x["redeemed_points"], x["points_received"]) for x in m["merchants"]
    } == {
        "爱心超市": (1, 30, 30),
        "理发店": (0, 0, 0),
    }
    assert m["totals"] == {"redemptions": 1, "redeemed_points": 30, "points_received": 30}

    # a period before any of it is empty, and nothing is counted twice across periods
    today = datetime.now(UTC).date()
    before = {"from": (today - timedelta(days=40)).isoformat(), "to": (today - timedelta(days=2)).isoformat()}
    assert (await h.report("service", **before))["totals"]["credited_minutes"] == 0
    early = await h.report("points", **before)
    assert (early["issued"], early["outstanding"], early["outstanding_at_start"]) == (0, 0, 0)

    # the auditor reads them too; a resident or a merchant does not; a period is checked
    auditor = await h.t.key("auditor", (await h.t.member("监事"))["id"])
    assert (await h.report("merchants", auditor))["totals"]["redemptions"] == 1
    for name in ("service", "points", "merchants"):
        for key in (h.residents[0], h.merchant_keys[0]):
            problem(
                await client.get(f"/v1/reports/{name}", params=period(), headers=h.t.auth(key)),
                403,
                "forbidden",
            )
    bad = {"from": today.isoformat(), "to": today.isoformat()}
    problem(await client.get("/v1/reports/points", params=bad, headers=h.t.auth()), 400, "invalid-request")
    r = await client.get("/v1/reports/points", params={"from": today.isoformat()}, headers=h.t.auth())
    assert r.status_code == 400


# --- the property: every total is a sum over the entries ------------------------------

# Plain SQL over entries, written independently of timebank.reports: the period's posted
# entries, each with its transaction's kind, its original's kind (a reversal), and the
# account's holder.
ENTRIES_SQL = text(
    """
SELECT e.transaction_id, e.asset, e.direction, e.amount, t.kind, t.reverses_id, o.kind AS reverses_kind,
       a.system_role, a.party_id, p.kind AS party_kind
FROM entries e JOIN transactions t ON t.id = e.transaction_id
LEFT JOIN transactions o ON o.id = t.reverses_id
JOIN accounts a ON a.id = e.account_id LEFT JOIN parties p ON p.id = a.party_id
WHERE e.community_id = :c AND e.layer = 'posted'
"""
)
RECORDS_SQL = text(
    "SELECT transaction_id, member_id, organisation_id, category FROM service_records "
    "WHERE community_id = :c AND transaction_id IS NOT NULL"
)
LOTS_SQL = text(
    "SELECT expires_at, remaining FROM points_lots WHERE community_id = :c AND reversed_at IS NULL"
)
MERCHANT_OF_REDEMPTION = text(
    "SELECT resolution_id, merchant_id, reward_id FROM redemptions WHERE community_id = :c"
)


async def sums_over_entries(engine: AsyncEngine, community_id: str) -> dict[str, Any]:
    """Every report total, summed here row by row from the entries of the whole history
    (the test's period holds all of it)."""
    c = uuid.UUID(community_id)
    async with engine.connect() as conn:
        entries = (await conn.execute(ENTRIES_SQL, {"c": c})).all()
        records = {r.transaction_id: r for r in (await conn.execute(RECORDS_SQL, {"c": c})).all()}
        redemptions = {
            r.resolution_id: r for r in (await conn.execute(MERCHANT_OF_REDEMPTION, {"c": c})).all()
        }
        lots = (await conn.execute(LOTS_SQL, {"c": c})).all()
    out: dict[str, Any] = dict.fromkeys(
        (
            "credited",
            "reversed",
            "issued",
            "service_reversed",
            "redeemed",
            "expired",
            "donated",
            "adjusted",
            "members",
        ),
        0,
    )
    by_org: dict[str, int] = {}
    by_category: dict[str, int] = {}
    by_merchant: dict[str, int] = {}
    received: dict[str, int] = {}
    volunteers: set[Any] = set()
    lifetime: dict[Any, int] = {}
    for e in entries:
        signed = e.amount if e.direction == "credit" else -e.amount
        member = e.party_kind == "member"
        if e.asset == "HOUR":
            record = records.get(e.transaction_id if e.kind == "service_credit" else e.reverses_id)
            if (
                record is None
                or e.party_id != record.member_id
                or e.kind not in ("service_credit", "reversal")
            ):
                continue
            key = "credited" if e.kind == "service_credit" else "reversed"
            out[key] += e.amount
            by_org[str(record.organisation_id)] = by_org.get(str(record.organisation_id), 0) + signed
            by_category[record.category] = by_category.get(record.category, 0) + signed
            lifetime[record.member_id] = lifetime.get(record.member_id, 0) + signed
            if e.kind == "service_credit":
                volunteers.add(record.member_id)
            continue
        if member:
            out["members"] += signed
        if e.kind == "service_credit" and member:
            out["issued"] += signed
        elif e.kind == "reversal" and e.reverses_kind == "service_credit" and member:
            out["service_reversed"] -= signed
        elif e.kind == "expiry" and e.system_role == "expired":
            out["expired"] += signed
        elif e.kind == "donation" and e.system_role == "fund":
            out["donated"] += signed
        elif e.kind == "adjustment" and member:
            out["adjusted"] += signed
        if e.party_kind == "merchant" and e.direction == "credit":
            received[str(e.party_id)] = received.get(str(e.party_id), 0) + e.amount
            if e.kind == "redemption":
                out["redeemed"] += e.amount
                merchant = str(redemptions[e.transaction_id].merchant_id)
                by_merchant[merchant] = by_merchant.get(merchant, 0) + e.amount
    now = datetime.now(UTC)
    out.update(
        by_org=by_org,
        by_category=by_category,
        by_merchant=by_merchant,
        received=received,
        volunteers=len(volunteers),
        lifetime=lifetime,
        expiring_90=sum(x.remaining for x in lots if now < x.expires_at <= now + timedelta(days=90)),
    )
    return out


SERVE = st.tuples(
    st.just("serve"),
    st.integers(0, 2),
    st.integers(0, 1),
    st.sampled_from(CATEGORIES),
    st.sampled_from([30, 60, 90, 120, 240]),
)
STEP = st.one_of(
    SERVE,
    SERVE,
    st.tuples(st.just("redeem"), st.integers(0, 2), st.integers(0, 1)),
    st.tuples(st.just("reverse"), st.integers(0, 20)),
    st.tuples(st.just("donate"), st.integers(0, 2), st.integers(1, 40)),
    st.tuples(st.just("adjust"), st.integers(0, 2), st.sampled_from([-25, -5, 10, 40])),
    st.tuples(st.just("expire")),
    st.tuples(st.just("policy"), st.integers(1, 3)),
    st.tuples(st.just("fold")),
)


@settings(
    max_examples=int(os.environ.get("REPORTS_EXAMPLES", "12")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    print_blob=True,
)
@given(steps=st.lists(STEP, min_size=3, max_size=12))
async def test_every_report_total_is_a_sum_over_the_entries(client, engine, steps):
    h = await History(await new_tenant(client, engine), engine).setup()
    await h.policy(star_thresholds_hours=[1, 3, 6, 10, 15])
    for member in range(len(h.members)):  # something to redeem and donate from the start
        await h.adjust(member, 40)
    approved: list[str] = []
    for step in steps:
        done = True
        match step:
            case ("serve", member, org, category, minutes):
                approved.append((await h.serve(member, org, category, minutes))["record"]["id"])
            case ("redeem", member, shop):
                done = await h.redeem(member, shop)
            case ("reverse", pick):
                done = bool(approved) and await h.reverse(approved.pop(pick % len(approved)))
            case ("donate", member, amount):
                done = await h.donate(member, amount)
            case ("adjust", member, amount):
                await h.adjust(member, amount)
            case ("expire",):
                done = (await h.expire())["points"] > 0
            case ("fold",):  # the minute job: the rollups' rows folded, no sum changed
                await fold(engine)
            case ("policy", months):  # lots credited from now on expire within ~months
                await h.policy(points_expiry={"kind": "months_after_credit", "months": months})
        if done:
            event(step[0])  # what the histories exercised (--hypothesis-show-statistics)

    want = await sums_over_entries(engine, h.t.id)
    s = await h.report("service")
    assert s["totals"]["credited_minutes"] == want["credited"]
    assert s["totals"]["reversed_minutes"] == want["reversed"]
    assert s["totals"]["net_minutes"] == want["credited"] - want["reversed"]
    assert s["totals"]["active_volunteers"] == s["totals"]["new_volunteers"] == want["volunteers"]
    assert {g["key"]: g["net_minutes"] for g in s["by_organisation"]} == want["by_org"]
    assert {g["key"]: g["net_minutes"] for g in s["by_category"]} == want["by_category"]
    assert sum(g["net_minutes"] for g in s["by_month"]) == want["credited"] - want["reversed"]
    assert sum(x["volunteers"] for x in s["star_levels"]) == len(want["lifetime"])
    # everyone started the period at level 0: who reached a level is everyone above 0
    levels = {str(m): sum(1 for h in (1, 3, 6, 10, 15) if n >= h * 60) for m, n in want["lifetime"].items()}
    assert {c["member_id"]: (c["from_level"], c["to_level"]) for c in s["star_crossings"]} == {
        m: (0, n) for m, n in levels.items() if n > 0
    }

    p = await h.report("points")
    for figure in ("issued", "service_reversed", "redeemed", "expired", "donated", "adjusted"):
        assert p[figure] == want[figure], figure
    assert p["members_net_change"] == p["outstanding"] == want["members"]
    assert p["outstanding_at_start"] == 0
    assert {x["merchant_id"]: x["points"] for x in p["redeemed_by_merchant"]} == want["by_merchant"]
    assert sum(x["points"] for x in p["redeemed_by_reward"]) == want["redeemed"]
    assert {x["days"]: x["points"] for x in p["expiring"]}[90] == want["expiring_90"]

    m = await h.report("merchants")
    assert m["totals"]["redeemed_points"] == want["redeemed"]
    assert {x["merchant_id"]: x["redeemed_points"] for x in m["merchants"] if x["redeemed_points"]} == want[
        "by_merchant"
    ]
    assert {x["merchant_id"]: x["points_received"] for x in m["merchants"] if x["points_received"]} == want[
        "received"
    ]
    # the members' balances, read account by account, are the outstanding points
    balances = [await h.t.balance(x["accounts"]["POINT"]) for x in h.members]
    assert sum(b["posted"] for b in balances) == p["outstanding"]

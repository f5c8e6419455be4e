"""Volunteer service records through the HTTP API: policy, recording rules, approval,
corrections with four eyes, star levels, CSV import and every role's permissions."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from support import problem

DAY = datetime(2026, 11, 2, tzinfo=UTC)  # a past Monday: 08:00 in Asia/Shanghai is 00:00 UTC


def at(hours: float, day: datetime = DAY) -> str:
    return (day + timedelta(hours=hours)).isoformat()


class Volunteering:
    """A community with an organisation, its recorder key and a volunteer."""

    def __init__(self, tenant: Any) -> None:
        self.t = tenant

    async def setup(self) -> Volunteering:
        self.org = await self.t.party("organisations", "华锦志愿服务队")
        self.recorder = await self.t.key("recorder", self.org["id"])
        self.member = await self.t.member("王阿姨")
        self.resident = await self.t.key("resident", self.member["id"])
        return self

    def body(self, start: float, end: float, **extra: Any) -> dict[str, Any]:
        return {
            "member_id": self.member["id"],
            "activity": "陪老人聊天",
            "category": "volunteer_service",
            "place": "华锦社区日间照料中心",
            "started_at": at(start),
            "ended_at": at(end),
            **extra,
        }

    async def record(self, start: float, end: float, key: str | None = None, **extra: Any) -> Any:
        return await self.t.client.post(
            "/v1/service-records",
            json=self.body(start, end, **extra),
            headers=self.t.auth(key or self.recorder),
        )

    async def approve(self, record_id: str, key: str | None = None, idem: str | None = None) -> Any:
        return await self.t.client.post(
            f"/v1/service-records/{record_id}/approve",
            headers={**self.t.auth(key), "Idempotency-Key": idem or str(uuid.uuid4())},
        )

    async def standing(self) -> dict[str, Any]:
        r = await self.t.client.get(f"/v1/members/{self.member['id']}", headers=self.t.auth())
        assert r.status_code == 200, r.text
        return r.json()


@pytest.fixture
async def vol(tenant: Any) -> Volunteering:
    return await Volunteering(tenant).setup()


async def test_policy_is_versioned_and_only_admins_change_it(vol):
    t = vol.t
    r = await t.client.get("/v1/community/policy", headers=t.auth(vol.resident))
    assert r.status_code == 200
    default = r.json()
    assert default["version"] == 0 and default["policy"]["points_per_hour"] == 10
    assert default["policy"]["star_thresholds_hours"] == [100, 300, 600, 1000, 1500]
    assert default["policy"]["daily_cap_minutes"] == 720
    assert [c["name"] for c in default["policy"]["categories"]] == [
        "志愿服务",
        "邻里互助",
        "日间照料",
        "法律援助",
        "文体健康",
    ]
    new = {**default["policy"], "points_per_hour": 12}
    assert (
        await t.client.put("/v1/community/policy", json=new, headers=t.auth(vol.recorder))
    ).status_code == 403
    r = await t.client.put("/v1/community/policy", json=new, headers=t.auth())
    assert r.status_code == 200 and r.json()["version"] == 1 and r.json()["policy"]["points_per_hour"] == 12
    r = await t.client.put("/v1/community/policy", json={"daily_cap_minutes": 480}, headers=t.auth())
    assert r.json()["version"] == 2 and r.json()["policy"]["points_per_hour"] == 10  # omitted: the default
    for bad in (
        {"points_per_hour": -1},
        {"star_thresholds_hours": [5, 3, 600, 1000, 1500]},
        {"tier_multipliers": {"0": "x"}},
        {"points_per_hour": "10"},
        {"nonsense": 1},
        {"trusted_organisations": [str(uuid.uuid4())]},
    ):
        problem(
            await t.client.put("/v1/community/policy", json=bad, headers=t.auth()), 400, "invalid-request"
        )
    history = (await t.client.get("/v1/community/policy/versions", headers=t.auth())).json()["items"]
    assert [v["version"] for v in history] == [1, 2] and all(
        v["changed_by"] and v["changed_at"] for v in history
    )
    assert (await t.client.get("/v1/community/policy", headers=t.auth())).json()["version"] == 2


async def test_recording_rules(vol):
    t = vol.t
    r = await vol.record(1, 3, beneficiary="李爷爷", content="读报", external_ref="A-1")
    assert r.status_code == 201, r.text
    rec = r.json()
    assert rec["status"] == "submitted" and rec["minutes"] == 120 and rec["organisation_id"] == vol.org["id"]
    # The same external_ref of the same organisation is the same record.
    again = await vol.record(1, 3, beneficiary="李爷爷", content="读报", external_ref="A-1")
    assert again.status_code == 200 and again.json()["id"] == rec["id"] and again.json()["duplicate"] is True
    # Category by its Chinese name.
    r = await vol.record(4, 5, category="邻里互助")
    assert r.status_code == 201 and r.json()["category"] == "neighbour_aid"
    cases = [
        ({"start": 7, "end": 6}, "after started_at"),
        ({"start": -1, "end": 2 + 24 * 3650}, "future"),
        ({"start": 10, "end": 11, "category": "跳舞"}, "categories"),
        ({"start": 2, "end": 4}, "overlaps"),
        ({"start": 6, "end": 6.005}, "rounding unit"),
    ]
    for case, words in cases:
        start, end = case.pop("start"), case.pop("end")
        body = problem(await vol.record(start, end, **case), 422, "invalid-service-record")
        assert words in body["detail"], (case, body)
    # The daily cap (12 h by default) counts the community's local day.
    assert (await vol.record(6, 13)).status_code == 201  # 3 h so far + 7 h = 10 h on Nov 2 (local)
    body = problem(await vol.record(13, 15.5), 422, "invalid-service-record")
    assert "daily cap" in body["detail"] and "2026-11-02" in body["detail"]
    assert (await vol.record(13, 15)).status_code == 201  # exactly 12 h
    # A record across local midnight counts on both days.
    assert (await vol.record(39, 41)).status_code == 201  # Nov 3 23:00 - Nov 4 01:00 local
    assert (await vol.record(41, 52)).status_code == 201  # 12 h on Nov 4 with the hour before
    body = problem(await vol.record(52, 52.5), 422, "invalid-service-record")
    assert "2026-11-04" in body["detail"]
    # Recorders record for their own organisation only; admins name it.
    other = await t.party("organisations", "别的队")
    body = problem(await vol.record(20, 21, organisation_id=other["id"]), 422, "invalid-service-record")
    assert "own organisation" in body["detail"]
    body = problem(await vol.record(20, 21, key=t.admin_key), 422, "invalid-service-record")
    assert "organisation_id" in body["detail"]
    assert (await vol.record(20, 21, key=t.admin_key, organisation_id=other["id"])).status_code == 201
    # Other roles do not record.
    assert (await vol.record(22, 23, key=vol.resident)).status_code == 403
    # Unknown member, bad JSON types: clear problems, nothing written.
    problem(
        await t.client.post(
            "/v1/service-records",
            json={**vol.body(30, 31), "member_id": str(uuid.uuid4())},
            headers=t.auth(vol.recorder),
        ),
        422,
        "invalid-service-record",
    )
    problem(
        await t.client.post(
            "/v1/service-records",
            json={**vol.body(30, 31), "started_at": "yesterday"},
            headers=t.auth(vol.recorder),
        ),
        400,
        "invalid-request",
    )


async def test_approval_credits_hours_and_points_once(vol, engine):
    t = vol.t
    # records entered by hand are back-filled (补录): they earn points when the policy says so
    r = await t.client.put("/v1/community/policy", json={"backfilled_points": True}, headers=t.auth())
    assert r.status_code == 200, r.text
    rec = (await vol.record(1, 2.5)).json()  # 90 minutes
    assert (await vol.approve(rec["id"], key=vol.recorder)).status_code == 403
    r = await vol.approve(rec["id"])
    assert r.status_code == 201, r.text
    decision = r.json()
    assert decision["record"]["status"] == "approved" and decision["record"]["points"] == 15  # 90 min × 10/h
    tx = decision["transaction"]
    assert tx["kind"] == "service_credit" and "set" in tx
    assert {(e["asset"], e["direction"], e["amount"]) for e in tx["entries"]} == {
        ("HOUR", "debit", 90),
        ("HOUR", "credit", 90),
        ("POINT", "debit", 15),
        ("POINT", "credit", 15),
    }
    balances = (await t.client.get(f"/v1/members/{vol.member['id']}/balances", headers=t.auth())).json()
    assert balances["HOUR"]["posted"] == 90 and balances["POINT"]["posted"] == 15
    async with engine.connect() as conn:
        lot = (
            await conn.exec_driver_sql(
                f"SELECT points, credited_at, expires_at FROM points_lots WHERE record_id = '{rec['id']}'"
            )
        ).one()
    assert lot.points == 15 and 364 <= (lot.expires_at - lot.credited_at).days <= 366  # 12 months
    problem(await vol.approve(rec["id"]), 409, "record-already-resolved")
    standing = await vol.standing()
    assert standing["lifetime_minutes"] == 90 and standing["star_level"] == 0
    assert standing["minutes_to_next_level"] == 100 * 60 - 90


async def test_concurrent_approvals_make_exactly_one_transaction(vol, engine):
    rec = (await vol.record(1, 2)).json()
    results = await asyncio.gather(*(vol.approve(rec["id"]) for _ in range(8)))
    assert sorted(r.status_code for r in results) == [201] + [409] * 7
    async with engine.connect() as conn:
        n = (
            await conn.exec_driver_sql(
                "SELECT count(*) FROM transactions t JOIN entries e ON e.transaction_id = t.id "
                f"WHERE t.kind = 'service_credit' AND e.account_id = '{vol.member['accounts']['HOUR']}'"
            )
        ).scalar_one()
    assert n == 1


async def test_an_approval_replays_with_its_idempotency_key(vol):
    rec = (await vol.record(1, 2)).json()
    idem = str(uuid.uuid4())
    first = await vol.approve(rec["id"], idem=idem)
    again = await vol.approve(rec["id"], idem=idem)
    assert first.status_code == again.status_code == 201
    assert again.headers.get("Idempotent-Replayed") == "true" and again.json() == first.json()
    # Without a key, a retry by the same admin replays too; another admin hears it is decided.
    other = (await vol.record(3, 4)).json()
    url = f"/v1/service-records/{other['id']}/approve"
    first = await vol.t.client.post(url, headers=vol.t.auth())
    again = await vol.t.client.post(url, headers=vol.t.auth())
    assert first.status_code == again.status_code == 201 and again.json() == first.json()
    second_admin = await vol.t.key("admin")
    problem(await vol.t.client.post(url, headers=vol.t.auth(second_admin)), 409, "record-already-resolved")


async def test_rejection(vol):
    t = vol.t
    rec = (await vol.record(1, 2)).json()
    r = await t.client.post(
        f"/v1/service-records/{rec['id']}/reject", json={"reason": "时间不符"}, headers=t.auth()
    )
    assert (
        r.status_code == 200 and r.json()["status"] == "rejected" and r.json()["reject_reason"] == "时间不符"
    )
    problem(
        await t.client.post(
            f"/v1/service-records/{rec['id']}/reject", json={"reason": "x"}, headers=t.auth()
        ),
        409,
        "record-already-resolved",
    )
    problem(await vol.approve(rec["id"]), 409, "record-already-resolved")
    problem(
        await t.client.post(
            f"/v1/service-records/{rec['id']}/reject", json={"reason": " "}, headers=t.auth()
        ),
        400,
        "invalid-request",
    )
    # A rejected record does not block its corrected replacement.
    assert (await vol.record(1, 2)).status_code == 201


async def test_star_levels_follow_approvals_and_corrections_with_four_eyes(vol, engine):
    t = vol.t
    policy = (await t.client.get("/v1/community/policy", headers=t.auth())).json()["policy"]
    policy["star_thresholds_hours"] = [1, 2, 3, 4, 5]
    policy["backfilled_points"] = True  # records entered by hand are back-filled (补录): no points by default
    assert (await t.client.put("/v1/community/policy", json=policy, headers=t.auth())).status_code == 200
    first = (await vol.record(1, 2)).json()
    assert (await vol.approve(first["id"])).status_code == 201
    s = await vol.standing()
    assert (s["lifetime_minutes"], s["star_level"], s["minutes_to_next_level"]) == (60, 1, 60)
    second = (await vol.record(3, 4)).json()
    approved = (await vol.approve(second["id"])).json()
    assert approved["record"]["points"] == 10  # 60 min × 10/h × 1.05 (one star), rounded down
    assert (await vol.standing())["star_level"] == 2

    # A correction: asked by one admin, decided by another.
    second_admin = await t.key("admin")
    r = await t.client.post(
        f"/v1/service-records/{second['id']}/reversal", json={"reason": "重复登记"}, headers=t.auth()
    )
    assert r.status_code == 201 and r.json()["status"] == "requested"
    problem(
        await t.client.post(
            f"/v1/service-records/{second['id']}/reversal", json={"reason": "again"}, headers=t.auth()
        ),
        409,
        "conflict",
    )
    problem(
        await t.client.post(
            f"/v1/service-records/{second['id']}/reversal/approve",
            headers={**t.auth(), "Idempotency-Key": str(uuid.uuid4())},
        ),
        403,
        "four-eyes",
    )
    r = await t.client.post(
        f"/v1/service-records/{second['id']}/reversal/approve",
        headers={**t.auth(second_admin), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    decision = r.json()
    assert decision["record"]["status"] == "reversed"
    assert decision["transaction"]["kind"] == "reversal"
    assert decision["transaction"]["reverses_id"] == approved["transaction"]["id"]
    s = await vol.standing()
    assert (s["lifetime_minutes"], s["star_level"]) == (60, 1)
    balances = (await t.client.get(f"/v1/members/{vol.member['id']}/balances", headers=t.auth())).json()
    assert balances["HOUR"]["posted"] == 60 and balances["POINT"]["posted"] == 10
    # Nothing is deleted: the record, the correction and both transactions remain.
    assert (await t.client.get(f"/v1/service-records/{second['id']}", headers=t.auth())).json()[
        "status"
    ] == "reversed"
    async with engine.connect() as conn:
        row = (
            await conn.exec_driver_sql(
                f"SELECT status, requested_by <> decided_by FROM service_reversals WHERE record_id = '{second['id']}'"
            )
        ).one()
        assert tuple(row) == ("approved", True)
        lot = (
            await conn.exec_driver_sql(
                f"SELECT reversed_at FROM points_lots WHERE record_id = '{second['id']}'"
            )
        ).scalar_one()
        assert lot is not None
    # The corrected service can be recorded again.
    assert (await vol.record(3, 4)).status_code == 201
    # Only an approved record is corrected; a turned-down correction leaves it approved.
    problem(
        await t.client.post(
            f"/v1/service-records/{second['id']}/reversal", json={"reason": "x"}, headers=t.auth()
        ),
        409,
        "conflict",
    )
    await t.client.post(f"/v1/service-records/{first['id']}/reversal", json={"reason": "x"}, headers=t.auth())
    r = await t.client.post(
        f"/v1/service-records/{first['id']}/reversal/reject", headers=t.auth(second_admin)
    )
    assert r.status_code == 200 and r.json()["status"] == "rejected"
    assert (await vol.standing())["star_level"] == 1


async def test_the_database_refuses_edits_and_deletes_of_records(vol, engine):
    rec = (await vol.record(1, 2)).json()
    for sql in (
        f"UPDATE service_records SET minutes = 999 WHERE id = '{rec['id']}'",
        f"DELETE FROM service_records WHERE id = '{rec['id']}'",
        f"UPDATE service_records SET status = 'reversed' WHERE id = '{rec['id']}'",
    ):
        with pytest.raises(Exception, match=r"never deleted|not edited|cannot go"):
            async with engine.begin() as conn:
                await conn.exec_driver_sql(sql)


async def test_who_sees_which_records(vol, tenant, other_tenant):
    t = vol.t
    mine = (await vol.record(1, 2)).json()
    neighbour = await t.member("邻居")
    other_record = (
        await t.client.post(
            "/v1/service-records",
            json={**vol.body(1, 2), "member_id": neighbour["id"]},
            headers=t.auth(vol.recorder),
        )
    ).json()
    auditor = await t.key("auditor", neighbour["id"])
    merchant = await t.key("merchant", (await t.party("merchants", "爱心超市"))["id"])
    other_org = await t.party("organisations", "另一个队")
    other_recorder = await t.key("recorder", other_org["id"])

    def ids(r: Any) -> set[str]:
        assert r.status_code == 200, r.text
        return {x["id"] for x in r.json()["items"]}

    assert ids(await t.client.get("/v1/service-records", headers=t.auth(vol.resident))) == {mine["id"]}
    assert ids(await t.client.get("/v1/service-records", headers=t.auth(auditor))) == {
        mine["id"],
        other_record["id"],
    }
    assert ids(await t.client.get("/v1/service-records", headers=t.auth(vol.recorder))) == {
        mine["id"],
        other_record["id"],
    }
    assert ids(await t.client.get("/v1/service-records", headers=t.auth(other_recorder))) == set()
    assert (await t.client.get("/v1/service-records", headers=t.auth(merchant))).status_code == 403
    assert (
        await t.client.get(f"/v1/service-records/{other_record['id']}", headers=t.auth(vol.resident))
    ).status_code == 404
    assert (
        await t.client.get(f"/v1/service-records/{mine['id']}", headers=other_tenant.auth())
    ).status_code == 404
    history = await t.client.get(
        f"/v1/members/{vol.member['id']}/service-records", headers=t.auth(vol.resident)
    )
    assert ids(history) == {mine["id"]}
    assert (
        await t.client.get(f"/v1/members/{neighbour['id']}/service-records", headers=t.auth(vol.resident))
    ).status_code == 404
    assert (await vol.approve(mine["id"], key=auditor)).status_code == 403
    # Filters and pages.
    for n in range(3, 8):
        await vol.record(n * 2, n * 2 + 1)
    page = (
        await t.client.get(f"/v1/members/{vol.member['id']}/service-records?limit=2", headers=t.auth())
    ).json()
    assert len(page["items"]) == 2 and page["next_cursor"]
    starts = [x["started_at"] for x in page["items"]]
    rest = (
        await t.client.get(
            f"/v1/members/{vol.member['id']}/service-records?limit=50&cursor={page['next_cursor']}",
            headers=t.auth(),
        )
    ).json()["items"]
    assert len(rest) == 4 and starts == sorted(starts, reverse=True) and rest[0]["started_at"] < starts[-1]
    approved = await t.client.get(
        f"/v1/members/{vol.member['id']}/service-records?status=approved", headers=t.auth()
    )
    assert ids(approved) == set()
    problem(await t.client.get("/v1/service-records?status=nope", headers=t.auth()), 400, "invalid-request")


CSV = (
    "\ufeff志愿者编号,活动名称,服务类别,服务地点,开始时间,结束时间,服务对象,服务内容,记录编号\n"
    "V001,理发,志愿服务,活动室,2026-11-03 09:00,2026-11-03 11:00,张奶奶,义剪,R1\n"
    "V001,读报,volunteer_service,活动室,2026-11-03 10:00,2026-11-03 12:00,,,R2\n"
    "V999,读报,志愿服务,活动室,2026-11-03 13:00,2026-11-03 14:00,,,R3\n"
    "V001,读报,志愿服务,活动室,明天,2026-11-03 14:00,,,R4\n"
    "\n"
    "V001,跳舞,文体健康,广场,2026-11-04 19:00,2026-11-04 20:30,,,\n"
)


async def test_csv_import_reports_each_row_and_imports_nothing_twice(tenant):
    t = tenant
    org = await t.party("organisations", "华锦志愿服务队")
    recorder = await t.key("recorder", org["id"])
    r = await t.client.post(
        "/v1/members", json={"display_name": "王阿姨", "external_ref": "V001"}, headers=t.auth()
    )
    member = r.json()
    headers = {**t.auth(recorder), "Content-Type": "text/csv"}
    r = await t.client.post("/v1/service-records/import", content=CSV.encode(), headers=headers)
    assert r.status_code == 200, r.text
    result = r.json()
    assert [(a["line"], a["duplicate"]) for a in result["accepted"]] == [(2, False), (7, False)]
    assert {a["member_id"] for a in result["accepted"]} == {member["id"]}
    reasons = {x["line"]: x["reason"] for x in result["rejected"]}
    assert set(reasons) == {3, 4, 5}
    assert "overlaps" in reasons[3] and "V999" in reasons[4] and "time" in reasons[5]
    again = (await t.client.post("/v1/service-records/import", content=CSV.encode(), headers=headers)).json()
    assert [(a["line"], a["duplicate"]) for a in again["accepted"]] == [(2, True), (7, True)]
    assert [a["id"] for a in again["accepted"]] == [a["id"] for a in result["accepted"]]
    listed = (await t.client.get(f"/v1/members/{member['id']}/service-records", headers=t.auth())).json()[
        "items"
    ]
    assert len(listed) == 2
    # English headers, no BOM, the organisation named by an admin.
    english = (
        "member_ref,activity,category,place,started_at,ended_at\n"
        "V001,chess,culture_health,hall,2026-11-05T10:00:00+08:00,2026-11-05T11:00:00+08:00\n"
    )
    r = await t.client.post(
        f"/v1/service-records/import?organisation_id={org['id']}",
        content=english.encode(),
        headers={**t.auth(), "Content-Type": "text/csv"},
    )
    assert (
        r.status_code == 200 and len(r.json()["accepted"]) == 1 and r.json()["accepted"][0]["minutes"] == 60
    )
    for bad, words in ((b"\xff\xfe", "UTF-8"), (b"", "empty"), (b"activity,place\nx,y\n", "missing")):
        body = problem(
            await t.client.post("/v1/service-records/import", content=bad, headers=headers),
            400,
            "invalid-request",
        )
        assert words in body["detail"]


async def test_records_of_a_trusted_organisation_are_approved_as_they_are_recorded(vol):
    t = vol.t
    policy = (await t.client.get("/v1/community/policy", headers=t.auth())).json()["policy"]
    policy["trusted_organisations"] = [vol.org["id"]]
    policy["backfilled_points"] = True  # records entered by hand are back-filled (补录): no points by default
    assert (await t.client.put("/v1/community/policy", json=policy, headers=t.auth())).status_code == 200
    r = await vol.record(1, 3)
    assert r.status_code == 201 and r.json()["status"] == "approved" and r.json()["points"] == 20
    assert r.json()["transaction_id"]
    balances = (await t.client.get(f"/v1/members/{vol.member['id']}/balances", headers=t.auth())).json()
    assert balances["HOUR"]["posted"] == 120 and balances["POINT"]["posted"] == 20
    # An untrusted organisation's records still wait for an admin.
    other = await t.party("organisations", "新来的队")
    r = await vol.record(4, 5, key=t.admin_key, organisation_id=other["id"])
    assert r.json()["status"] == "submitted"


@pytest.mark.parametrize("field", ["member_id", "activity", "category", "place", "started_at", "ended_at"])
async def test_each_required_field_of_a_record_is_named_when_missing(tenant, field):
    """docs/api.md lists the required fields (``place`` among them): a missing one is a
    400 that names it, and nothing is written."""
    v = await Volunteering(tenant).setup()
    body = v.body(1, 2)
    del body[field]
    r = await tenant.client.post("/v1/service-records", json=body, headers=tenant.auth(v.recorder))
    assert field in problem(r, 400, "invalid-request")["detail"]
    listed = await tenant.client.get("/v1/service-records", headers=tenant.auth(v.recorder))
    assert listed.status_code == 200 and listed.json()["items"] == []

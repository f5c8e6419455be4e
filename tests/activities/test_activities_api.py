"""Activities through the HTTP API on PostgreSQL (issue 17): publishing, sign-up under
concurrency with its waiting list, check-in and check-out by QR token or code, the
service record a check-out makes (once), back-filled records and points, attendance,
reminders; the audit stays clean."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from support import problem

from tests.activities.helpers import Activities, clock_at, now
from timebank.activities import tokens
from timebank.activities.reminders import remind_upcoming
from timebank.audits import run_audit
from timebank.jobs.definitions import JOBS, Context
from timebank.security import load_web_secret


@pytest.fixture
async def acts(tenant: Any) -> Activities:
    return await Activities(tenant).setup()


def token_of(code: dict[str, Any]) -> str:
    return parse_qs(urlsplit(code["url"]).query)["t"][0]


# --- publishing -------------------------------------------------------------------------


async def test_publish_list_change_and_cancel(acts: Activities) -> None:
    t, c = acts.t, acts.c
    start = now() + timedelta(days=3)
    a = await acts.publish(
        start, start + timedelta(hours=2), category="文体健康", lat=31.2, lon=121.4, radius_m=200
    )
    assert a["organisation_id"] == acts.org["id"] and a["category"] == "culture_health"
    assert (a["status"], a["places_left"], a["signed_up"]) == ("published", 10, 0)
    # an admin names the organisation; a recorder may not publish for another one
    other = await t.party("organisations", "另一个队")
    r = await c.post(
        "/v1/activities",
        json={**acts.body(start, start + timedelta(hours=1)), "organisation_id": other["id"]},
        headers=t.auth(acts.recorder),
    )
    problem(r, 403, "forbidden")
    r = await c.post(
        "/v1/activities",
        json=acts.body(start, start + timedelta(hours=1), category="无此类"),
        headers=t.auth(),
    )
    problem(r, 422, "invalid-activity")
    r = await c.post(
        "/v1/activities", json=acts.body(start, start - timedelta(hours=1)), headers=t.auth(acts.recorder)
    )
    problem(r, 422, "invalid-activity")
    member, resident = await acts.volunteer()
    problem(
        await c.post(
            "/v1/activities", json=acts.body(start, start + timedelta(hours=1)), headers=t.auth(resident)
        ),
        403,
        "forbidden",
    )

    # residents list the upcoming ones, by category and date
    past = await acts.publish(now() - timedelta(days=2), now() - timedelta(days=2) + timedelta(hours=1))
    r = await c.get("/v1/activities", headers=t.auth(resident))
    assert [x["id"] for x in r.json()["items"]] == [a["id"]]
    r = await c.get("/v1/activities", params={"category": "volunteer_service"}, headers=t.auth(resident))
    assert r.json()["items"] == []
    r = await c.get(
        "/v1/activities", params={"to": (start - timedelta(days=1)).isoformat()}, headers=t.auth(resident)
    )
    assert r.json()["items"] == []
    r = await c.get("/v1/activities", params={"limit": 1}, headers=t.auth())
    assert [x["id"] for x in r.json()["items"]] == [past["id"]] and r.json()["next_cursor"]
    r = await c.get(
        "/v1/activities", params={"limit": 1, "cursor": r.json()["next_cursor"]}, headers=t.auth()
    )
    assert [x["id"] for x in r.json()["items"]] == [a["id"]]

    r = await c.patch(
        f"/v1/activities/{a['id']}",
        json={"capacity": 12, "description": "带上水杯"},
        headers=t.auth(acts.recorder),
    )
    assert r.status_code == 200, r.text
    assert (r.json()["capacity"], r.json()["description"]) == (12, "带上水杯")

    assert (await acts.sign_up(a["id"], resident)).status_code == 201
    r = await c.post(
        f"/v1/activities/{a['id']}/cancel", json={"reason": "天气预报有暴雨"}, headers=t.auth(acts.recorder)
    )
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["cancel_reason"]) == ("cancelled", "天气预报有暴雨")
    problem(
        await c.post(f"/v1/activities/{a['id']}/cancel", json={"reason": "again"}, headers=t.auth()),
        409,
        "activity-cancelled",
    )
    notes = (await c.get(f"/v1/members/{member['id']}/notifications", headers=t.auth(resident))).json()[
        "items"
    ]
    assert [n["kind"] for n in notes] == ["activity_cancelled"]
    assert notes[0]["payload"]["reason"] == "天气预报有暴雨"


# --- sign-up ------------------------------------------------------------------------------


async def test_thirty_race_for_ten_places_and_the_waiting_list_moves_up(acts: Activities) -> None:
    t, c = acts.t, acts.c
    start = now() + timedelta(days=3)
    a = await acts.publish(start, start + timedelta(hours=2), capacity=10)
    volunteers = [await acts.volunteer(f"志愿者{i}") for i in range(30)]
    answers = await asyncio.gather(*(acts.sign_up(a["id"], key) for _, key in volunteers))
    assert all(r.status_code == 201 for r in answers), [r.text for r in answers if r.status_code != 201]
    states = [r.json()["status"] for r in answers]
    assert states.count("signed_up") == 10 and states.count("waiting") == 20
    view = await acts.attendance(a["id"])
    assert view["counts"] == {"signed_up": 10, "waiting": 20}
    waiting = [x for x in view["items"] if x["status"] == "waiting"]
    assert [x["position"] for x in waiting] == sorted(x["position"] for x in waiting)
    assert all(
        w["position"] > s["position"] for w in waiting for s in view["items"] if s["status"] == "signed_up"
    )

    # signing up twice answers the sign-up that exists
    _member, key = volunteers[0]
    again = await acts.sign_up(a["id"], key)
    assert again.status_code == 200 and again.json()["status"] == answers[0].json()["status"]

    # a withdrawal (days ahead: not late) gives the place to the first waiting volunteer
    leaver = next(r.json()["member_id"] for r in answers if r.json()["status"] == "signed_up")
    leaver_key = next(k for m, k in volunteers if m["id"] == leaver)
    r = await acts.withdraw(a["id"], leaver, leaver_key)
    assert r.status_code == 200, r.text
    assert r.json()["late_withdrawal"] is False and r.json()["promoted"] == [waiting[0]["member_id"]]
    view = await acts.attendance(a["id"])
    assert view["counts"] == {"signed_up": 10, "waiting": 19, "withdrawn": 1}
    promoted_key = next(k for m, k in volunteers if m["id"] == waiting[0]["member_id"])
    notes = (
        await c.get(f"/v1/members/{waiting[0]['member_id']}/notifications", headers=t.auth(promoted_key))
    ).json()
    assert [n["kind"] for n in notes["items"]] == ["activity_promoted"]
    # someone else's place is not a resident's to withdraw
    problem(await acts.withdraw(a["id"], waiting[1]["member_id"], leaver_key), 403, "forbidden")


async def test_a_late_withdrawal_is_a_no_show_and_the_organiser_signs_up_for_a_resident(
    acts: Activities,
) -> None:
    t, c = acts.t, acts.c
    start = now() + timedelta(hours=5)  # inside the default 24-hour deadline
    a = await acts.publish(start, start + timedelta(hours=1), capacity=1)
    member, key = await acts.volunteer()
    r = await acts.sign_up(a["id"], acts.recorder, member_id=member["id"])
    assert r.status_code == 201 and r.json()["status"] == "signed_up"
    r = await acts.withdraw(a["id"], member["id"], key)
    assert r.json()["late_withdrawal"] is True
    r = await c.get(f"/v1/members/{member['id']}/activities", headers=t.auth())
    assert r.status_code == 200, r.text
    assert r.json()["no_shows"] == 1 and r.json()["items"][0]["title"] == "敬老院陪伴"
    # signing up after sign-up closed is refused
    with clock_at(c, start + timedelta(minutes=1)):
        problem(await acts.sign_up(a["id"], key), 409, "signup-closed")


# --- check-in and check-out ------------------------------------------------------------------


async def test_tokens_that_are_expired_reused_foreign_tampered_or_far_are_refused(
    acts: Activities, settings: Any
) -> None:
    c = acts.c
    a = await acts.ongoing(lat=31.2304, lon=121.4737, radius_m=100)
    b = await acts.ongoing()
    _member, key = await acts.volunteer()
    assert (await acts.sign_up(a["id"], key)).status_code == 201
    shown = await acts.code(a["id"])
    assert shown["url"].startswith("http://timebank.test/a/" + a["id"] + "/scan?t=")
    assert len(shown["code"]) == 6 and shown["code"].isdigit()
    token = token_of(shown)

    secret = tokens.derive_key(load_web_secret(settings))
    old = tokens.make_token(secret, uuid.UUID(a["id"]), tokens.window_of(now()) - 2)
    problem(await acts.scan(a["id"], key, token=old), 422, "check-in-token-expired")
    # the QR shown now, kept (a screenshot) and used after its window and the next
    with clock_at(c, now() + timedelta(seconds=61)):
        problem(await acts.scan(a["id"], key, token=token), 422, "check-in-token-expired")
    problem(
        await acts.scan(a["id"], key, token=token_of(await acts.code(b["id"]))), 422, "check-in-token-foreign"
    )
    tampered = token[:-2] + ("AA" if not token.endswith("AA") else "BB")
    problem(await acts.scan(a["id"], key, token=tampered), 422, "check-in-token-invalid")
    problem(
        await acts.scan(a["id"], key, token=token.replace(a["id"], b["id"])), 422, "check-in-token-invalid"
    )
    problem(
        await acts.scan(a["id"], key, token=token, lat=31.2404, lon=121.4737), 422, "check-in-outside-radius"
    )
    problem(
        await acts.scan(a["id"], key, code="000000" if shown["code"] != "000000" else "111111"),
        422,
        "check-in-token-expired",
    )
    _, stranger = await acts.volunteer("路人")
    problem(await acts.scan(a["id"], stranger, token=token), 422, "not-signed-up")

    r = await acts.scan(a["id"], key, token=token, lat=31.2305, lon=121.4738)
    assert r.status_code == 200, r.text
    assert r.json()["result"] == "checked_in" and r.json()["attendance"]["check_in_manual"] is False
    # the page loaded twice: the same arrival, never a check-out
    r = await acts.scan(a["id"], key, code=shown["code"])
    assert r.json()["result"] == "already_checked_in"


async def test_scans_outside_the_activitys_time_or_of_a_cancelled_one_are_refused(acts: Activities) -> None:
    t, c = acts.t, acts.c
    start = now() + timedelta(hours=3)
    a = await acts.publish(start, start + timedelta(hours=1))
    _member, key = await acts.volunteer()
    assert (await acts.sign_up(a["id"], key)).status_code == 201
    problem(
        await acts.scan(a["id"], key, token=token_of(await acts.code(a["id"]))), 422, "check-in-outside-time"
    )
    await c.post(f"/v1/activities/{a['id']}/cancel", json={"reason": "取消"}, headers=t.auth())
    problem(await acts.scan(a["id"], key, code="123456"), 409, "activity-cancelled")


async def test_a_double_or_concurrent_check_out_makes_one_record(acts: Activities) -> None:
    a = await acts.ongoing()
    member, key = await acts.volunteer()
    assert (await acts.sign_up(a["id"], key)).status_code == 201
    r = await acts.by_hand(a["id"], member["id"], "check-in", at=now() - timedelta(minutes=40))
    assert r.json()["result"] == "checked_in" and r.json()["attendance"]["check_in_manual"] is True
    shown = await acts.code(a["id"])
    answers = await asyncio.gather(*(acts.scan(a["id"], key, token=token_of(shown)) for _ in range(6)))
    assert all(r.status_code == 200 for r in answers), [r.text for r in answers]
    results = sorted(r.json()["result"] for r in answers)
    assert results == ["already_checked_out"] * 5 + ["checked_out"]
    again = await acts.scan(a["id"], key, code=shown["code"])
    assert again.json()["result"] == "already_checked_out"
    records = await acts.records(member["id"])
    assert len(records) == 1
    rec = records[0]
    assert (rec["source"], rec["back_filled"], rec["status"]) == ("activity", False, "submitted")
    assert rec["external_ref"] == f"activity:{a['id']}:{member['id']}"
    assert {r.json()["attendance"]["record_id"] for r in answers} == {rec["id"]}
    assert 39 <= rec["minutes"] <= 41


async def test_minutes_are_the_time_present_clipped_to_the_activity(acts: Activities) -> None:
    t, c = acts.t, acts.c
    start = now() - timedelta(hours=5)
    end = start + timedelta(hours=2)
    a = await acts.publish(start, end)
    (early, early_key), (middle, middle_key), (forgot, forgot_key) = [
        await acts.volunteer(n) for n in ("早到", "中途", "忘签退")
    ]
    with clock_at(c, start - timedelta(hours=1)):  # they signed up before it began
        for _, key in ((early, early_key), (middle, middle_key), (forgot, forgot_key)):
            assert (await acts.sign_up(a["id"], key)).status_code == 201
    # arrived 30 minutes early, left 30 minutes late: the activity's 2 hours
    await acts.by_hand(a["id"], early["id"], "check-in", at=start - timedelta(minutes=30))
    r = await acts.by_hand(a["id"], early["id"], "check-out", at=end + timedelta(minutes=30))
    assert r.json()["result"] == "checked_out" and r.json()["attendance"]["check_out_manual"] is True
    # from 15 minutes in to 75 minutes in: one hour
    await acts.by_hand(a["id"], middle["id"], "check-in", at=start + timedelta(minutes=15))
    await acts.by_hand(a["id"], middle["id"], "check-out", at=start + timedelta(minutes=75))
    assert [r["minutes"] for r in await acts.records(early["id"])] == [120]
    assert [r["minutes"] for r in await acts.records(middle["id"])] == [60]

    # checked in, never out: listed for the organiser, credited with nothing until confirmed
    await acts.by_hand(a["id"], forgot["id"], "check-in", at=start + timedelta(minutes=5))
    view = await acts.attendance(a["id"])
    states = {x["member_id"]: x["state"] for x in view["items"]}
    assert states == {early["id"]: "attended", middle["id"]: "attended", forgot["id"]: "needs_end_time"}
    assert await acts.records(forgot["id"]) == []
    problem(
        await acts.by_hand(a["id"], forgot["id"], "check-out", at=end + timedelta(hours=2)),
        422,
        "check-in-outside-time",
    )
    await acts.by_hand(a["id"], forgot["id"], "check-out", at=end - timedelta(minutes=25))
    assert [r["minutes"] for r in await acts.records(forgot["id"])] == [90]

    r = await c.get(
        f"/v1/activities/{a['id']}/attendance", params={"format": "csv"}, headers=t.auth(acts.recorder)
    )
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/csv")
    assert r.content.startswith("\ufeff".encode()) and "忘签退" in r.text and r.text.count("\n") == 4
    r = await c.get(f"/v1/activities/{a['id']}/attendance", headers={**t.auth(), "Accept": "text/csv"})
    assert r.headers["content-type"].startswith("text/csv")


async def test_a_signed_up_volunteer_who_never_came_is_a_no_show(acts: Activities) -> None:
    t, c = acts.t, acts.c
    start = now() - timedelta(hours=3)
    a = await acts.publish(start, start + timedelta(hours=1))
    member, key = await acts.volunteer()
    with clock_at(c, start - timedelta(days=2)):
        assert (await acts.sign_up(a["id"], key)).status_code == 201
    view = await acts.attendance(a["id"])
    assert view["counts"] == {"no_show": 1} and view["ended"] is True
    r = await c.get(f"/v1/members/{member['id']}/activities", headers=t.auth(acts.recorder))
    assert r.json()["no_shows"] == 1


# --- records follow ----------------------------------------------------------------------------


async def test_a_trusted_organisations_attendance_is_approved_at_once_with_points(acts: Activities) -> None:
    await acts.set_policy(trusted_organisations=[acts.org["id"]])
    a = await acts.ongoing()
    member, key = await acts.volunteer()
    await acts.sign_up(a["id"], key)
    await acts.by_hand(a["id"], member["id"], "check-in", at=now() - timedelta(minutes=61))
    r = await acts.by_hand(a["id"], member["id"], "check-out")
    assert r.json()["result"] == "checked_out", r.text
    (rec,) = await acts.records(member["id"])
    assert rec["status"] == "approved" and rec["source"] == "activity"
    assert rec["points"] == 10 * rec["minutes"] // 60 > 0


async def approve(acts: Activities, record_id: str) -> dict[str, Any]:
    r = await acts.c.post(
        f"/v1/service-records/{record_id}/approve",
        headers={**acts.t.auth(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    return r.json()["record"]


async def test_a_back_filled_record_earns_hours_but_no_points_unless_the_policy_says_so(
    acts: Activities,
) -> None:
    t, c = acts.t, acts.c
    member, _ = await acts.volunteer()
    day = now() - timedelta(days=3)

    async def back_fill(hours: float) -> dict[str, Any]:
        body = {
            "member_id": member["id"],
            "activity": "补录：上周的陪伴",
            "category": "volunteer_service",
            "place": "社区",
            "started_at": (day + timedelta(hours=hours)).isoformat(),
            "ended_at": (day + timedelta(hours=hours + 2)).isoformat(),
        }
        r = await c.post("/v1/service-records", json=body, headers=t.auth(acts.recorder))
        assert r.status_code == 201, r.text
        assert (r.json()["source"], r.json()["back_filled"]) == ("entered", True)
        return r.json()

    rec = await approve(acts, (await back_fill(0))["id"])
    assert rec["points"] == 0
    r = await c.get(f"/v1/members/{member['id']}", headers=t.auth())
    assert r.json()["lifetime_minutes"] == 120
    accounts = r.json()["accounts"]
    assert (await t.balance(accounts["HOUR"]))["credits_posted"] == 120  # the hours, yes
    assert (await t.balance(accounts["POINT"]))["credits_posted"] == 0  # the points, no

    await acts.set_policy(backfilled_points=True)
    rec = await approve(acts, (await back_fill(4))["id"])
    assert rec["points"] == 20


# --- reminders, and the audit ----------------------------------------------------------------------


async def test_the_day_before_signed_up_volunteers_are_reminded_once(acts: Activities, engine: Any) -> None:
    t, c = acts.t, acts.c
    start = now() + timedelta(hours=20)
    a = await acts.publish(start, start + timedelta(hours=1))
    later = await acts.publish(now() + timedelta(days=5), now() + timedelta(days=5, hours=1))
    member, key = await acts.volunteer()
    await acts.sign_up(a["id"], key)
    await acts.sign_up(later["id"], key)
    # the scheduled job, run twice: one reminder
    job = JOBS["activity-reminders"]
    assert job.per_community
    ctx = Context(engine, c.app.state.signer, "test")
    assert await job.work(ctx, uuid.UUID(t.id), now()) == {"reminders": 1}
    assert await remind_upcoming(engine, uuid.UUID(t.id), now()) == {"reminders": 0}
    notes = (await c.get(f"/v1/members/{member['id']}/notifications", headers=t.auth(key))).json()["items"]
    assert [(n["kind"], n["payload"]["activity_id"]) for n in notes] == [("activity_reminder", a["id"])]


async def test_the_audit_is_clean(acts: Activities, engine: Any) -> None:
    await test_a_trusted_organisations_attendance_is_approved_at_once_with_points(acts)
    report = await run_audit(engine)
    assert report.ok, {k: v for k, v in report.results.items() if v}

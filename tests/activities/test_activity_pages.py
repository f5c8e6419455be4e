"""The activities' pages over HTTP (issue 17): residents sign up and withdraw, organisers
publish, cancel, show the check-in code and keep the attendance, volunteers scan; and who
may not."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from tests.activities.helpers import Activities, clock_at, now
from tests.people.pages import add_person, browser, csrf, post_form, sign_in
from timebank.core.policy import Policy
from timebank.volunteer import policy_pages


@pytest.fixture
async def acts(tenant: Any) -> Activities:
    return await Activities(tenant).setup()


@asynccontextmanager
async def closing(*phones: httpx.AsyncClient) -> AsyncIterator[None]:
    """Close the signed-in phones at the end (they were opened by signing in)."""
    try:
        yield
    finally:
        for phone in phones:
            await phone.aclose()


def _login() -> str:
    return f"139{uuid.uuid4().int % 10**8:08d}"


async def _phone(acts: Activities, role: str, subject: str | None, name: str) -> httpx.AsyncClient:
    login = _login()
    await add_person(acts.t, role, subject, name, login, "a-good-password")
    phone = browser(acts.c)
    r = await sign_in(phone, login, "a-good-password")
    assert r.status_code == 303, r.text
    return phone


async def _resident(acts: Activities, name: str = "王阿姨") -> tuple[dict[str, Any], httpx.AsyncClient]:
    member = await acts.t.member(name)
    return member, await _phone(acts, "resident", member["id"], name)


async def test_a_resident_lists_signs_up_once_and_withdraws(acts: Activities) -> None:
    a = await acts.publish(now() + timedelta(days=3), now() + timedelta(days=3, hours=2), capacity=1)
    member, phone = await _resident(acts)
    _, other = await _resident(acts, "李大爷")
    async with closing(phone, other):
        page = await phone.get("/me/activities")
        assert page.status_code == 200 and "敬老院陪伴" in page.text
        assert f"/me/activities/{a['id']}" in page.text
        filtered = await phone.get("/me/activities?category=volunteer_service&day=2001-01-01")
        assert filtered.status_code == 200 and "敬老院陪伴" not in filtered.text
        one = f"/me/activities/{a['id']}"
        r = await post_form(phone, one, f"{one}/sign-up")
        assert r.status_code == 303 and r.headers["location"] == f"{one}?done=signed_up"
        again = await post_form(phone, one, f"{one}/sign-up")  # a double tap changes nothing
        assert again.headers["location"] == f"{one}?done=signed_up"
        shown = await phone.get(f"{one}?done=signed_up")
        assert 'role="status"' in shown.text and "/withdraw" in shown.text
        full = await post_form(other, one, f"{one}/sign-up")
        assert full.headers["location"] == f"{one}?done=waiting"
        asked = await post_form(phone, one, f"{one}/withdraw")  # first: are you sure?
        assert asked.status_code == 200 and 'name="confirm"' in asked.text
        r = await post_form(phone, one, f"{one}/withdraw", confirm="1")
        assert r.status_code == 303 and r.headers["location"] == f"{one}?done=withdrawn"
    seen = await acts.attendance(a["id"])
    states = {i["member_id"]: i["state"] for i in seen["items"]}
    assert states[member["id"]] == "withdrawn"
    assert "signed_up" in states.values(), "the waiting volunteer moved up"


async def test_a_late_withdrawal_warns_of_a_no_show(acts: Activities) -> None:
    a = await acts.publish(now() + timedelta(hours=3), now() + timedelta(hours=5))
    _, phone = await _resident(acts)
    async with closing(phone):
        one = f"/me/activities/{a['id']}"
        await post_form(phone, one, f"{one}/sign-up")
        page = await phone.get(one)
        assert 'class="alert"' in page.text, "less than the deadline before the start: a warning"


async def test_an_organiser_publishes_cancels_and_a_resident_may_not(acts: Activities) -> None:
    org = await _phone(acts, "recorder", acts.org["id"], "队长")
    _, resident = await _resident(acts)
    day = (now() + timedelta(days=5)).date().isoformat()
    async with closing(org, resident):
        listing = await org.get("/org/activities")
        assert listing.status_code == 200
        bad = await post_form(org, "/org/activities", "/org/activities", title="", place="", day="x")
        assert bad.status_code == 422 and 'class="alert"' in bad.text
        r = await post_form(
            org,
            "/org/activities",
            "/org/activities",
            title="清扫楼道",
            category="volunteer_service",
            place="3号楼",
            day=day,
            start="09:00",
            end="11:00",
            capacity="5",
        )
        assert r.status_code == 303, r.text
        where = r.headers["location"]
        assert re.fullmatch(r"/org/activities/[0-9a-f-]{36}", where)
        page = await org.get(where)
        assert page.status_code == 200 and "清扫楼道" in page.text
        assert (await resident.get("/org/activities")).status_code == 403
        assert (await resident.get(f"{where}/check-in")).status_code == 403
        r = await post_form(org, where, f"{where}/cancel", reason="下雨")
        assert r.status_code == 303
        assert "下雨" in (await org.get(where)).text


async def test_another_organisation_may_not_see_the_check_in_code(acts: Activities) -> None:
    a = await acts.ongoing()
    other_org = await acts.t.party("organisations", "别的队")
    stranger = await _phone(acts, "recorder", other_org["id"], "别人")
    async with closing(stranger):
        assert (await stranger.get(f"/org/activities/{a['id']}/check-in")).status_code == 403
        assert (await stranger.get(f"/org/activities/{a['id']}/attendance")).status_code == 403


async def test_check_in_by_qr_and_out_by_code_with_the_attendance_and_csv(acts: Activities) -> None:
    a = await acts.ongoing()
    member, phone = await _resident(acts)
    org = await _phone(acts, "recorder", acts.org["id"], "队长")
    admin = await _phone(acts, "admin", None, "管理员")
    async with closing(phone, org, admin):
        one = f"/me/activities/{a['id']}"
        await post_form(phone, one, f"{one}/sign-up")
        shown = await org.get(f"/org/activities/{a['id']}/check-in")
        assert shown.status_code == 200 and "<svg" in shown.text
        assert shown.headers["refresh"] and shown.headers["cache-control"] == "no-store"
        url = (await acts.code(a["id"]))["url"]
        token = parse_qs(urlsplit(url).query)["t"][0]
        scan = f"/a/{a['id']}/scan?t={token}"
        signed_out = await browser(acts.c).get(scan)
        assert signed_out.status_code == 303 and signed_out.headers["location"].startswith("/sign-in?next=")
        page = await phone.get(scan)
        assert page.status_code == 200 and 'name="token"' in page.text
        r = await phone.post(
            f"/a/{a['id']}/scan", data={"_csrf_token": await csrf(phone, scan), "token": token}
        )
        assert r.status_code == 303 and r.headers["location"].endswith("done=checked_in")
        done = await phone.get(r.headers["location"])
        assert 'id="scan-result"' in done.text
        wrong = await phone.post(
            f"/a/{a['id']}/scan", data={"_csrf_token": await csrf(phone, scan), "token": "x.1.y"}
        )
        assert wrong.status_code == 422 and 'role="alert"' in wrong.text
        # the organiser confirms the end time by hand (a scan this soon is the same arrival)
        att = f"/org/activities/{a['id']}/attendance"
        seen = await org.get(att)
        assert seen.status_code == 200 and "王阿姨" in seen.text
        bad = await post_form(
            org,
            att,
            f"/org/activities/{a['id']}/by-hand",
            member_id=member["id"],
            step="check-out",
            at="25:99",
        )
        assert bad.status_code == 422 and 'role="alert"' in bad.text
        with clock_at(acts.c, now() + timedelta(minutes=30)):  # half an hour on, the end is now
            r = await post_form(
                org, att, f"/org/activities/{a['id']}/by-hand", member_id=member["id"], step="check-out"
            )
            assert r.status_code == 303, r.text
        csv = await org.get(f"{att}.csv")
        assert csv.status_code == 200 and csv.headers["content-type"].startswith("text/csv")
        assert csv.content.startswith("\ufeff".encode()) and member["id"] in csv.text
        staff = await admin.get(f"/staff/activities/{a['id']}/attendance")
        assert staff.status_code == 200 and "王阿姨" in staff.text
        approvals = await admin.get("/staff/approvals")
        assert "敬老院陪伴" in approvals.text
    records = await acts.records(member["id"])
    assert len(records) == 1 and records[0]["source"] == "activity"


async def test_a_code_typed_by_hand_checks_in(acts: Activities) -> None:
    a = await acts.ongoing()
    _, phone = await _resident(acts)
    async with closing(phone):
        one = f"/me/activities/{a['id']}"
        await post_form(phone, one, f"{one}/sign-up")
        scan = f"/a/{a['id']}/scan"
        code = (await acts.code(a["id"]))["code"]
        r = await phone.post(scan, data={"_csrf_token": await csrf(phone, scan), "code": code})
        assert r.status_code == 303 and r.headers["location"].endswith("done=checked_in")


async def test_an_admin_sets_the_activities_policy_on_the_policy_page(acts: Activities) -> None:
    admin = await _phone(acts, "admin", None, "管理员")
    async with closing(admin):
        page = await admin.get("/staff/policy")
        assert 'name="withdraw_deadline_hours"' in page.text and 'name="backfilled_points"' in page.text
        form = {
            **policy_pages.form_of(Policy()),
            "version": "0",
            "_csrf_token": await csrf(admin, "/staff/policy"),
        }
        wrong = await admin.post("/staff/policy", data={**form, "withdraw_deadline_hours": "9999"})
        assert wrong.status_code == 400 and 'id="err-withdraw_deadline_hours"' in wrong.text
        saved = await admin.post(
            "/staff/policy", data={**form, "withdraw_deadline_hours": "2", "backfilled_points": "1"}
        )
        assert saved.status_code == 303, saved.text
    r = await acts.c.get("/v1/community/policy", headers=acts.t.auth())
    policy = r.json()["policy"]
    assert policy["withdraw_deadline_hours"] == 2 and policy["backfilled_points"] is True


async def test_an_admin_publishes_for_an_organisation(acts: Activities) -> None:
    admin = await _phone(acts, "admin", None, "管理员")
    day = (now() + timedelta(days=4)).date().isoformat()
    async with closing(admin):
        page = await admin.get("/staff/activities")
        assert page.status_code == 200 and "华锦志愿服务队" in page.text
        r = await post_form(
            admin,
            "/staff/activities",
            "/staff/activities",
            organisation_id=acts.org["id"],
            title="植树",
            category="volunteer_service",
            place="河边",
            day=day,
            start="08:00",
            end="10:30",
            capacity="20",
            min_star="1",
        )
        assert r.status_code == 303, r.text
        assert r.headers["location"].startswith("/staff/activities/")
        shown = await admin.get(r.headers["location"])
        assert "植树" in shown.text and "/check-in" in shown.text


async def test_the_staff_see_a_members_no_shows_on_the_member_page(acts: Activities) -> None:
    """Each member's no-show count is visible to staff: on the console's member page."""
    start = now() - timedelta(hours=3)
    a = await acts.publish(start, start + timedelta(hours=1))
    member, key = await acts.volunteer()
    staff = await _phone(acts, "admin", None, "社工 小陈")
    async with closing(staff):
        page = await staff.get(f"/staff/members/{member['id']}")
        assert page.status_code == 200 and "报名的活动都按时到场了。" in page.text
        with clock_at(acts.c, start - timedelta(days=2)):
            assert (await acts.sign_up(a["id"], key)).status_code == 201
        page = await staff.get(f"/staff/members/{member['id']}")
        assert 'id="no-shows"' in page.text and "有 1 次报名了活动却未到场。" in page.text

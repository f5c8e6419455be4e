"""The districts' pages over HTTP (no browser): a district admin reads positions, sets a
limit and a rate, proposes a settlement that a second district admin approves (the
proposer is offered no approve button), positions come back to zero; a community's
staff see their district and crossings but never another community's members; a
community joins by both consents from the pages; residents and community admins
cannot open the district's pages; the public page shows the district position."""

from __future__ import annotations

import re
import uuid
from contextlib import aclosing
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.districts.helpers import District, cross, new_district, new_tenant
from tests.people.pages import add_person, browser, post_form, sign_in
from timebank.core.access import Principal
from timebank.core.roles import Role
from timebank.people import accounts

PASSWORD = "district-pages-pw"
ZONE = ZoneInfo("Asia/Shanghai")
SETTLEMENT = re.compile(r"^/district/settlements/([0-9a-f-]{36})\?done=proposed$")


def _login(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


async def district_admin(engine: AsyncEngine, district: District, name: str) -> str:
    """A district admin person (as `timebank district create` makes them); their login."""
    login = _login("district")
    office = Principal(uuid.uuid4(), uuid.UUID(district.id), Role.DISTRICT_ADMIN, None)
    async with engine.begin() as conn:
        await accounts.create_person(
            conn,
            office,
            role=Role.DISTRICT_ADMIN.value,
            subject_id=None,
            display_name=name,
            login=login,
            password=PASSWORD,
        )
    return login


async def signed_in(
    client: httpx.AsyncClient, login: str, home: str, lang: str = "zh-CN"
) -> httpx.AsyncClient:
    phone = browser(client, lang)
    r = await sign_in(phone, login, PASSWORD)
    assert r.status_code == 303 and r.headers["location"] == home, (r.status_code, r.text[:300])
    return phone


async def name_of(tenant: Any) -> str:
    r = await tenant.client.get("/v1/community", headers=tenant.auth())
    return r.json()["name"]


async def crossed(client: httpx.AsyncClient, engine: AsyncEngine) -> dict[str, Any]:
    """A district of two communities; 2 hours and 30 points crossed from A's 阿丽 to B's 鲍勃."""
    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await a.member("阿丽"), await b.member("鲍勃")
    await a.fund(alice["accounts"]["HOUR"], "HOUR", 600)
    await a.fund(alice["accounts"]["POINT"], "POINT", 100)
    key = await a.key("resident", alice["id"])
    for asset, amount in (("HOUR", 120), ("POINT", 30)):
        body = {"to_community_id": b.id, "to_party_id": bob["id"], "asset": asset, "amount": amount}
        r = await cross(a, key, body)
        assert r.status_code == 201, r.text
    return {"d": d, "a": a, "b": b, "alice": alice, "bob": bob, "names": [await name_of(a), await name_of(b)]}


def today() -> str:
    return datetime.now(ZONE).date().isoformat()


async def test_a_district_admin_sees_positions_sets_limits_and_rates_and_two_admins_settle(client, engine):
    s = await crossed(client, engine)
    d, a, b = s["d"], s["a"], s["b"]
    first = await signed_in(client, await district_admin(engine, d, "街道 老周"), "/district")
    second = await signed_in(client, await district_admin(engine, d, "街道 小吴"), "/district", "en")
    async with aclosing(first), aclosing(second):
        page = await first.get("/district")
        assert page.status_code == 200, page.text
        for name in s["names"]:
            assert name in page.text
        # positions as hours and points, the limit's use as a bar and in words
        assert (
            f'id="gauge-{a.id}-HOUR"' in page.text
            and "-2\u00a0小时" in page.text
            and "+2\u00a0小时" in page.text
        )
        assert 'max="6000" value="120"' in page.text  # 2 h of a 100 h limit
        assert "-30\u00a0积分" in page.text or "-30" in page.text
        assert "阿丽" not in page.text and "鲍勃" not in page.text  # never a member

        # limits (hours typed as hours) and points values; a wrong one is explained next to its form
        settings = f"/district/communities/{a.id}/settings"
        wrong = await post_form(
            first, "/district", settings, hour_limit="lots", point_limit="10", points_per_unit="1"
        )
        assert wrong.status_code == 400 and f'id="settings-{a.id}-error"' in wrong.text
        wrong = await post_form(
            first, "/district", settings, hour_limit="50", point_limit="10", points_per_unit="0"
        )
        assert wrong.status_code == 400 and f'id="settings-{a.id}-error"' in wrong.text
        r = await post_form(
            first, "/district", settings, hour_limit="50", point_limit="3000", points_per_unit="3"
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/district?done=saved")
        r = await post_form(
            first,
            "/district",
            f"/district/communities/{b.id}/settings",
            hour_limit="100",
            point_limit="5000",
            points_per_unit="2",
        )
        assert r.status_code == 303, r.text
        view = (await d.get("/v1/district")).json()
        limits = {c["community_id"]: c["limits"] for c in view["communities"]}
        assert limits[a.id] == {"HOUR": 3000, "POINT": 3000}
        values = {c["community_id"]: c["points_per_unit"] for c in view["communities"]}
        assert values == {a.id: 3, b.id: 2}
        page = await first.get("/district")
        assert f'id="hour-limit-{a.id}"' in page.text and 'value="50"' in page.text
        # the pair's rate, from the two values: 3 of A's points are worth 2 of B's
        names = {c["community_id"]: c["name"] for c in view["communities"]}
        rate = {(r["community_a"], r["community_b"]): (r["a_points"], r["b_points"]) for r in view["rates"]}
        pair = (a.id, b.id) if (a.id, b.id) in rate else (b.id, a.id)
        n_first, n_second = rate[pair]
        assert (
            f"{n_first} points of {names[pair[0]]} are worth {n_second} points of {names[pair[1]]}"
            in (await second.get("/district")).text
        )

        # the figures of this month: the pair, both assets
        figures = await first.get("/district/crossings")
        assert figures.status_code == 200
        assert f"{s['names'][0]} → {s['names'][1]}" in figures.text and "<svg" in figures.text
        assert "阿丽" not in figures.text and "鲍勃" not in figures.text

        # the first admin proposes a settlement of this month
        r = await post_form(
            first,
            "/district/settlements",
            "/district/settlements",
            **{"from": today()[:8] + "01", "to": today()},
        )
        assert r.status_code == 303, r.text
        found = SETTLEMENT.match(r.headers["location"])
        assert found, r.headers["location"]
        sid = found.group(1)
        mine = await first.get(f"/district/settlements/{sid}")
        assert mine.status_code == 200
        assert 'id="second-admin"' in mine.text  # the page says another admin approves
        assert f'action="/district/settlements/{sid}/approve"' not in mine.text
        assert f'href="/district/settlements/{sid}/approve"' not in mine.text
        assert "-2\u00a0小时" in mine.text  # the line that brings A's hours back
        confirm = await first.get(f"/district/settlements/{sid}/approve")
        assert confirm.status_code == 303 and confirm.headers["location"] == f"/district/settlements/{sid}"
        # and if they post anyway, nothing moves
        refused = await post_form(
            first, f"/district/settlements/{sid}", f"/district/settlements/{sid}/approve"
        )
        assert refused.status_code == 409
        assert (await d.positions())[(a.id, "HOUR")] == -120
        # no second proposal while one waits
        listing = await first.get("/district/settlements")
        assert 'id="open-settlement"' in listing.text and 'id="propose-form"' not in listing.text

        # the second admin approves it, after a confirmation step
        theirs = await second.get(f"/district/settlements/{sid}")
        assert 'id="second-admin"' not in theirs.text and 'id="approve-link"' in theirs.text
        confirm = await second.get(f"/district/settlements/{sid}/approve")
        assert confirm.status_code == 200 and f'action="/district/settlements/{sid}/approve"' in confirm.text
        r = await post_form(
            second, f"/district/settlements/{sid}/approve", f"/district/settlements/{sid}/approve"
        )
        assert r.status_code == 303 and r.headers["location"] == f"/district/settlements/{sid}?done=approved"
        assert set((await d.positions()).values()) == {0}
        done = await second.get(r.headers["location"])
        assert 'id="transactions"' in done.text and "Approved and posted" in done.text
        settled = (await d.get(f"/v1/district/settlements/{sid}")).json()
        assert settled["status"] == "approved" and settled["district_transaction_id"] in done.text
        for part in settled["parts"]:
            assert part["transaction_id"] in done.text
        # sent again: nothing moves twice, the page says so
        again = await post_form(
            second, f"/district/settlements/{sid}", f"/district/settlements/{sid}/approve"
        )
        assert again.status_code == 409
        assert set((await d.positions()).values()) == {0}
        history = await second.get("/district/settlements")
        assert settled["district_transaction_id"] in history.text
        assert "nothing to settle" in history.text.lower()
        overview = await second.get("/district")
        assert 'value="0"' in overview.text and "Even: nothing to settle" in overview.text


async def test_a_proposal_can_be_cancelled_and_a_period_is_checked(client, engine):
    s = await crossed(client, engine)
    d = s["d"]
    phone = await signed_in(client, await district_admin(engine, d, "街道 老周"), "/district", "en")
    async with aclosing(phone):
        wrong = await post_form(
            phone, "/district/settlements", "/district/settlements", **{"from": today(), "to": "2001-01-01"}
        )
        assert wrong.status_code == 400 and 'id="to-error"' in wrong.text
        empty = await post_form(
            phone, "/district/settlements", "/district/settlements", **{"from": "", "to": ""}
        )
        assert empty.status_code == 400 and 'id="from-error"' in empty.text
        r = await post_form(
            phone, "/district/settlements", "/district/settlements", **{"from": today(), "to": today()}
        )
        sid = SETTLEMENT.match(r.headers["location"]).group(1)  # type: ignore[union-attr]
        r = await post_form(phone, f"/district/settlements/{sid}", f"/district/settlements/{sid}/cancel")
        assert r.status_code == 303 and r.headers["location"].endswith("?done=cancelled")
        page = await phone.get(r.headers["location"])
        assert (
            "Cancelled" in page.text and 'action="/district/settlements/' not in page.text.split("<main")[1]
        )
        assert (await d.positions())[(s["a"].id, "HOUR")] == -120
        # a limit lowered below the position: the page says the position is past it
        r = await post_form(
            phone,
            "/district",
            f"/district/communities/{s['a'].id}/settings",
            hour_limit="1",
            point_limit="5000",
            points_per_unit="1",
        )
        assert r.status_code == 303
        overview = await phone.get("/district")
        gauge = overview.text.split(f'id="gauge-{s["a"].id}-HOUR"', 1)[1].split('class="district-gauge"', 1)[
            0
        ]
        assert 'max="60" value="60"' in gauge and "200%" in gauge and "Past the limit" in gauge


async def test_community_staff_see_their_district_and_crossings_but_no_other_members(client, engine):
    s = await crossed(client, engine)
    a, b = s["a"], s["b"]
    login = _login("staff")
    await add_person(a, "admin", None, "社工 小陈", login, PASSWORD)
    board = await a.member("监事 老李")
    board_login = _login("board")
    await add_person(a, "auditor", board["id"], "监事 老李", board_login, PASSWORD)
    staff = await signed_in(client, login, "/staff")
    auditor = await signed_in(client, board_login, "/staff", "en")
    async with aclosing(staff), aclosing(auditor):
        page = await staff.get("/staff/district")
        assert page.status_code == 200, page.text
        assert 'href="/staff/district" aria-current="page"' in page.text
        view = (await s["d"].get("/v1/district")).json()
        assert view["name"] in page.text and s["names"][1] in page.text
        assert "-2\u00a0小时" in page.text  # this community's position
        assert page.text.count('class="card"') >= 1 and 'id="recent"' in page.text
        assert "鲍勃" not in page.text  # the other community's member
        # the crossing out, linked to its transaction in this community's journal
        items = (await client.get("/v1/crossings", headers=a.auth())).json()["items"]
        assert len(items) == 2
        for c in items:
            assert f'href="/staff/journal/{c["from"]["transaction_id"]}"' in page.text
        journal = await staff.get(f"/staff/journal/{items[0]['from']['transaction_id']}")
        assert journal.status_code == 200
        assert "鲍勃" not in journal.text
        # the board reads it, with nothing to post
        read = await auditor.get("/staff/district")
        assert read.status_code == 200 and 'action="/staff/district"' not in read.text

    # B's staff see the crossing in, never A's member
    b_login = _login("staff")
    await add_person(b, "admin", None, "社工 小王", b_login, PASSWORD)
    async with aclosing(await signed_in(client, b_login, "/staff")) as phone:
        page = await phone.get("/staff/district")
        assert "+2\u00a0小时" in page.text and "阿丽" not in page.text


async def test_a_community_joins_by_both_consents_on_the_pages(client, engine):
    d = await new_district(client, engine, 1)
    newcomer = await new_tenant(client, engine, "新社区")
    login = _login("staff")
    await add_person(newcomer, "admin", None, "社工 小林", login, PASSWORD)
    office = await signed_in(client, await district_admin(engine, d, "街道 老周"), "/district", "en")
    staff = await signed_in(client, login, "/staff", "en")
    async with aclosing(office), aclosing(staff):
        page = await staff.get("/staff/district")
        assert "not in a district" in page.text and newcomer.id in page.text
        wrong = await post_form(staff, "/staff/district", "/staff/district", district_id="nonsense")
        assert wrong.status_code == 400 and 'aria-invalid="true"' in wrong.text
        unknown = await post_form(staff, "/staff/district", "/staff/district", district_id=str(uuid.uuid4()))
        assert unknown.status_code == 404
        r = await post_form(staff, "/staff/district", "/staff/district", district_id=d.id)
        assert r.status_code == 303 and r.headers["location"] == "/staff/district?done=joined"
        asked = await staff.get(r.headers["location"])
        assert "waiting for the district" in asked.text

        overview = await office.get("/district")
        name = await name_of(newcomer)
        assert (
            name in overview.text and f'action="/district/communities/{newcomer.id}/consent"' in overview.text
        )
        r = await post_form(office, "/district", f"/district/communities/{newcomer.id}/consent")
        assert r.status_code == 303
        overview = await office.get("/district")
        assert f'id="community-{newcomer.id}"' in overview.text

        joined = await staff.get("/staff/district")
        assert 'id="gauge-HOUR"' in joined.text and "Joined" in joined.text

        # the district invites by id; a wrong id is explained
        other = await new_tenant(client, engine, "邻社区")
        bad = await post_form(office, "/district", "/district/invite", community_id=str(uuid.uuid4()))
        assert bad.status_code == 404 and 'id="invite-error"' in bad.text
        r = await post_form(office, "/district", "/district/invite", community_id=other.id)
        assert r.status_code == 303
        overview = await office.get("/district")
        assert f'id="waiting-{other.id}"' in overview.text and "waiting for the community" in overview.text


async def test_residents_and_community_admins_cannot_open_the_district_pages(client, engine):
    s = await crossed(client, engine)
    a, d = s["a"], s["d"]
    resident_login, admin_login = _login("res"), _login("staff")
    await add_person(a, "resident", s["alice"]["id"], "阿丽", resident_login, PASSWORD)
    await add_person(a, "admin", None, "社工 小陈", admin_login, PASSWORD)
    resident = await signed_in(client, resident_login, "/me")
    admin = await signed_in(client, admin_login, "/staff")
    office = await signed_in(client, await district_admin(engine, d, "街道 老周"), "/district")
    async with aclosing(resident), aclosing(admin), aclosing(office):
        for phone in (resident, admin):
            for path in ("/district", "/district/settlements", "/district/crossings"):
                r = await phone.get(path)
                assert r.status_code == 403, (path, r.status_code)
                assert "阿丽" not in r.text or phone is resident
        # posting to them is refused too
        r = await post_form(
            admin,
            "/staff",
            f"/district/communities/{a.id}/settings",
            hour_limit="1",
            point_limit="1",
            points_per_unit="1",
        )
        assert r.status_code == 403
        # a district admin has no community's pages
        for path in ("/staff", "/staff/district", "/staff/members", "/me"):
            r = await office.get(path)
            assert r.status_code == 403, (path, r.status_code)
        # and is sent home to the district; their own account page and signing out work
        root = await office.get("/")
        assert root.headers["location"] == "/district"
        account = await office.get("/account")
        assert account.status_code == 200 and "街道 老周" in account.text
        out = await post_form(office, "/district", "/sign-out")
        assert out.status_code == 303 and out.headers["location"] == "/sign-in"
        assert (await office.get("/district")).status_code == 303  # to the sign-in page


async def test_the_public_page_shows_the_district_position(client, engine):
    s = await crossed(client, engine)
    a = s["a"]
    view = (await s["d"].get("/v1/district")).json()
    async with browser(client, "en") as visitor:
        page = await visitor.get(f"/p/{a.id}")
        assert page.status_code == 200
        assert 'id="district"' in page.text and view["name"] in page.text
        assert "-2 h" in page.text and "-30 points" in page.text
        assert "阿丽" not in page.text and "鲍勃" not in page.text
    lone = await new_tenant(client, engine, "独立社区")
    async with browser(client, "en") as visitor:
        page = await visitor.get(f"/p/{lone.id}")
        assert page.status_code == 200 and 'id="district"' not in page.text


async def test_a_district_admin_adds_a_second_one_on_the_people_page(client, engine):
    """Four eyes on the pages: the district office adds its second admin itself."""
    d = await new_district(client, engine, 1)
    first = await signed_in(client, await district_admin(engine, d, "街道 老周"), "/district")
    page = await first.get("/staff/people")
    assert page.status_code == 200 and "/staff/people" in page.text
    assert 'name="subject_id"' not in page.text  # a district's people act for the district
    assert 'value="district_admin"' in page.text and 'value="resident"' not in page.text
    login = _login("second")
    r = await post_form(
        first, "/staff/people", "/staff/people",
        display_name="街道 小李", role="district_admin", login=login, password=PASSWORD,
    )  # fmt: skip
    assert r.status_code == 303, r.text[:500]
    person_page = await first.get(r.headers["location"])
    assert person_page.status_code == 200 and "街道 小李" in person_page.text
    # A community role is refused on the district's page, and nothing is made.
    r = await post_form(first, "/staff/people", "/staff/people", display_name="某人", role="resident")
    assert r.status_code == 400
    second = await signed_in(client, login, "/district")
    assert (await second.get("/district")).status_code == 200
    # Community staff and residents cannot reach the district's people.
    tenant = d.communities[0]
    staff = await add_person(tenant, "admin", None, "社工", _login("staff"), PASSWORD)
    phone = await signed_in(client, staff["login"], "/staff")
    listed = await phone.get("/staff/people")
    assert "街道 小李" not in listed.text
    for c in (first, second, phone):
        await c.aclose()

"""Staff add people and give them one-time sign-in cards, from the pages."""

from __future__ import annotations

import re
import uuid

from tests.people.pages import add_person, browser, csrf, post_form, sign_in


async def _staff(tenant) -> tuple[str, str]:
    login = f"staff-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "admin", None, "社工 小周", login, "staff-password")
    return login, "staff-password"


async def test_staff_add_a_resident_and_print_a_card_that_signs_in_once(tenant) -> None:
    member = await tenant.member("赵奶奶")
    login, password = await _staff(tenant)
    async with browser(tenant.client) as desk:
        r = await sign_in(desk, login, password)
        assert r.headers["location"] == "/staff"
        assert (await desk.get("/staff")).status_code == 200
        page = await desk.get("/staff/people")
        assert "赵奶奶" in page.text  # offered as the member to act for
        added = await post_form(
            desk,
            "/staff/people",
            "/staff/people",
            display_name="赵奶奶",
            role="resident",
            subject_id=member["id"],
        )
        assert added.status_code == 303, added.text
        person_page = added.headers["location"]
        token = await csrf(desk, person_page)
        card = await desk.post(f"{person_page}/links", data={"_csrf_token": token, "hours": "48"})
        assert card.status_code == 200, card.text
        assert "<svg" in card.text and 'role="img"' in card.text
        link = re.search(r'href="(http://[^"]+/s/[^"]+)"', card.text).group(1)
    path = link.split("timebank.test", 1)[1]
    async with browser(tenant.client) as phone:
        token = await csrf(phone, path)
        signed = await phone.post(path, data={"_csrf_token": token})
        assert signed.headers["location"] == "/me"
    async with browser(tenant.client) as again:
        assert (await again.get(path)).status_code == 410


async def test_a_wrong_subject_is_explained_and_nothing_is_added(tenant) -> None:
    shop = await tenant.party("merchants", "小店")
    login, password = await _staff(tenant)
    async with browser(tenant.client) as desk:
        await sign_in(desk, login, password)
        before = (await tenant.client.get("/v1/people", headers=tenant.auth())).json()["items"]
        r = await post_form(
            desk,
            "/staff/people",
            "/staff/people",
            display_name="错的人",
            role="resident",
            subject_id=shop["id"],
        )
        assert r.status_code == 400 and 'class="alert"' in r.text
        after = (await tenant.client.get("/v1/people", headers=tenant.auth())).json()["items"]
        assert len(after) == len(before)


async def test_staff_pages_are_closed_to_residents_and_to_other_communities(tenant, other_tenant) -> None:
    member = await tenant.member()
    await add_person(
        tenant, "resident", member["id"], "居民", f"r-{uuid.uuid4().hex[:8]}", "resident-password"
    )
    resident_login = (await tenant.client.get("/v1/people", headers=tenant.auth())).json()["items"][-1][
        "login"
    ]
    async with browser(tenant.client) as phone:
        await sign_in(phone, resident_login, "resident-password")
        assert (await phone.get("/staff/people")).status_code == 403
    # a staff member of another community: another community's person is "not found", and a
    # form posted at it changes nothing
    theirs = await add_person(
        other_tenant, "resident", (await other_tenant.member())["id"], "别人", None, None
    )
    login, password = await _staff(tenant)
    async with browser(tenant.client) as desk:
        await sign_in(desk, login, password)
        assert (await desk.get(f"/staff/people/{theirs['id']}")).status_code == 404
        token = await csrf(desk, "/staff/people")
        r = await desk.post(f"/staff/people/{theirs['id']}/disable", data={"_csrf_token": token})
        assert r.status_code == 404
    person = (await other_tenant.client.get(f"/v1/people/{theirs['id']}", headers=other_tenant.auth())).json()
    assert person["disabled_at"] is None


async def test_disabling_a_person_ends_their_sessions(tenant) -> None:
    member = await tenant.member()
    rlogin = f"r-{uuid.uuid4().hex[:8]}"
    person = await add_person(tenant, "resident", member["id"], "居民", rlogin, "resident-password")
    async with browser(tenant.client) as phone:
        await sign_in(phone, rlogin, "resident-password")
        assert (await phone.get("/account")).status_code == 200
        r = await tenant.client.post(f"/v1/people/{person['id']}/disable", headers=tenant.auth())
        assert r.status_code == 200
        assert (await phone.get("/account")).status_code == 303
        assert (await sign_in(phone, rlogin, "resident-password")).status_code == 401

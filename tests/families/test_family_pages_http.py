"""The family pages over HTTP (no browser): make a code, enter it, the staff confirm,
give with a confirmation step (a resent form moves nothing twice), grants, the record,
the relative's balances, ending; refusals shown in words on the form."""

from __future__ import annotations

import re
import uuid

from tests.districts.helpers import new_district
from tests.families.helpers import member
from tests.people.pages import add_person, browser, csrf, post_form, sign_in

PASSWORD = "family-password-1"
IDEM = re.compile(r'name="idem" value="([^"]+)"')
CODE = re.compile(r'id="family-code">([A-Z0-9 ]+)<')


def login() -> str:
    return f"fam-{uuid.uuid4().hex[:10]}"


async def signed_in(tenant, role: str, subject: str | None, name: str):
    who = login()
    await add_person(tenant, role, subject, name, who, PASSWORD)
    phone = browser(tenant.client)
    r = await sign_in(phone, who, PASSWORD)
    assert r.status_code == 303, r.text
    return phone


async def test_a_resident_links_gives_and_grants_through_the_pages(client, engine):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    mother, son = await member(a, "王阿姨"), await member(b, "王小明")
    await b.fund(son.party["accounts"]["HOUR"], "HOUR", 600)
    son_phone = await signed_in(b, "resident", son.id, "王小明")
    mother_phone = await signed_in(a, "resident", mother.id, "王阿姨")
    staff_phone = await signed_in(a, "admin", None, "社工")

    page = await son_phone.get("/me/family")
    assert page.status_code == 200 and 'href="/me/family"' in page.text and 'aria-current="page"' in page.text
    r = await post_form(son_phone, "/me/family", "/me/family/code", relation="nothing")
    assert r.status_code == 400 and 'role="alert"' in r.text
    r = await post_form(son_phone, "/me/family", "/me/family/code", relation="parent")
    assert r.status_code == 200, r.text
    code = CODE.search(r.text).group(1)
    assert len(code.replace(" ", "")) == 8

    # the mother types it wrong first: told in words, nothing changes
    r = await post_form(mother_phone, "/me/family", "/me/family/accept", code="ZZZZ 2222")
    assert r.status_code == 422 and 'id="code-error"' in r.text
    r = await post_form(mother_phone, "/me/family", "/me/family/accept", code=code.lower())
    assert r.status_code == 303 and r.headers["location"] == "/me/family?done=accepted", r.text
    page = await mother_phone.get("/me/family?done=accepted")
    assert "王小明" in page.text and 'id="family-done"' in page.text
    link = re.search(r'id="link-([0-9a-f-]{36})"', page.text).group(1)
    # not live yet: the link's page sends back to the list
    r = await son_phone.get(f"/me/family/{link}")
    assert r.status_code == 303 and r.headers["location"] == "/me/family"

    # the staff of the mother's community confirm it
    staff = await staff_phone.get("/staff/family-links")
    assert staff.status_code == 200 and "王阿姨" in staff.text and "王小明" in staff.text
    assert 'aria-current="page"' in staff.text and 'href="/staff/members" aria-current="page"' in staff.text
    r = await post_form(staff_phone, "/staff/family-links", f"/staff/family-links/{link}/confirm")
    assert r.status_code == 303 and r.headers["location"] == "/staff/family-links?done=confirmed"

    # the son gives two hours: a confirmation first, then once only, however often it is sent
    page = await son_phone.get(f"/me/family/{link}")
    assert page.status_code == 200 and "王阿姨" in page.text
    r = await post_form(
        son_phone, f"/me/family/{link}", f"/me/family/{link}/give", asset="HOUR", amount="abc"
    )
    assert r.status_code == 400 and 'id="link-error"' in r.text
    r = await post_form(son_phone, f"/me/family/{link}", f"/me/family/{link}/give", asset="HOUR", amount="2")
    assert r.status_code == 200 and "/give/confirm" in r.text, r.text
    assert (await son.balance("HOUR"))["posted"] == 600  # nothing moved yet
    idem = IDEM.search(r.text).group(1)
    token = await csrf(son_phone, f"/me/family/{link}")
    form = {"_csrf_token": token, "idem": idem, "asset": "HOUR", "amount": "2", "note": "给妈妈"}
    first = await son_phone.post(f"/me/family/{link}/give/confirm", data=form)
    again = await son_phone.post(f"/me/family/{link}/give/confirm", data=form)
    assert first.status_code == again.status_code == 303, first.text
    assert first.headers["location"] == again.headers["location"]
    assert (await son.balance("HOUR"))["posted"] == 480
    assert (await mother.balance("HOUR"))["posted"] == 120
    done = await son_phone.get(first.headers["location"])
    assert done.status_code == 200 and 'id="given"' in done.text and "王阿姨" in done.text
    # another member cannot read that gift's page
    r = await mother_phone.get(first.headers["location"])
    assert r.status_code == 404

    # grants: the mother lets her son see her hours and points; he looks, it is recorded
    r = await son_phone.get(f"/me/family/{link}/relative")
    assert r.status_code == 403 and 'id="link-error"' in r.text
    r = await post_form(mother_phone, f"/me/family/{link}", f"/me/family/{link}/grants", grant_view="1")
    assert r.status_code == 303 and r.headers["location"].endswith("?done=grants#grants")
    page = await mother_phone.get(f"/me/family/{link}")
    assert 'id="grant-view" name="grant_view" value="1" checked' in page.text
    assert 'id="grant-give" name="grant_give" value="1">' in page.text
    r = await son_phone.get(f"/me/family/{link}/relative")
    assert r.status_code == 200 and 'id="relative-hours"' in r.text, r.text
    page = await mother_phone.get(f"/me/family/{link}")
    assert page.text.count('class="card"') >= 1 and "王小明" in page.text

    # ending, with a confirmation step
    r = await son_phone.get(f"/me/family/{link}/end")
    assert r.status_code == 200 and f'action="/me/family/{link}/end"' in r.text
    r = await post_form(son_phone, f"/me/family/{link}/end", f"/me/family/{link}/end")
    assert r.status_code == 303 and r.headers["location"] == "/me/family?done=ended"
    page = await son_phone.get("/me/family?done=ended")
    assert f'id="link-{link}"' not in page.text
    for phone in (son_phone, mother_phone, staff_phone):
        await phone.aclose()


async def test_the_staff_of_another_community_see_nothing(client, engine):
    d = await new_district(client, engine, 3)
    a, b, c = d.communities
    mother, son = await member(a, "甲"), await member(b, "乙")
    offer = await son.offer("parent")
    assert (await mother.accept(offer["code"])).status_code == 200
    other = await signed_in(c, "admin", None, "别的社工")
    page = await other.get("/staff/family-links")
    assert page.status_code == 200 and "甲" not in page.text and "乙" not in page.text
    r = await post_form(other, "/staff/family-links", f"/staff/family-links/{offer['id']}/confirm")
    assert r.status_code == 404
    resident = await signed_in(c, "resident", (await c.member("丙"))["id"], "丙")
    r = await resident.get(f"/me/family/{offer['id']}")
    assert r.status_code == 404
    r = await resident.get("/staff/family-links")
    assert r.status_code == 403
    for phone in (other, resident):
        await phone.aclose()

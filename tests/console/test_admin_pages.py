"""Community administration in the console (issue 15), over HTTP: members (search by
name, phone and id, register with a sign-in person, the member's page, corrections,
member cards), organisations (register, trust for approval as recorded), merchants,
API keys, the policy editor and its versions; the supervisory board reads every page
without forms, and its forged posts are refused with nothing changed."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
import pytest

from tests.people.pages import add_person, browser, csrf, post_form, sign_in
from timebank.community import service as community
from timebank.core.access import Principal
from timebank.core.policy import Policy
from timebank.core.problems import DuplicateExternalRef, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.volunteer import policy_pages

PASSWORD = "staff-password-1"
POST_FORM = re.compile(r'<form[^>]*method="post"[^>]*action="([^"]+)"')
HARMLESS = {"/settings/language", "/settings/text-size", "/sign-out"}


def phone_number() -> str:
    """A mainland mobile number no other test uses (logins are unique across communities)."""
    return "13" + str(uuid.uuid4().int)[:9]


async def staff(tenant: Any, role: str = "admin") -> str:
    """A person of ``role`` who signs in with a password; their login."""
    login = f"{role}-{uuid.uuid4().hex[:8]}"
    subject = None if role == "admin" else (await tenant.member("监事 老刘"))["id"]
    await add_person(tenant, role, subject, "社工 小周" if role == "admin" else "监事 老刘", login, PASSWORD)
    return login


@asynccontextmanager
async def desk(tenant: Any, role: str = "admin") -> AsyncIterator[Any]:
    """A signed-in browser of a staff member (or a board member), in English."""
    login = await staff(tenant, role)
    async with browser(tenant.client, "en") as phone:
        r = await sign_in(phone, login, PASSWORD)
        assert r.status_code == 303, r.text
        yield phone


async def people(tenant: Any) -> list[dict[str, Any]]:
    return (await tenant.client.get("/v1/people", headers=tenant.auth())).json()["items"]


async def members(tenant: Any) -> list[dict[str, Any]]:
    r = await tenant.client.get("/v1/members?limit=500", headers=tenant.auth())
    return r.json()["items"]


async def policy(tenant: Any) -> dict[str, Any]:
    return (await tenant.client.get("/v1/community/policy", headers=tenant.auth())).json()


def actions(html: str) -> set[str]:
    return set(POST_FORM.findall(html)) - HARMLESS


# --- members ---------------------------------------------------------------------------------------


async def test_find_members_by_name_phone_and_id_page_by_page(tenant) -> None:
    zhao = await tenant.member("赵奶奶")
    qian = await tenant.member("钱爷爷")
    number = phone_number()
    await add_person(tenant, "resident", qian["id"], "钱爷爷", number, None)
    for i in range(26):
        await tenant.member(f"志愿者 {i:02d}")
    async with desk(tenant) as phone:
        by_name = await phone.get("/staff/members", params={"q": "奶奶"})
        assert by_name.status_code == 200
        assert f"/staff/members/{zhao['id']}" in by_name.text
        assert f"/staff/members/{qian['id']}" not in by_name.text
        # the phone number as people type it
        typed = f"+86 {number[:3]}-{number[3:7]}-{number[7:]}"
        by_phone = await phone.get("/staff/members", params={"q": typed})
        assert f"/staff/members/{qian['id']}" in by_phone.text and number in by_phone.text
        by_id = await phone.get("/staff/members", params={"q": zhao["id"]})
        assert f"/staff/members/{zhao['id']}" in by_id.text
        assert f"/staff/members/{qian['id']}" not in by_id.text
        # % and _ are letters to look for, not wildcards
        assert "/staff/members/" not in (await phone.get("/staff/members", params={"q": "%"})).text
        # the search box's partial (htmx): the list alone
        partial = await phone.get("/staff/members", params={"q": "爷爷"}, headers={"HX-Request": "true"})
        assert "<html" not in partial.text and f"/staff/members/{qian['id']}" in partial.text
        # by cursor: 25 a page, then the rest, none twice
        first = await phone.get("/staff/members", params={"q": "志愿者"})
        ids = re.findall(r'href="/staff/members/([0-9a-f-]{36})"', first.text)
        assert len(ids) == 25
        cursor = re.search(r"cursor=([0-9a-f-]{36})", first.text).group(1)
        second = await phone.get("/staff/members", params={"q": "志愿者", "cursor": cursor})
        more = re.findall(r'href="/staff/members/([0-9a-f-]{36})"', second.text)
        assert len(more) == 1 and not set(more) & set(ids)


async def test_register_a_member_with_a_phone_to_sign_in_with(tenant) -> None:
    number = phone_number()
    async with desk(tenant) as phone:
        r = await post_form(
            phone,
            "/staff/members",
            "/staff/members",
            display_name="孙阿姨",
            external_ref="HJ-001",
            login=f"{number[:3]} {number[3:7]} {number[7:]}",
        )
        assert r.status_code == 303, r.text
        member_id = r.headers["location"].split("/")[-1].split("?")[0]
        got = (await tenant.client.get(f"/v1/members/{member_id}", headers=tenant.auth())).json()
        assert got["display_name"] == "孙阿姨" and got["external_ref"] == "HJ-001"
        person = next(p for p in await people(tenant) if p["subject_id"] == member_id)
        assert person["role"] == "resident" and person["login"] == number
        page = await phone.get(r.headers["location"])
        assert page.status_code == 200 and number in page.text

        # the same phone again: refused, and neither the member nor the person is made
        before, people_before = len(await members(tenant)), len(await people(tenant))
        again = await post_form(
            phone, "/staff/members", "/staff/members", display_name="另一个人", login=number
        )
        assert again.status_code == 409 and 'id="err-login"' in again.text
        assert len(await members(tenant)) == before and len(await people(tenant)) == people_before
        # a member number already taken: said beside the field
        taken = await post_form(
            phone, "/staff/members", "/staff/members", display_name="重号", external_ref="HJ-001"
        )
        assert taken.status_code == 409 and 'id="err-external_ref"' in taken.text
        # without a phone: a member alone
        alone = await post_form(phone, "/staff/members", "/staff/members", display_name="周大爷")
        assert alone.status_code == 303
        assert len(await people(tenant)) == people_before


async def test_the_member_page_shows_balances_star_history_records_and_receipts(tenant) -> None:
    member = await tenant.member("吴奶奶")
    org = await tenant.party("organisations", "阳光助老队")
    recorder = await tenant.key("recorder", org["id"])
    tx = await tenant.fund(member["accounts"]["HOUR"], "HOUR", 150)
    await tenant.fund(member["accounts"]["POINT"], "POINT", 40)
    start = datetime.now(UTC) - timedelta(days=1)
    record = await tenant.client.post(
        "/v1/service-records",
        headers=tenant.auth(recorder),
        json={
            "member_id": member["id"],
            "activity": "陪老人聊天",
            "category": "volunteer_service",
            "place": "日间照料中心",
            "started_at": start.isoformat(),
            "ended_at": (start + timedelta(hours=2)).isoformat(),
        },
    )
    assert record.status_code == 201, record.text
    async with desk(tenant) as phone:
        page = await phone.get(f"/staff/members/{member['id']}")
        assert page.status_code == 200
        text = page.text
        assert "2.5 h" in text and "40 points" in text  # the API's balances
        assert "0 stars of 5" in text
        assert f'href="/receipts/{tx["id"]}"' in text
        assert "陪老人聊天" in text and "Waiting for approval" in text
        receipt = await phone.get(f"/receipts/{tx['id']}")
        assert receipt.status_code == 200
        points = await phone.get(f"/staff/members/{member['id']}", params={"asset": "POINT"})
        assert "40 points" in points.text
        history = await phone.get(f"/staff/members/{member['id']}/history", params={"asset": "HOUR"})
        assert history.status_code == 200 and f'href="/receipts/{tx["id"]}"' in history.text
        records = await phone.get(f"/staff/members/{member['id']}/records")
        assert records.status_code == 200 and "陪老人聊天" in records.text
        # another community's member is not found
        assert (await phone.get(f"/staff/members/{uuid.uuid4()}")).status_code == 404


async def test_correct_a_members_name_and_number(tenant) -> None:
    member = await tenant.member("郑爷爷")
    other = await tenant.member("别人")
    r = await tenant.client.post(
        "/v1/members", json={"display_name": "有编号", "external_ref": "N-9"}, headers=tenant.auth()
    )
    assert r.status_code == 201
    async with desk(tenant) as phone:
        page = f"/staff/members/{member['id']}"
        r = await post_form(phone, page, page, display_name="郑大爷", external_ref="N-1")
        assert r.status_code == 303 and r.headers["location"] == f"{page}?saved=1"
        got = (await tenant.client.get(f"/v1/members/{member['id']}", headers=tenant.auth())).json()
        assert got["display_name"] == "郑大爷" and got["external_ref"] == "N-1"
        taken = await post_form(phone, page, page, display_name="郑大爷", external_ref="N-9")
        assert taken.status_code == 409 and 'id="err-external_ref"' in taken.text
        empty = await post_form(phone, page, page, display_name="", external_ref="")
        assert empty.status_code == 400 and 'id="err-display_name"' in empty.text
        # clearing the number
        r = await post_form(phone, page, page, display_name="郑大爷", external_ref="")
        got = (await tenant.client.get(f"/v1/members/{member['id']}", headers=tenant.auth())).json()
        assert "external_ref" not in got
        assert (await tenant.client.get(f"/v1/members/{other['id']}", headers=tenant.auth())).json()[
            "display_name"
        ] == "别人"


async def test_update_party_service(tenant, engine) -> None:
    """``community.update_party``: the registration's rules, admins only, in the community."""
    member = await tenant.member("王")
    shop = await tenant.party("merchants", "小店")
    admin = Principal(uuid.uuid4(), uuid.UUID(tenant.id), Role.ADMIN, None)
    auditor = Principal(uuid.uuid4(), uuid.UUID(tenant.id), Role.AUDITOR, uuid.UUID(member["id"]))
    elsewhere = Principal(uuid.uuid4(), uuid.uuid4(), Role.ADMIN, None)
    async with engine.begin() as conn:
        view = await community.update_party(
            conn, admin, PartyKind.MEMBER, uuid.UUID(member["id"]), " 王五 ", "R1"
        )
        assert view["display_name"] == "王五" and view["external_ref"] == "R1"
        assert set(view["accounts"]) == {"HOUR", "POINT"}
        with pytest.raises(Forbidden):
            await community.update_party(conn, auditor, PartyKind.MEMBER, uuid.UUID(member["id"]), "x", None)
        with pytest.raises(NotFound):  # a merchant is not a member
            await community.update_party(conn, admin, PartyKind.MEMBER, uuid.UUID(shop["id"]), "x", None)
        with pytest.raises(NotFound):
            await community.update_party(
                conn, elsewhere, PartyKind.MEMBER, uuid.UUID(member["id"]), "x", None
            )
        other = await community.create_party(conn, uuid.UUID(tenant.id), PartyKind.MEMBER, "赵", "R2")
        with pytest.raises(DuplicateExternalRef):
            await community.update_party(conn, admin, PartyKind.MEMBER, uuid.UUID(other["id"]), "赵", "R1")
        # the failed change left the transaction usable and changed nothing
        found, _ = await community.search_parties(conn, admin, PartyKind.MEMBER, "r1", None, 10)
        assert [p["id"] for p in found] == [member["id"]]


async def test_a_member_card_signs_the_member_in_once(tenant) -> None:
    member = await tenant.member("冯奶奶")
    async with desk(tenant) as phone:
        page = f"/staff/members/{member['id']}"
        assert "Nobody signs in as this member yet." in (await phone.get(page)).text
        r = await post_form(phone, page, f"{page}/person", login="")
        assert r.status_code == 303
        person = next(p for p in await people(tenant) if p["subject_id"] == member["id"])
        assert person["login"] is None
        token = await csrf(phone, page)
        card = await phone.post(
            f"{page}/card", data={"_csrf_token": token, "person_id": person["id"], "hours": "48"}
        )
        assert card.status_code == 200 and "no-store" in card.headers["cache-control"]
        assert '<svg class="qr" role="img"' in card.text and "冯奶奶" in card.text
        link = re.search(r'href="(http://[^"]+/s/[^"]+)"', card.text).group(1)
        # an open card can be cancelled from the member's page
        assert "/staff/links/" in (await phone.get(page)).text
        # a person of another member cannot be given a card here
        other = await tenant.member("别人")
        theirs = await add_person(tenant, "resident", other["id"], "别人", None, None)
        wrong = await phone.post(
            f"{page}/card", data={"_csrf_token": token, "person_id": theirs["id"], "hours": "48"}
        )
        assert wrong.status_code == 404
        bad_hours = await phone.post(
            f"{page}/card", data={"_csrf_token": token, "person_id": person["id"], "hours": "0"}
        )
        assert bad_hours.status_code == 400
    path = link.split("timebank.test", 1)[1]
    async with browser(tenant.client) as grandma:
        token = await csrf(grandma, path)
        signed = await grandma.post(path, data={"_csrf_token": token})
        assert signed.headers["location"] == "/me"
    async with browser(tenant.client) as again:
        assert (await again.get(path)).status_code == 410


# --- organisations, merchants, keys ----------------------------------------------------------------


async def test_register_organisations_and_trust_one(tenant) -> None:
    async with desk(tenant) as phone:
        r = await post_form(phone, "/staff/organisations", "/staff/organisations", name="华锦志愿服务队")
        assert r.status_code == 303
        org_id = r.headers["location"].split("added=")[1]
        listed = await phone.get(r.headers["location"])
        assert "华锦志愿服务队 is registered." in listed.text and "Not trusted" in listed.text
        assert f"/staff/keys?role=recorder&amp;subject_id={org_id}" in listed.text
        assert (await policy(tenant))["version"] == 0

        trust = f"/staff/organisations/{org_id}/trust"
        r = await post_form(
            phone, "/staff/organisations", trust, trusted="1", next="/staff/organisations?q=华锦"
        )
        assert r.status_code == 303 and r.headers["location"].startswith("/staff/organisations?q=")
        now = await policy(tenant)
        assert now["version"] == 1 and now["policy"]["trusted_organisations"] == [org_id]
        shown = await phone.get(r.headers["location"])
        assert "is trusted now" in shown.text and ">Trusted<" in shown.text
        # the same wish again writes nothing
        r = await post_form(phone, "/staff/organisations", trust, trusted="1")
        assert (await policy(tenant))["version"] == 1
        assert "Nothing was changed" in (await phone.get(r.headers["location"])).text
        r = await post_form(phone, "/staff/organisations", trust, trusted="0")
        now = await policy(tenant)
        assert now["version"] == 2 and now["policy"]["trusted_organisations"] == []
        # the versions page says who changed what
        versions = await phone.get("/staff/policy/versions")
        assert "Trusted organisations" in versions.text and "华锦志愿服务队" in versions.text
        assert "社工 小周" in versions.text
        # a merchant is not an organisation to trust
        shop = await tenant.party("merchants", "小店")
        r = await post_form(
            phone, "/staff/organisations", f"/staff/organisations/{shop['id']}/trust", trusted="1"
        )
        assert r.status_code == 404 and (await policy(tenant))["version"] == 2
        assert (
            await post_form(phone, "/staff/organisations", "/staff/organisations", name="")
        ).status_code == 400


async def test_merchants_register_and_search(tenant) -> None:
    async with desk(tenant) as phone:
        r = await post_form(
            phone, "/staff/merchants", "/staff/merchants", name="老王理发店", external_ref="S-1"
        )
        assert r.status_code == 303
        await post_form(phone, "/staff/merchants", "/staff/merchants", name="便民超市")
        found = await phone.get("/staff/merchants", params={"q": "理发"})
        assert "老王理发店" in found.text and "便民超市" not in found.text
        by_ref = await phone.get("/staff/merchants", params={"q": "s-1"}, headers={"HX-Request": "true"})
        assert "老王理发店" in by_ref.text and "<html" not in by_ref.text
        listed = (await tenant.client.get("/v1/merchants", headers=tenant.auth())).json()["items"]
        assert {m["name"] for m in listed} == {"老王理发店", "便民超市"}
        dup = await post_form(
            phone, "/staff/merchants", "/staff/merchants", name="又一家", external_ref="S-1"
        )
        assert dup.status_code == 409 and 'id="err-external_ref"' in dup.text


async def test_issue_an_api_key_shown_once_and_revoke_it(tenant) -> None:
    org = await tenant.party("organisations", "阳光助老队")
    async with desk(tenant) as phone:
        form = await phone.get("/staff/keys", params={"role": "recorder", "subject_id": org["id"]})
        assert "Acts for 阳光助老队" in form.text
        token = await csrf(phone, "/staff/keys")
        r = await phone.post(
            "/staff/keys",
            data={"_csrf_token": token, "role": "recorder", "subject_id": org["id"], "label": "志愿平台导入"},
        )
        assert r.status_code == 200 and "no-store" in r.headers["cache-control"]
        key = re.search(r'<code id="new-key">(tbk_[^<]+)</code>', r.text).group(1)
        assert (await tenant.client.get("/v1/community", headers=tenant.auth(key))).status_code == 200
        listed = await phone.get("/staff/keys")
        assert "志愿平台导入" in listed.text and key not in listed.text
        key_id = next(
            k["id"]
            for k in (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json()["items"]
            if k["label"] == "志愿平台导入"
        )
        r = await post_form(phone, "/staff/keys", f"/staff/keys/{key_id}/revoke")
        assert r.status_code == 303
        assert (await tenant.client.get("/v1/community", headers=tenant.auth(key))).status_code == 401
        # a recorder key needs its organisation; a wrong one is said beside the field
        bad = await post_form(phone, "/staff/keys", "/staff/keys", role="recorder", subject_id="")
        assert bad.status_code == 400 and 'id="err-subject_id"' in bad.text
        shop = await tenant.party("merchants", "小店")
        wrong = await post_form(phone, "/staff/keys", "/staff/keys", role="recorder", subject_id=shop["id"])
        assert wrong.status_code == 400 and 'id="err-subject_id"' in wrong.text
        # the last admin key cannot go
        admin_keys = [
            k
            for k in (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json()["items"]
            if k["role"] == "admin" and not k["revoked_at"]
        ]
        assert len(admin_keys) == 1
        last = await post_form(phone, "/staff/keys", f"/staff/keys/{admin_keys[0]['id']}/revoke")
        assert last.status_code == 409 and "last staff key" in last.text


# --- the policy ------------------------------------------------------------------------------------


def test_the_form_is_the_apis_json_and_every_wrong_setting_is_named() -> None:
    defaults = Policy()
    form = policy_pages.form_of(defaults)
    policy, errors = policy_pages.check(policy_pages.body_of(form, Policy()))
    assert errors == {} and msgspec.to_builtins(policy) == msgspec.to_builtins(defaults)
    wrong = {
        **form,
        "points_per_hour": "ten",
        "tier_3": "0",
        "star_2": "50",  # not above star 1's 100
        "rounding_unit": "61",
        "cat_code_1": "volunteer_service",  # a code twice
        "voucher_seconds": "０",
    }
    policy, errors = policy_pages.check(policy_pages.body_of(wrong, Policy()))
    assert policy is None
    assert set(errors) == {
        "points_per_hour",
        "tier_multipliers",
        "star_thresholds_hours",
        "rounding",
        "categories",
        "voucher_seconds",
    }
    # full-width digits and a decimal comma are what people type
    typed = {**form, "points_per_hour": "１２", "tier_1": "1,1"}
    policy, errors = policy_pages.check(policy_pages.body_of(typed, Policy()))
    assert errors == {} and policy.points_per_hour == 12 and policy.tier_multipliers["1"] == "1.1"
    # an emptied category row is removed
    fewer = {**form, "cat_code_4": "", "cat_name_4": ""}
    policy, _ = policy_pages.check(policy_pages.body_of(fewer, Policy()))
    assert len(policy.categories) == 4


def test_the_diff_of_two_versions_field_by_field() -> None:
    old = msgspec.to_builtins(Policy())
    new = msgspec.to_builtins(Policy(points_per_hour=12))
    new["tier_multipliers"]["5"] = "2"
    new["categories"] = [c for c in new["categories"] if c["code"] != "legal_aid"] + [
        {"code": "legal_aid", "name": "法律咨询"},
        {"code": "study", "name": "课业辅导"},
    ]
    new["trusted_organisations"] = ["a"]
    changes = policy_pages.diff(old, new)
    assert ("points_per_hour", 10, 12) in changes
    assert ("tier_multipliers.5", "1.5", "2") in changes
    assert ("categories.legal_aid", "法律援助", "法律咨询") in changes  # moved and renamed: one change
    assert ("categories.study", None, "课业辅导") in changes
    assert ("trusted_organisations", frozenset(), frozenset({"a"})) in changes
    assert len(changes) == 5
    assert policy_pages.diff(new, new) == []


async def test_check_as_typed_preview_and_save_a_new_version(tenant) -> None:
    async with desk(tenant) as phone:
        page = await phone.get("/staff/policy")
        assert page.status_code == 200 and 'hx-post="/staff/policy/check"' in page.text
        token = await csrf(phone, "/staff/policy")
        form = {**policy_pages.form_of(Policy()), "version": "0", "_csrf_token": token}
        # a 2-hour service earns 20 points with no stars, 30 at 5 stars (multiplier 1.5)
        assert "earns 20 points" in page.text and "earns 30 points" in page.text
        typed = await phone.post(
            "/staff/policy/check", data={**form, "points_per_hour": "20"}, headers={"HX-Request": "true"}
        )
        assert typed.status_code == 200 and "<html" not in typed.text
        assert "earns 40 points" in typed.text and "(now 20 points)" in typed.text
        wrong = await phone.post(
            "/staff/policy/check", data={**form, "points_per_hour": "2000"}, headers={"HX-Request": "true"}
        )
        assert 'href="#points_per_hour"' in wrong.text and "earns" not in wrong.text
        # without JavaScript: the preview button's whole page
        whole = await phone.post("/staff/policy/check", data={**form, "points_per_hour": "20"})
        assert "<html" in whole.text and "earns 40 points" in whole.text
        assert (await policy(tenant))["version"] == 0  # checking saves nothing

        refused = await phone.post("/staff/policy", data={**form, "points_per_hour": "-1"})
        assert refused.status_code == 400 and 'id="err-points_per_hour"' in refused.text
        assert (await policy(tenant))["version"] == 0
        same = await phone.post("/staff/policy", data=form)
        assert same.status_code == 200 and "Nothing was changed" in same.text
        assert (await policy(tenant))["version"] == 0

        saved = await phone.post(
            "/staff/policy", data={**form, "points_per_hour": "20", "rounding_mode": "up"}
        )
        assert saved.status_code == 303, saved.text
        assert saved.headers["location"].startswith("/staff/policy/versions?from=0&to=1")
        now = await policy(tenant)
        assert now["version"] == 1 and now["policy"]["points_per_hour"] == 20
        assert now["policy"]["rounding"]["mode"] == "up"
        assert now["changed_by"] == next(p["id"] for p in await people(tenant) if p["role"] == "admin")
        versions = await phone.get(saved.headers["location"])
        assert "Saved as version 1." in versions.text
        diff = versions.text.split('id="changes"')[1].split("</section>")[0]
        assert "Points for an hour" in diff and "<del>10</del>" in diff and "<ins>20</ins>" in diff
        assert "Rounding<" in diff and "<del>Down</del>" in diff and "<ins>Up</ins>" in diff

        # a form opened on version 0 cannot overwrite version 1 unseen
        stale = await phone.post("/staff/policy", data={**form, "points_per_hour": "30"})
        assert stale.status_code == 409 and 'name="version" value="1"' in stale.text
        assert (await policy(tenant))["version"] == 1
        # the trusted organisations, and settings the form does not show, are kept as they are
        org = await tenant.party("organisations", "华锦志愿服务队")
        body = {
            **now["policy"],
            "trusted_organisations": [org["id"]],
            "backfilled_points": True,
            "withdraw_deadline_hours": 6,
        }
        assert (
            await tenant.client.put("/v1/community/policy", json=body, headers=tenant.auth())
        ).status_code == 200
        token = await csrf(phone, "/staff/policy")
        form = {**policy_pages.form_of(msgspec.convert(body, Policy)), "version": "2", "_csrf_token": token}
        saved = await phone.post("/staff/policy", data={**form, "daily_cap_minutes": "480"})
        assert saved.status_code == 303
        now = await policy(tenant)
        assert now["version"] == 3 and now["policy"]["trusted_organisations"] == [org["id"]]
        assert now["policy"]["backfilled_points"] is True and now["policy"]["withdraw_deadline_hours"] == 6
        assert now["policy"]["daily_cap_minutes"] == 480
        # any two versions
        far = await phone.get("/staff/policy/versions", params={"from": "0", "to": "3"})
        table = far.text.split('id="changes"')[1]
        assert "Daily limit" in table and "Trusted organisations" in table and "华锦志愿服务队" in table
        bad = await phone.get("/staff/policy/versions", params={"from": "0", "to": "9"})
        assert bad.status_code == 400


# --- the supervisory board -------------------------------------------------------------------------


async def test_the_board_reads_every_page_without_forms_and_its_forged_posts_change_nothing(tenant) -> None:
    member = await tenant.member("陈奶奶")
    person = await add_person(tenant, "resident", member["id"], "陈奶奶", None, None)
    org = await tenant.party("organisations", "阳光助老队")
    shop = await tenant.party("merchants", "小店")
    await tenant.fund(member["accounts"]["HOUR"], "HOUR", 60)
    admin_key_id = (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json()["items"][0]["id"]
    async with desk(tenant, "auditor") as board:
        for path in (
            "/staff/members",
            f"/staff/members/{member['id']}",
            f"/staff/members/{member['id']}/history",
            f"/staff/members/{member['id']}/records",
            "/staff/organisations",
            "/staff/merchants",
            "/staff/keys",
            "/staff/policy",
            "/staff/policy/versions",
            "/staff/policy/versions?from=0&to=0",
        ):
            page = await board.get(path)
            assert page.status_code == 200, (path, page.text[:300])
            assert actions(page.text) == set(), (path, actions(page.text))
        assert "earns 20 points" in (await board.get("/staff/policy")).text  # the effect, read-only

        before = (len(await members(tenant)), await policy(tenant), len(await people(tenant)))
        keys_before = (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json()
        token = await csrf(board, "/staff/members")
        forged = {
            "/staff/members": {"display_name": "假的"},
            f"/staff/members/{member['id']}": {"display_name": "改名"},
            f"/staff/members/{member['id']}/person": {"login": phone_number()},
            f"/staff/members/{member['id']}/card": {"person_id": person["id"], "hours": "24"},
            "/staff/organisations": {"name": "假组织"},
            f"/staff/organisations/{org['id']}/trust": {"trusted": "1"},
            "/staff/merchants": {"name": "假商户"},
            "/staff/keys": {"role": "admin"},
            f"/staff/keys/{admin_key_id}/revoke": {},
            "/staff/policy": {**policy_pages.form_of(Policy()), "version": "0", "points_per_hour": "99"},
            "/staff/policy/check": {**policy_pages.form_of(Policy()), "version": "0"},
        }
        for path, data in forged.items():
            r = await board.post(path, data={"_csrf_token": token, **data})
            assert r.status_code == 403, (path, r.status_code)
        after = (len(await members(tenant)), await policy(tenant), len(await people(tenant)))
        assert after == before
        assert (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json() == keys_before
        got = (await tenant.client.get(f"/v1/members/{member['id']}", headers=tenant.auth())).json()
        assert got["display_name"] == "陈奶奶"
        assert [
            m["name"]
            for m in (await tenant.client.get("/v1/merchants", headers=tenant.auth())).json()["items"]
        ] == [shop["name"]]
        links = await tenant.client.get(f"/v1/people/{person['id']}/sign-in-links", headers=tenant.auth())
        assert links.json()["items"] == []


async def test_residents_and_recorders_do_not_reach_the_console(tenant) -> None:
    member = await tenant.member()
    login = f"r-{uuid.uuid4().hex[:8]}"
    await add_person(tenant, "resident", member["id"], "居民", login, PASSWORD)
    async with browser(tenant.client) as phone:
        await sign_in(phone, login, PASSWORD)
        for path in ("/staff/members", "/staff/organisations", "/staff/keys", "/staff/policy"):
            assert (await phone.get(path)).status_code == 403


async def test_the_member_page_lists_redemptions_when_the_app_hands_the_service_over(tenant) -> None:
    """The redemption package sits above this page's: the app hands its service over as
    ``app.state.member_redemptions`` (as ``member_standing`` for the API); without it the
    section is left out, never wrong."""
    from tests.merchant.shop import Shop
    from timebank.redemption.redemption_views import member_redemptions

    shop = await Shop(tenant).setup()
    reward = await shop.reward(title="十斤大米", price_points=10)
    member, key = await shop.resident("李秀英", 50)
    await shop.confirm(await shop.voucher(reward, member, key))
    await shop.voucher(reward, member, key)  # still open
    state = tenant.client.app.state
    wired = getattr(state, "member_redemptions", None)
    async with desk(tenant) as phone:
        page = f"/staff/members/{member['id']}"
        if wired is None:
            assert 'id="redemptions"' not in (await phone.get(page)).text
            assert (await phone.get(f"{page}/redemptions")).status_code == 404
        state.member_redemptions = member_redemptions
        try:
            text = (await phone.get(page)).text
            section = text.split('id="redemptions"')[1].split("</section>")[0]
            assert section.count("十斤大米") == 2 and "Used" in section and "Open voucher" in section
            listed = await phone.get(f"{page}/redemptions")
            assert listed.status_code == 200 and listed.text.count("十斤大米") >= 2
            assert "30 points" in text  # 50 less the used one, less the one held
        finally:
            if wired is None:
                del state.member_redemptions

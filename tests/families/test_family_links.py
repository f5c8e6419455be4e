"""Family links (亲情账户, issue 18 item 4) through the API on real PostgreSQL: both
consents and a staff confirmation, each step refused before its time; wrong, expired,
used and own codes; guessing limited; what the staff of each community may see; gifts
within one community and across the district (idempotent); acting for a relative,
limited to the granted actions and recorded."""

from __future__ import annotations

import uuid

from sqlalchemy import text
from support import problem

from tests.districts.helpers import new_district
from tests.families.helpers import admin_get, admin_post, live_link, member
from timebank.audits import run_audit
from timebank.families import service


async def test_a_link_needs_both_consents_and_the_staff(client, engine):
    d = await new_district(client, engine, 3)
    a, b, c = d.communities
    alice, bob, carol = await member(a, "王阿姨"), await member(b, "王小明"), await member(c, "陈三")
    await a.fund(alice.party["accounts"]["HOUR"], "HOUR", 600)

    offer = await alice.offer("child")
    link = offer["id"]
    assert offer["status"] == "offered" and offer["b"] is None and offer["me"] == "a"
    assert len(offer["code"]) == service.CODE_LENGTH and offer["code_shown"].replace(" ", "") == offer["code"]
    assert offer["code_expires_at"] > offer["created_at"]
    # shown once: reading the link again never shows the code
    again = (await alice.get(f"/v1/family-links/{link}")).json()
    assert "code" not in again and again["status"] == "offered"

    # before the relative's consent: no gift, no grants, no confirmation
    problem(await alice.gift(link, "HOUR", 60), 409, "family-link-not-live")
    problem(await alice.grant(link, "view"), 409, "family-link-not-live")
    problem(await admin_post(a, f"/v1/family-links/{link}/confirm"), 409, "family-link-not-live")
    problem(await bob.get(f"/v1/family-links/{link}"), 404, "not-found")  # not his yet

    # the relative's consent: the code as typed (lower case, spaces)
    typed = " ".join([offer["code"][:4].lower(), offer["code"][4:]])
    r = await bob.accept(typed)
    assert r.status_code == 200, r.text
    answered = r.json()
    assert answered["status"] == "waiting_for_staff" and answered["me"] == "b"
    assert answered["relative"]["display_name"] == "王阿姨" and answered["relative"]["community_id"] == a.id
    assert answered["relative_is"] == "parent"  # bob is alice's child: alice is bob's parent
    assert answered["relative"]["community_name"].startswith("社区1")

    # a used code is no code: a third person cannot answer it
    problem(await carol.accept(offer["code"]), 422, "family-code-not-usable")

    # waiting for the staff: still no gift, no grants, nothing done for anyone
    problem(await alice.gift(link, "HOUR", 60), 409, "family-link-not-live")
    problem(await bob.grant(link, "view"), 409, "family-link-not-live")
    problem(await bob.get(f"/v1/family-links/{link}/relative"), 409, "family-link-not-live")
    # the relative cannot confirm (a resident), nor the staff of a third community
    problem(await bob.post(f"/v1/family-links/{link}/confirm"), 403, "forbidden")
    problem(await admin_post(c, f"/v1/family-links/{link}/confirm"), 404, "not-found")
    auditor = await a.key("auditor", (await a.member("监委"))["id"])
    r = await client.post(f"/v1/family-links/{link}/confirm", headers=a.auth(auditor))
    problem(r, 403, "forbidden")

    # the staff of the relative's community confirm: live
    r = await admin_post(b, f"/v1/family-links/{link}/confirm")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "live" and r.json()["confirmed_at"]
    problem(await admin_post(a, f"/v1/family-links/{link}/confirm"), 409, "conflict")
    r = await alice.gift(link, "HOUR", 60)
    assert r.status_code == 201, r.text

    # one live link per pair
    second = await bob.offer("parent")
    problem(await alice.accept(second["code"]), 409, "family-already-linked")

    # either member ends it (the staff may too); then nothing more under it
    r = await bob.post(f"/v1/family-links/{link}/end")
    assert r.status_code == 200 and r.json()["status"] == "ended", r.text
    problem(await bob.post(f"/v1/family-links/{link}/end"), 409, "conflict")
    problem(await alice.gift(link, "HOUR", 60), 409, "family-link-not-live")
    problem(await carol.post(f"/v1/family-links/{link}/end"), 404, "not-found")
    # ended, the pair may link again
    r = await alice.accept(second["code"])
    assert r.status_code == 200 and r.json()["status"] == "waiting_for_staff", r.text
    r = await admin_post(a, f"/v1/family-links/{r.json()['id']}/end")
    assert r.status_code == 200 and r.json()["status"] == "ended", r.text


async def test_wrong_expired_own_and_guessed_codes_change_nothing(client, engine):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await member(a, "甲"), await member(b, "乙")
    offer = await alice.offer("sibling")

    problem(await alice.accept(offer["code"]), 422, "family-code-own")
    problem(await bob.accept("ABCD"), 422, "family-code-not-usable")  # not even a code's shape
    wrong = "".join(reversed(offer["code"]))
    if wrong == offer["code"]:
        wrong = "ZZZZ2222"
    problem(await bob.accept(wrong), 422, "family-code-not-usable")
    r = await alice.get(f"/v1/family-links/{offer['id']}")
    assert r.json()["status"] == "offered" and r.json()["b"] is None

    # expired: refused with its reason, and the offer stays unanswered
    async with engine.begin() as conn:
        await conn.execute(
            text("update family_links set code_expires_at = now() - interval '1 minute' where id = :id"),
            {"id": offer["id"]},
        )
    body = problem(await bob.accept(offer["code"]), 422, "family-code-not-usable")
    assert "expired" in body["detail"]
    assert (await alice.get(f"/v1/family-links/{offer['id']}")).json()["status"] == "expired"

    # guessing: ten wrong codes an hour, then even the right code waits
    fresh = await alice.offer("sibling")
    guesser = await member(b, "猜")
    for _ in range(service.CODE_TRIES_LIMIT):
        problem(await guesser.accept("ZZZZ2223"), 422, "family-code-not-usable")
    refused = await guesser.accept(fresh["code"])
    body = problem(refused, 429, "family-code-tries")
    assert body["retry_after"] > 0 and refused.headers["retry-after"] == str(body["retry_after"])
    assert (await alice.get(f"/v1/family-links/{fresh['id']}")).json()["status"] == "offered"
    r = await bob.accept(fresh["code"])  # another member is not held up
    assert r.status_code == 200, r.text

    # at most five codes open at once (the expired one and the answered one are not open)
    for _ in range(service.MAX_OPEN_OFFERS):
        await alice.offer("relative")
    problem(await alice.post("/v1/family-links", {"relation": "relative"}), 409, "family-codes-open")
    problem(await alice.post("/v1/family-links", {"relation": "cousin"}), 400, "invalid-request")


async def test_a_relative_outside_the_district_cannot_be_linked(client, engine, tenant, other_tenant):
    alice, bob = await member(tenant, "甲"), await member(other_tenant, "乙")
    offer = await alice.offer()
    problem(await bob.accept(offer["code"]), 422, "family-not-in-district")
    assert (await alice.get(f"/v1/family-links/{offer['id']}")).json()["status"] == "offered"
    # staff and other keys: no offers, no answers
    problem(await admin_post(tenant, "/v1/family-links/accept"), 403, "forbidden")
    merchant = await tenant.party("merchants", "店")
    key = await tenant.key("merchant", merchant["id"])
    r = await tenant.client.get("/v1/family-links", headers=tenant.auth(key))
    problem(r, 403, "forbidden")


async def test_the_staff_see_their_own_members_links_only(client, engine):
    d = await new_district(client, engine, 3)
    a, b, c = d.communities
    alice, bob, carol, dan = (
        await member(a, "甲"),
        await member(b, "乙"),
        await member(c, "丙"),
        await member(c, "丁"),
    )
    ab = await alice.offer("parent")
    assert (await bob.accept(ab["code"])).status_code == 200
    bc = await bob.offer("spouse")
    assert (await carol.accept(bc["code"])).status_code == 200
    cd = await carol.offer("carer")
    assert (await dan.accept(cd["code"])).status_code == 200

    def ids(r):
        assert r.status_code == 200, r.text
        return {item["id"] for item in r.json()["items"]}

    assert ids(await admin_get(a, "/v1/family-links")) == {ab["id"]}
    assert ids(await admin_get(b, "/v1/family-links")) == {ab["id"], bc["id"]}
    assert ids(await admin_get(c, "/v1/family-links", status="waiting_for_staff")) == {bc["id"], cd["id"]}
    assert ids(await admin_get(c, "/v1/family-links", status="live")) == set()
    # A's staff read their member's link and see the relative's name and community, nothing more
    seen = (await admin_get(a, f"/v1/family-links/{ab['id']}")).json()
    assert {seen["a"]["display_name"], seen["b"]["display_name"]} == {"甲", "乙"}
    assert seen["me"] is None and seen["relative"] is None
    # ... but not the links of that relative with anyone else, nor their record
    for path in (f"/v1/family-links/{bc['id']}", f"/v1/family-links/{cd['id']}"):
        problem(await admin_get(a, path), 404, "not-found")
    problem(await admin_get(a, f"/v1/family-links/{bc['id']}/actions"), 404, "not-found")
    problem(await admin_post(a, f"/v1/family-links/{bc['id']}/confirm"), 404, "not-found")
    problem(await admin_post(a, f"/v1/family-links/{bc['id']}/end"), 404, "not-found")
    # a resident: their own links only
    assert ids(await alice.get("/v1/family-links")) == {ab["id"]}
    assert ids(await bob.get("/v1/family-links")) == {ab["id"], bc["id"]}
    problem(await alice.get(f"/v1/family-links/{bc['id']}"), 404, "not-found")
    # the district's admin sees no member
    r = await client.get("/v1/family-links", headers=d.auth())
    assert r.status_code in (401, 403), r.text


async def test_a_gift_across_the_district_moves_positions_and_replays(client, engine):
    d = await new_district(client, engine, 2)
    a, b = d.communities
    alice, bob = await member(a, "王阿姨"), await member(b, "王小明")
    await b.fund(bob.party["accounts"]["HOUR"], "HOUR", 600)
    await b.fund(bob.party["accounts"]["POINT"], "POINT", 100)
    link = (await live_link(bob, alice, "parent"))["id"]
    before = await d.positions()

    key = str(uuid.uuid4())
    r = await bob.gift(link, "HOUR", 120, key, memo="给妈妈")
    assert r.status_code == 201, r.text
    gift = r.json()
    assert gift["amount"] == gift["received"] == 120 and gift["to"]["member_id"] == alice.id
    crossing = gift["crossing"]
    assert crossing["from"]["community_id"] == b.id and crossing["to"]["community_id"] == a.id
    assert crossing["acted_for"] is None and gift["memo"] == "给妈妈"
    assert (await alice.balance("HOUR"))["posted"] == 120
    assert (await bob.balance("HOUR"))["posted"] == 480
    after = await d.positions()
    assert after[(b.id, "HOUR")] == before[(b.id, "HOUR")] - 120
    assert after[(a.id, "HOUR")] == before[(a.id, "HOUR")] + 120
    # the crossing row, as either community's staff read it
    r = await client.get(f"/v1/crossings/{crossing['id']}", headers=a.auth())
    assert r.status_code == 200 and r.json()["amount_received"] == 120, r.text

    # a resend with the same key: the first answer, nothing moves again
    r = await bob.gift(link, "HOUR", 120, key, memo="给妈妈")
    assert r.status_code == 201 and r.headers.get("idempotent-replayed") == "true", r.text
    assert r.json() == gift
    assert (await alice.balance("HOUR"))["posted"] == 120
    problem(await bob.gift(link, "HOUR", 60, key), 409, "idempotency-conflict")
    problem(
        await bob.post(f"/v1/family-links/{link}/gifts", {"asset": "HOUR", "amount": 1}),
        400,
        "idempotency-key-required",
    )

    # points the other way round; more than the giver has is refused, nothing moves
    r = await bob.gift(link, "POINT", 40)
    assert r.status_code == 201 and r.json()["received"] == 40, r.text
    problem(await alice.gift(link, "POINT", 41), 422, "insufficient-funds")
    assert (await alice.balance("POINT"))["posted"] == 40
    # the district's limit is the only other limit
    await d.set_limits(a, HOUR=100)
    problem(await bob.gift(link, "HOUR", 60), 422, "crossing-limit")


async def test_a_gift_within_one_community_is_a_transfer(tenant):
    alice, bob = await member(tenant, "甲"), await member(tenant, "乙")
    await tenant.fund(alice.party["accounts"]["POINT"], "POINT", 50)
    link = (await live_link(alice, bob, "spouse"))["id"]
    key = str(uuid.uuid4())
    r = await alice.gift(link, "POINT", 30, key)
    assert r.status_code == 201, r.text
    gift = r.json()
    assert gift["crossing"] is None and gift["amount"] == 30 and gift["to"]["display_name"] == "乙"
    r = await tenant.client.get(f"/v1/transactions/{gift['transaction_id']}", headers=tenant.auth())
    assert r.status_code == 200 and r.json()["kind"] == "transfer", r.text
    replay = await alice.gift(link, "POINT", 30, key)
    assert replay.status_code == 201 and replay.json() == gift
    assert (await bob.balance("POINT"))["posted"] == 30
    assert (await alice.balance("POINT"))["posted"] == 20


async def test_acting_for_a_relative_is_limited_to_the_grants_and_recorded(client, engine):
    d = await new_district(client, engine, 3)
    a, b, c = d.communities
    mother, son = await member(a, "王阿姨"), await member(b, "王小明")
    await a.fund(mother.party["accounts"]["HOUR"], "HOUR", 600)
    await a.fund(mother.party["accounts"]["POINT"], "POINT", 200)
    shop = await a.party("merchants", "社区超市")
    r = await client.post(
        "/v1/rewards",
        json={"merchant_id": shop["id"], "title": "大米一袋", "price_points": 50},
        headers=a.auth(),
    )
    assert r.status_code == 201, r.text
    rice = r.json()["id"]
    link = (await live_link(mother, son, "child"))["id"]
    actions = f"/v1/family-links/{link}/actions"

    async def refused_all() -> None:
        problem(await son.get(f"/v1/family-links/{link}/relative"), 403, "family-action-not-granted")
        problem(await son.act_give(link, {"asset": "HOUR", "amount": 60}), 403, "family-action-not-granted")
        problem(await son.act_redeem(link, rice), 403, "family-action-not-granted")

    # nothing granted: every action refused, nothing recorded, nothing moved
    await refused_all()
    assert (await son.get(actions)).json()["items"] == []
    assert (await mother.balance("HOUR"))["posted"] == 600

    # the son may not grant for his mother: his grants are his own
    r = await son.grant(link, "view", "give", "redeem")
    assert r.status_code == 200 and r.json()["i_allow"] == ["give", "redeem", "view"], r.text
    assert r.json()["relative_allows"] == []
    await refused_all()

    # view only
    r = await mother.grant(link, "view")
    assert r.status_code == 200 and r.json()["i_allow"] == ["view"], r.text
    r = await son.get(f"/v1/family-links/{link}/relative")
    assert r.status_code == 200, r.text
    seen = r.json()
    assert seen["member"]["display_name"] == "王阿姨"
    assert seen["balances"]["HOUR"]["available"] == 600 and seen["balances"]["POINT"]["available"] == 200
    assert seen["record"]["action"] == "view" and seen["record"]["actor"]["member_id"] == son.id
    problem(await son.act_give(link, {"asset": "HOUR", "amount": 60}), 403, "family-action-not-granted")
    problem(await son.act_redeem(link, rice), 403, "family-action-not-granted")
    # the mother cannot act for the son without his grant either: she has it (he granted all)
    r = await mother.get(f"/v1/family-links/{link}/relative")
    assert r.status_code == 200, r.text

    # view, give and redeem
    r = await mother.grant(link, "view", "give", "redeem")
    assert r.status_code == 200, r.text
    key = str(uuid.uuid4())
    r = await son.act_give(link, {"asset": "HOUR", "amount": 90, "memo": "替妈妈转"}, key)
    assert r.status_code == 201, r.text
    given = r.json()
    assert given["action"] == "give" and given["for"]["member_id"] == mother.id
    assert given["actor"]["member_id"] == son.id
    assert given["crossing"]["acted_for"] == mother.id and given["crossing"]["amount_received"] == 90
    assert given["transaction_id"] == given["crossing"]["from"]["transaction_id"]
    assert (await mother.balance("HOUR"))["posted"] == 510
    assert (await son.balance("HOUR"))["posted"] == 90
    r = await client.get(f"/v1/transactions/{given['transaction_id']}", headers=a.auth())
    assert r.status_code == 200 and r.json()["kind"] == "crossing", r.text
    # replayed: the same answer, no second record, nothing moves again
    r = await son.act_give(link, {"asset": "HOUR", "amount": 90, "memo": "替妈妈转"}, key)
    assert r.status_code == 201 and r.headers.get("idempotent-replayed") == "true", r.text
    assert r.json() == given
    assert (await mother.balance("HOUR"))["posted"] == 510

    # to a party of the mother's own community (the shop): a transfer in her ledger
    r = await son.act_give(
        link, {"asset": "POINT", "amount": 5, "to": {"community_id": a.id, "party_id": shop["id"]}}
    )
    assert r.status_code == 201 and r.json()["crossing"] is None, r.text
    assert r.json()["detail"]["to_party_id"] == shop["id"]
    problem(
        await son.act_give(
            link, {"asset": "POINT", "amount": 5, "to": {"community_id": a.id, "party_id": mother.id}}
        ),
        400,
        "invalid-request",
    )

    r = await son.act_redeem(link, rice)
    assert r.status_code == 201, r.text
    redeemed = r.json()
    assert redeemed["action"] == "redeem" and redeemed["redemption"]["member_id"] == mother.id
    assert redeemed["redemption"]["code"] and redeemed["redemption"]["status"] == "held"
    assert redeemed["transaction_id"] == redeemed["redemption"]["hold_id"]
    assert (await mother.balance("POINT"))["available"] == 200 - 5 - 50
    # the voucher is the mother's: she sees it among her redemptions
    r = await mother.get(f"/v1/members/{mother.id}/redemptions")
    assert [x["id"] for x in r.json()["items"]] == [redeemed["redemption"]["id"]]

    # revoked: refused again, nothing recorded
    r = await mother.grant(link, "view")
    assert r.status_code == 200 and r.json()["i_allow"] == ["view"], r.text
    problem(await son.act_give(link, {"asset": "HOUR", "amount": 30}), 403, "family-action-not-granted")
    problem(await son.act_redeem(link, rice), 403, "family-action-not-granted")
    assert (await son.get(f"/v1/family-links/{link}/relative")).status_code == 200
    r = await mother.grant(link)
    assert r.status_code == 200 and r.json()["i_allow"] == [], r.text
    await refused_all()

    # the record: who did what for whom, for both members and either community's staff
    r = await mother.get(actions)
    assert r.status_code == 200, r.text
    record = r.json()["items"]
    assert [x["action"] for x in record] == ["view", "redeem", "give", "give", "view", "view"]
    for_mother = [x for x in record if x["for"]["member_id"] == mother.id]
    assert len(for_mother) == 5 and all(x["actor"]["member_id"] == son.id for x in for_mother)
    assert [x["id"] for x in record] == [x["id"] for x in (await son.get(actions)).json()["items"]]
    for staff in (a, b):
        r = await admin_get(staff, actions)
        assert r.status_code == 200 and len(r.json()["items"]) == 6, r.text
    problem(await admin_get(c, actions), 404, "not-found")
    page = (await mother.get(actions, limit=4)).json()
    assert len(page["items"]) == 4 and page["next_cursor"]
    rest = (await mother.get(actions, limit=4, cursor=page["next_cursor"])).json()
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None

    # ending the link ends the grants
    await mother.grant(link, "view")
    assert (await mother.post(f"/v1/family-links/{link}/end")).status_code == 200
    problem(await son.get(f"/v1/family-links/{link}/relative"), 409, "family-link-not-live")
    ended = (await admin_get(a, f"/v1/family-links/{link}")).json()
    assert ended["grants"] == {"a": [], "b": []}

    # every ledger still sums up, every crossing has its three parts, every key its answer
    report = await run_audit(engine)
    assert report.ok, {k: v for k, v in report.results.items() if v}

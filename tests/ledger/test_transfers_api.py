"""Transfers, holds, reversals and idempotency through the HTTP API."""

from __future__ import annotations

import asyncio
import uuid

from sqlalchemy import text

from timebank.ledger.service import expire_holds

PROBLEM = "application/problem+json"


def assert_problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM)
    body = r.json()
    assert body["type"].endswith("/" + slug), body
    return body


async def funded_pair(tenant, hours: int = 100, points: int = 50):
    a = await tenant.member("甲")
    b = await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", hours)
    await tenant.fund(a["accounts"]["POINT"], "POINT", points)
    return a, b


def move(a, b, amount, asset="HOUR", **extra):
    return {
        "from_account": a["accounts"][asset],
        "to_account": b["accounts"][asset],
        "asset": asset,
        "amount": amount,
        **extra,
    }


async def posted(tenant, account_id):
    return (await tenant.balance(account_id))["posted"]


async def test_transfer_moves_value_and_issuance_goes_negative(tenant):
    a, b = await funded_pair(tenant)
    r = await tenant.transfer(move(a, b, 30, memo="谢谢帮忙"))
    assert r.status_code == 201, r.text
    tx = r.json()
    assert tx["status"] == "posted" and tx["kind"] == "transfer" and tx["memo"] == "谢谢帮忙"
    assert {(e["account_id"], e["direction"], e["amount"]) for e in tx["entries"]} == {
        (a["accounts"]["HOUR"], "debit", 30),
        (b["accounts"]["HOUR"], "credit", 30),
    }
    assert tx["created_at"]
    assert await posted(tenant, a["accounts"]["HOUR"]) == 70
    assert await posted(tenant, b["accounts"]["HOUR"]) == 30
    assert await posted(tenant, tenant.accounts["issuance"]["HOUR"]) == -100
    got = (await tenant.client.get(f"/v1/transactions/{tx['id']}", headers=tenant.auth())).json()
    assert got["id"] == tx["id"] and got["entries"] == tx["entries"]


async def test_insufficient_funds_is_422_and_changes_nothing(tenant):
    a, b = await funded_pair(tenant, hours=10)
    body = assert_problem(await tenant.transfer(move(a, b, 11)), 422, "insufficient-funds")
    assert body["account_id"] == a["accounts"]["HOUR"]
    assert await posted(tenant, a["accounts"]["HOUR"]) == 10
    assert await posted(tenant, b["accounts"]["HOUR"]) == 0


async def test_multi_leg_is_all_or_nothing(tenant):
    a, b = await funded_pair(tenant, hours=100, points=5)
    c = await tenant.member("丙")
    ok = {
        "legs": [
            {"debit": a["accounts"]["HOUR"], "credit": b["accounts"]["HOUR"], "asset": "HOUR", "amount": 40},
            {
                "debit": a["accounts"]["POINT"],
                "credit": c["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 5,
            },
        ]
    }
    r = await tenant.transfer(ok)
    assert r.status_code == 201 and len(r.json()["entries"]) == 4
    bad = {
        "legs": [
            {"debit": a["accounts"]["HOUR"], "credit": b["accounts"]["HOUR"], "asset": "HOUR", "amount": 10},
            {
                "debit": a["accounts"]["POINT"],
                "credit": c["accounts"]["POINT"],
                "asset": "POINT",
                "amount": 1,
            },
        ]
    }
    assert_problem(await tenant.transfer(bad), 422, "insufficient-funds")
    assert await posted(tenant, a["accounts"]["HOUR"]) == 60
    assert await posted(tenant, b["accounts"]["HOUR"]) == 40


async def test_a_chain_through_one_account_in_one_transaction(tenant):
    """Credits land before debits, so A→B→C in one transaction works with B empty."""
    a, b = await funded_pair(tenant, hours=20)
    c = await tenant.member("丙")
    r = await tenant.transfer(
        {
            "legs": [
                {
                    "debit": b["accounts"]["HOUR"],
                    "credit": c["accounts"]["HOUR"],
                    "asset": "HOUR",
                    "amount": 20,
                },
                {
                    "debit": a["accounts"]["HOUR"],
                    "credit": b["accounts"]["HOUR"],
                    "asset": "HOUR",
                    "amount": 20,
                },
            ]
        }
    )
    assert r.status_code == 201, r.text
    assert await posted(tenant, c["accounts"]["HOUR"]) == 20


async def test_bad_transfer_bodies(tenant):
    a, b = await funded_pair(tenant)
    cases = [
        (move(a, b, 0), 400, "invalid-request"),
        (move(a, b, -5), 400, "invalid-request"),
        (move(a, b, 1.5), 400, "invalid-request"),
        (move(a, b, "5"), 400, "invalid-request"),
        (move(a, b, 10**13), 400, "invalid-request"),
        ({**move(a, b, 1), "to_account": a["accounts"]["HOUR"]}, 400, "invalid-request"),
        ({**move(a, b, 1), "asset": "GOLD"}, 400, "invalid-request"),
        ({**move(a, b, 1), "to_account": b["accounts"]["POINT"]}, 422, "asset-mismatch"),
        ({**move(a, b, 1), "to_account": str(uuid.uuid4())}, 404, "not-found"),
        ({"from_account": a["accounts"]["HOUR"]}, 400, "invalid-request"),
        ({**move(a, b, 1), "legs": []}, 400, "invalid-request"),
        ({"legs": []}, 400, "invalid-request"),
        ({**move(a, b, 1), "memo": "x" * 501}, 400, "invalid-request"),
        ({**move(a, b, 1), "kind": "service_credit"}, 400, "invalid-request"),
        ({**move(a, b, 1), "pending": {"timeout_seconds": 0}}, 400, "invalid-request"),
        ({**move(a, b, 1), "surprise": True}, 400, "invalid-request"),
    ]
    for body, status, slug in cases:
        assert_problem(await tenant.transfer(body), status, slug)
    assert await posted(tenant, a["accounts"]["HOUR"]) == 100
    assert await posted(tenant, b["accounts"]["HOUR"]) == 0


async def test_idempotency_key_is_required(tenant):
    a, b = await funded_pair(tenant)
    r = await tenant.client.post("/v1/transfers", json=move(a, b, 1), headers=tenant.auth())
    assert_problem(r, 400, "idempotency-key-required")
    r = await tenant.client.post(
        "/v1/transfers", json=move(a, b, 1), headers={**tenant.auth(), "Idempotency-Key": "k" * 256}
    )
    assert_problem(r, 400, "invalid-request")
    assert await posted(tenant, b["accounts"]["HOUR"]) == 0


async def test_replay_returns_the_same_response_and_moves_once(tenant):
    a, b = await funded_pair(tenant)
    first = await tenant.transfer(move(a, b, 7), idem="pay-1")
    again = await tenant.transfer(move(a, b, 7), idem="pay-1")
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert await posted(tenant, b["accounts"]["HOUR"]) == 7
    conflict = await tenant.transfer(move(a, b, 8), idem="pay-1")
    assert_problem(conflict, 409, "idempotency-conflict")
    assert await posted(tenant, b["accounts"]["HOUR"]) == 7


async def test_concurrent_replays_move_once(tenant):
    a, b = await funded_pair(tenant)
    results = await asyncio.gather(*[tenant.transfer(move(a, b, 3), idem="same") for _ in range(10)])
    assert {r.status_code for r in results} == {201}
    assert len({r.json()["id"] for r in results}) == 1
    assert await posted(tenant, b["accounts"]["HOUR"]) == 3


async def test_a_rejection_stays_rejected_on_replay(tenant):
    a, b = await funded_pair(tenant, hours=5)
    first = await tenant.transfer(move(a, b, 6), idem="too-much")
    assert_problem(first, 422, "insufficient-funds")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 100)
    replay = await tenant.transfer(move(a, b, 6), idem="too-much")
    assert replay.status_code == 422 and replay.json() == first.json()
    assert await posted(tenant, b["accounts"]["HOUR"]) == 0


async def test_idempotency_keys_are_per_community(tenant, other_tenant):
    a, b = await funded_pair(tenant)
    c, d = await funded_pair(other_tenant)
    assert (await tenant.transfer(move(a, b, 1), idem="shared")).status_code == 201
    assert (await other_tenant.transfer(move(c, d, 2), idem="shared")).status_code == 201


async def test_hold_post_and_void(tenant):
    a, b = await funded_pair(tenant, hours=100)
    hold = await tenant.transfer(move(a, b, 30, pending={"timeout_seconds": 600}))
    assert hold.status_code == 201, hold.text
    hold = hold.json()
    assert hold["status"] == "pending" and hold["timeout_at"]
    bal = await tenant.balance(a["accounts"]["HOUR"])
    assert (bal["posted"], bal["pending"], bal["available"]) == (100, 30, 70)
    # the reserved amount cannot be spent twice
    assert_problem(await tenant.transfer(move(a, b, 71)), 422, "insufficient-funds")

    key = {**tenant.auth(), "Idempotency-Key": "post-1"}
    r = await tenant.client.post(f"/v1/transactions/{hold['id']}/post", headers=key)
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "posted" and r.json()["pending_id"] == hold["id"]
    bal = await tenant.balance(a["accounts"]["HOUR"])
    assert (bal["posted"], bal["pending"], bal["available"]) == (70, 0, 70)
    assert await posted(tenant, b["accounts"]["HOUR"]) == 30
    # replay returns the same; a second resolution under another key is refused
    again = await tenant.client.post(f"/v1/transactions/{hold['id']}/post", headers=key)
    assert again.json() == r.json()
    r = await tenant.client.post(
        f"/v1/transactions/{hold['id']}/void", headers={**tenant.auth(), "Idempotency-Key": "void-late"}
    )
    assert_problem(r, 409, "hold-already-resolved")
    got = (await tenant.client.get(f"/v1/transactions/{hold['id']}", headers=tenant.auth())).json()
    assert got["status"] == "posted" and got["resolved_by"]

    hold2 = (await tenant.transfer(move(a, b, 20, pending={"timeout_seconds": 600}))).json()
    r = await tenant.client.post(
        f"/v1/transactions/{hold2['id']}/void", headers={**tenant.auth(), "Idempotency-Key": "void-2"}
    )
    assert r.status_code == 201 and r.json()["status"] == "voided"
    bal = await tenant.balance(a["accounts"]["HOUR"])
    assert (bal["posted"], bal["pending"], bal["available"]) == (70, 0, 70)


async def test_concurrent_post_and_void_resolve_once(tenant):
    a, b = await funded_pair(tenant, hours=100)
    for _ in range(5):
        hold = (await tenant.transfer(move(a, b, 10, pending={"timeout_seconds": 600}))).json()
        rs = await asyncio.gather(
            *[
                tenant.client.post(
                    f"/v1/transactions/{hold['id']}/{action}",
                    headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
                )
                for action in ("post", "void", "post", "void")
            ]
        )
        assert sorted(r.status_code for r in rs) == [201, 409, 409, 409], [r.text for r in rs]
    bal = await tenant.balance(a["accounts"]["HOUR"])
    assert bal["pending"] == 0 and bal["posted"] + await posted(tenant, b["accounts"]["HOUR"]) == 100


async def test_expired_hold_cannot_be_posted_and_is_swept(tenant, engine):
    a, b = await funded_pair(tenant, hours=100)
    hold = (await tenant.transfer(move(a, b, 25, pending={"timeout_seconds": 1}))).json()
    await asyncio.sleep(1.3)
    r = await tenant.client.post(
        f"/v1/transactions/{hold['id']}/post", headers={**tenant.auth(), "Idempotency-Key": "late"}
    )
    assert_problem(r, 422, "hold-expired")
    async with engine.begin() as conn:
        assert await expire_holds(conn, uuid.UUID(tenant.id)) == 1
    async with engine.begin() as conn:
        assert await expire_holds(conn, uuid.UUID(tenant.id)) == 0
    got = (await tenant.client.get(f"/v1/transactions/{hold['id']}", headers=tenant.auth())).json()
    assert got["status"] == "expired"
    bal = await tenant.balance(a["accounts"]["HOUR"])
    assert (bal["posted"], bal["pending"]) == (100, 0)


async def test_post_of_a_non_hold_is_refused(tenant):
    a, b = await funded_pair(tenant)
    tx = (await tenant.transfer(move(a, b, 1))).json()
    r = await tenant.client.post(
        f"/v1/transactions/{tx['id']}/post", headers={**tenant.auth(), "Idempotency-Key": "x"}
    )
    assert_problem(r, 409, "not-a-hold")


async def test_reversal_references_the_original_and_happens_once(tenant):
    a, b = await funded_pair(tenant, hours=100)
    tx = (await tenant.transfer(move(a, b, 40))).json()
    headers = {**tenant.auth(), "Idempotency-Key": "rev-1"}
    r = await tenant.client.post(
        f"/v1/transactions/{tx['id']}/reverse", json={"reason": "记录有误"}, headers=headers
    )
    assert r.status_code == 201, r.text
    rev = r.json()
    assert rev["kind"] == "reversal" and rev["reverses_id"] == tx["id"] and rev["reason"] == "记录有误"
    assert await posted(tenant, a["accounts"]["HOUR"]) == 100
    assert await posted(tenant, b["accounts"]["HOUR"]) == 0
    r = await tenant.client.post(
        f"/v1/transactions/{tx['id']}/reverse",
        json={"reason": "again"},
        headers={**tenant.auth(), "Idempotency-Key": "rev-2"},
    )
    assert_problem(r, 409, "already-reversed")
    r = await tenant.client.post(
        f"/v1/transactions/{rev['id']}/reverse",
        json={"reason": "undo"},
        headers={**tenant.auth(), "Idempotency-Key": "rev-3"},
    )
    assert_problem(r, 409, "not-reversible")
    original = (await tenant.client.get(f"/v1/transactions/{tx['id']}", headers=tenant.auth())).json()
    assert original["reversed_by"] == rev["id"]


async def test_reversal_rules(tenant):
    a, b = await funded_pair(tenant, hours=100)
    c = await tenant.member("丙")
    tx = (await tenant.transfer(move(a, b, 40))).json()
    hold = (await tenant.transfer(move(a, b, 5, pending={"timeout_seconds": 60}))).json()

    async def reverse(tx_id, body):
        return await tenant.client.post(
            f"/v1/transactions/{tx_id}/reverse",
            json=body,
            headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )

    assert_problem(await reverse(tx["id"], {"reason": "  "}), 400, "invalid-request")
    assert_problem(await reverse(tx["id"], {}), 400, "invalid-request")
    assert_problem(await reverse(hold["id"], {"reason": "x"}), 409, "not-reversible")
    # b spent what it received: the reversal cannot push b below zero
    assert (await tenant.transfer(move(b, c, 40))).status_code == 201
    assert_problem(await reverse(tx["id"], {"reason": "x"}), 422, "insufficient-funds")
    bob = await tenant.key("resident", b["id"])
    r = await tenant.client.post(
        f"/v1/transactions/{tx['id']}/reverse",
        json={"reason": "x"},
        headers={**tenant.auth(bob), "Idempotency-Key": "r"},
    )
    assert_problem(r, 403, "forbidden")


async def test_residents_move_only_their_own_value(tenant):
    a, b = await funded_pair(tenant, hours=100, points=50)
    alice = await tenant.key("resident", a["id"])
    bob = await tenant.key("resident", b["id"])
    assert (await tenant.transfer(move(a, b, 30), key=alice)).status_code == 201  # 邻里互助
    assert_problem(await tenant.transfer(move(b, a, 1), key=alice), 403, "forbidden")
    assert_problem(await tenant.transfer(move(a, b, 1), key=bob), 403, "forbidden")
    issuance = {
        "from_account": tenant.accounts["issuance"]["HOUR"],
        "to_account": a["accounts"]["HOUR"],
        "asset": "HOUR",
        "amount": 1,
    }
    assert_problem(await tenant.transfer(issuance, key=alice), 403, "forbidden")
    assert_problem(
        await tenant.transfer({**move(a, b, 1), "kind": "adjustment"}, key=alice), 403, "forbidden"
    )
    # donation of points to the community fund, and only there
    fund = {
        "from_account": a["accounts"]["POINT"],
        "to_account": tenant.accounts["fund"]["POINT"],
        "asset": "POINT",
        "amount": 10,
        "kind": "donation",
    }
    r = await tenant.transfer(fund, key=alice)
    assert r.status_code == 201 and r.json()["kind"] == "donation"
    assert_problem(
        await tenant.transfer({**move(a, b, 1, "POINT"), "kind": "donation"}, key=alice),
        400,
        "invalid-request",
    )
    assert await posted(tenant, tenant.accounts["fund"]["POINT"]) == 10
    # the resident sees its own transactions, not others'
    tx = r.json()
    assert (
        await tenant.client.get(f"/v1/transactions/{tx['id']}", headers=tenant.auth(alice))
    ).status_code == 200
    assert (
        await tenant.client.get(f"/v1/transactions/{tx['id']}", headers=tenant.auth(bob))
    ).status_code == 404


async def test_auditor_reads_everything_and_writes_nothing(tenant, engine):
    a, b = await funded_pair(tenant)
    auditor = await tenant.key("auditor", b["id"])
    tx = (await tenant.transfer(move(a, b, 5))).json()
    for path in (
        "/v1/community",
        f"/v1/members/{a['id']}",
        f"/v1/members/{a['id']}/balances",
        f"/v1/accounts/{a['accounts']['HOUR']}",
        f"/v1/accounts/{a['accounts']['HOUR']}/entries",
        f"/v1/transactions/{tx['id']}",
        "/v1/members",
        "/v1/merchants",
        "/v1/organisations",
        "/v1/api-keys",
    ):
        assert (await tenant.client.get(path, headers=tenant.auth(auditor))).status_code == 200, path
    async with engine.connect() as conn:
        before = (
            await conn.execute(
                text("SELECT count(*) FROM transactions WHERE community_id = :c"), {"c": tenant.id}
            )
        ).scalar()
    writes = [
        ("post", "/v1/transfers", move(b, a, 1)),
        ("post", f"/v1/transactions/{tx['id']}/reverse", {"reason": "x"}),
        ("post", f"/v1/transactions/{tx['id']}/void", None),
        ("post", "/v1/members", {"display_name": "x"}),
        ("post", "/v1/api-keys", {"role": "admin"}),
        ("patch", f"/v1/accounts/{a['accounts']['HOUR']}", {"credit_limit": 5}),
        ("delete", f"/v1/api-keys/{uuid.uuid4()}", None),
    ]
    for method, path, body in writes:
        kwargs = {"headers": {**tenant.auth(auditor), "Idempotency-Key": str(uuid.uuid4())}}
        if body is not None:
            kwargs["json"] = body
        r = await getattr(tenant.client, method)(path, **kwargs)
        assert_problem(r, 403, "forbidden")
    async with engine.connect() as conn:
        after = (
            await conn.execute(
                text("SELECT count(*) FROM transactions WHERE community_id = :c"), {"c": tenant.id}
            )
        ).scalar()
    assert after == before


async def test_credit_limit_allows_a_bounded_overdraft(tenant):
    a, b = await funded_pair(tenant, hours=10)
    acct = a["accounts"]["HOUR"]
    r = await tenant.client.patch(f"/v1/accounts/{acct}", json={"credit_limit": 20}, headers=tenant.auth())
    assert r.status_code == 200 and r.json()["credit_limit"] == 20
    assert (await tenant.transfer(move(a, b, 25))).status_code == 201
    assert (await tenant.balance(acct))["posted"] == -15
    assert_problem(await tenant.transfer(move(a, b, 6)), 422, "insufficient-funds")
    r = await tenant.client.patch(f"/v1/accounts/{acct}", json={"credit_limit": 10}, headers=tenant.auth())
    assert_problem(r, 422, "credit-limit-below-usage")
    r = await tenant.client.patch(
        f"/v1/accounts/{tenant.accounts['issuance']['HOUR']}", json={"credit_limit": 1}, headers=tenant.auth()
    )
    assert_problem(r, 400, "invalid-request")
    # points are never overdrawn: a member's POINT account keeps credit_limit 0 (a 400, not a 500)
    r = await tenant.client.patch(
        f"/v1/accounts/{a['accounts']['POINT']}", json={"credit_limit": 5}, headers=tenant.auth()
    )
    assert_problem(r, 400, "invalid-request")
    r = await tenant.client.patch(
        f"/v1/accounts/{a['accounts']['POINT']}", json={"credit_limit": 0}, headers=tenant.auth()
    )
    assert r.status_code == 200 and r.json()["credit_limit"] == 0


async def test_entries_are_paginated_with_a_cursor(tenant):
    a, b = await funded_pair(tenant, hours=100)
    for i in range(5):
        assert (await tenant.transfer(move(a, b, i + 1))).status_code == 201
    seen, cursor = [], None
    while True:
        url = f"/v1/accounts/{a['accounts']['HOUR']}/entries?limit=2" + (
            f"&cursor={cursor}" if cursor else ""
        )
        page = (await tenant.client.get(url, headers=tenant.auth())).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [e["amount"] for e in seen] == [100, 1, 2, 3, 4, 5]
    assert [e["direction"] for e in seen] == ["credit"] + ["debit"] * 5
    assert len({e["id"] for e in seen}) == 6
    r = await tenant.client.get(
        f"/v1/accounts/{a['accounts']['HOUR']}/entries?cursor=abc", headers=tenant.auth()
    )
    assert_problem(r, 400, "invalid-request")
    r = await tenant.client.get(
        f"/v1/accounts/{a['accounts']['HOUR']}/entries?limit=0", headers=tenant.auth()
    )
    assert_problem(r, 400, "invalid-request")

"""Community, parties and API keys over HTTP: shapes, roles, tenant isolation, errors."""

from __future__ import annotations

import hashlib
import uuid

from sqlalchemy import text

PROBLEM = "application/problem+json"


def assert_problem(r, status: int, slug: str) -> dict:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith(PROBLEM), r.headers
    body = r.json()
    assert body["type"].endswith("/" + slug), body
    assert body["status"] == status
    return body


async def test_community_shows_its_system_accounts(tenant):
    r = await tenant.client.get("/v1/community", headers=tenant.auth())
    assert r.status_code == 200
    body = r.json()
    assert body["id"] == tenant.id
    assert set(body["accounts"]) == {"issuance", "expired", "fund"}
    for role in body["accounts"].values():
        assert set(role) == {"HOUR", "POINT"}
        for account_id in role.values():
            assert (await tenant.balance(account_id))["posted"] == 0


async def test_create_member_opens_both_accounts(tenant):
    r = await tenant.client.post(
        "/v1/members", json={"display_name": "李秀英", "external_ref": "ID-1"}, headers=tenant.auth()
    )
    assert r.status_code == 201, r.text
    member = r.json()
    assert member["display_name"] == "李秀英" and member["external_ref"] == "ID-1"
    assert set(member["accounts"]) == {"HOUR", "POINT"}
    for asset, account_id in member["accounts"].items():
        account = await tenant.balance(account_id)
        assert account["asset"] == asset
        assert account["owner"] == {"party_id": member["id"]}
        assert account["flags"] == ["debits_must_not_exceed_credits"]
    r = await tenant.client.get(f"/v1/members/{member['id']}/balances", headers=tenant.auth())
    assert r.json() == {
        a: {
            "account_id": member["accounts"][a],
            "posted": 0,
            "pending": 0,
            "available": 0,
            "pending_credits": 0,
            "credit_limit": 0,
        }
        for a in ("HOUR", "POINT")
    }


async def test_duplicate_external_ref_is_a_conflict_and_creates_nothing(tenant, engine):
    await tenant.client.post(
        "/v1/members", json={"display_name": "甲", "external_ref": "X"}, headers=tenant.auth()
    )
    r = await tenant.client.post(
        "/v1/members", json={"display_name": "乙", "external_ref": "X"}, headers=tenant.auth()
    )
    assert_problem(r, 409, "duplicate-external-ref")
    async with engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM parties WHERE community_id = :c"), {"c": tenant.id})
        ).scalar()
    assert n == 1


async def test_bad_member_bodies_are_problems(tenant, engine):
    for body in (
        {},
        {"display_name": ""},
        {"display_name": "x" * 201},
        {"display_name": "a", "extra": 1},
        {"display_name": 5},
    ):
        r = await tenant.client.post("/v1/members", json=body, headers=tenant.auth())
        assert_problem(r, 400, "invalid-request")
    r = await tenant.client.post("/v1/members", content=b"{not json", headers=tenant.auth())
    assert_problem(r, 400, "invalid-request")
    async with engine.connect() as conn:
        n = (
            await conn.execute(text("SELECT count(*) FROM parties WHERE community_id = :c"), {"c": tenant.id})
        ).scalar()
    assert n == 0


async def test_organisations_and_merchants(tenant):
    org = await tenant.party("organisations", "志愿服务队")
    shop = await tenant.party("merchants", "爱心超市")
    assert org["name"] == "志愿服务队" and org["kind"] == "organisation"
    assert shop["name"] == "爱心超市" and set(shop["accounts"]) == {"HOUR", "POINT"}
    r = await tenant.client.get(f"/v1/merchants/{shop['id']}", headers=tenant.auth())
    assert r.status_code == 200 and r.json()["id"] == shop["id"]
    # a merchant id is not an organisation id
    r = await tenant.client.get(f"/v1/organisations/{shop['id']}", headers=tenant.auth())
    assert_problem(r, 404, "not-found")


async def test_member_visibility_by_role(tenant):
    alice = await tenant.member("甲")
    bob = await tenant.member("乙")
    org = await tenant.party("organisations", "队")
    shop = await tenant.party("merchants", "店")
    keys = {
        "alice": await tenant.key("resident", alice["id"]),
        "auditor": await tenant.key("auditor", bob["id"]),
        "recorder": await tenant.key("recorder", org["id"]),
        "merchant": await tenant.key("merchant", shop["id"]),
    }
    for who, expect in (("alice", 200), ("auditor", 200), ("recorder", 404), ("merchant", 404)):
        r = await tenant.client.get(f"/v1/members/{alice['id']}/balances", headers=tenant.auth(keys[who]))
        assert r.status_code == expect, (who, r.text)
    # a resident never sees another resident
    r = await tenant.client.get(f"/v1/members/{bob['id']}", headers=tenant.auth(keys["alice"]))
    assert_problem(r, 404, "not-found")
    r = await tenant.client.get(
        f"/v1/accounts/{bob['accounts']['POINT']}", headers=tenant.auth(keys["alice"])
    )
    assert_problem(r, 404, "not-found")
    # only admins and auditors list members
    r = await tenant.client.get("/v1/members", headers=tenant.auth(keys["alice"]))
    assert_problem(r, 403, "forbidden")
    r = await tenant.client.get("/v1/members?limit=1", headers=tenant.auth(keys["auditor"]))
    assert r.status_code == 200 and len(r.json()["items"]) == 1 and r.json()["next_cursor"]
    r2 = await tenant.client.get(
        f"/v1/members?limit=1&cursor={r.json()['next_cursor']}", headers=tenant.auth()
    )
    assert r2.json()["items"][0]["id"] != r.json()["items"][0]["id"]


async def test_only_admins_create_parties_and_keys(tenant):
    alice = await tenant.member()
    resident = await tenant.key("resident", alice["id"])
    auditor = await tenant.key("auditor", alice["id"])
    for key in (resident, auditor):
        for path, body in (
            ("/v1/members", {"display_name": "x"}),
            ("/v1/organisations", {"name": "x"}),
            ("/v1/merchants", {"name": "x"}),
            ("/v1/api-keys", {"role": "admin"}),
        ):
            r = await tenant.client.post(path, json=body, headers=tenant.auth(key))
            assert_problem(r, 403, "forbidden")


async def test_api_keys_are_shown_once_stored_hashed_and_revocable(tenant, engine):
    alice = await tenant.member()
    r = await tenant.client.post(
        "/v1/api-keys",
        json={"role": "resident", "subject_id": alice["id"], "label": "phone"},
        headers=tenant.auth(),
    )
    assert r.status_code == 201, r.text
    created = r.json()
    key = created["key"]
    assert created["role"] == "resident" and created["subject_id"] == alice["id"]
    listing = (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json()["items"]
    assert key not in str(listing)
    async with engine.connect() as conn:
        row = (await conn.execute(text("SELECT * FROM api_keys WHERE id = :i"), {"i": created["id"]})).one()
    assert bytes(row.key_hash) == hashlib.sha256(key.encode()).digest()
    assert key not in str(tuple(row))

    assert (
        await tenant.client.get(f"/v1/members/{alice['id']}", headers=tenant.auth(key))
    ).status_code == 200
    r = await tenant.client.delete(f"/v1/api-keys/{created['id']}", headers=tenant.auth())
    assert r.status_code == 204
    r = await tenant.client.get(f"/v1/members/{alice['id']}", headers=tenant.auth(key))
    assert_problem(r, 401, "unauthorized")


async def test_key_subject_rules(tenant, other_tenant):
    alice = await tenant.member()
    org = await tenant.party("organisations", "队")
    foreign = await other_tenant.member()
    cases = [
        ({"role": "resident"}, 400, "invalid-request"),
        ({"role": "resident", "subject_id": org["id"]}, 400, "invalid-request"),
        ({"role": "recorder", "subject_id": alice["id"]}, 400, "invalid-request"),
        ({"role": "admin", "subject_id": alice["id"]}, 400, "invalid-request"),
        ({"role": "root"}, 400, "invalid-request"),
        ({"role": "resident", "subject_id": foreign["id"]}, 404, "not-found"),
        ({"role": "resident", "subject_id": str(uuid.uuid4())}, 404, "not-found"),
    ]
    for body, status, slug in cases:
        r = await tenant.client.post("/v1/api-keys", json=body, headers=tenant.auth())
        assert_problem(r, status, slug)


async def test_last_admin_key_cannot_be_revoked(tenant):
    keys = (await tenant.client.get("/v1/api-keys", headers=tenant.auth())).json()["items"]
    (first,) = keys
    r = await tenant.client.delete(f"/v1/api-keys/{first['id']}", headers=tenant.auth())
    assert_problem(r, 409, "last-admin-key")
    second = await tenant.key("admin")
    r = await tenant.client.delete(f"/v1/api-keys/{first['id']}", headers=tenant.auth(second))
    assert r.status_code == 204
    r = await tenant.client.get("/v1/community", headers=tenant.auth())
    assert_problem(r, 401, "unauthorized")


async def test_authentication_failures_are_problems(client):
    for headers in (
        {},
        {"Authorization": "Basic abc"},
        {"Authorization": "Bearer tbk_nope"},
        {"Authorization": "Bearer " + "x" * 500},
    ):
        r = await client.get("/v1/community", headers=headers)
        body = assert_problem(r, 401, "unauthorized")
        assert "tbk_nope" not in str(body)


async def test_another_community_sees_nothing(tenant, other_tenant):
    alice = await tenant.member()
    await tenant.fund(alice["accounts"]["HOUR"], "HOUR", 60)
    tx = (
        await tenant.client.get(f"/v1/accounts/{alice['accounts']['HOUR']}/entries", headers=tenant.auth())
    ).json()
    tx_id = tx["items"][0]["transaction_id"]
    outsider = other_tenant.auth()
    for path in (
        f"/v1/members/{alice['id']}",
        f"/v1/members/{alice['id']}/balances",
        f"/v1/accounts/{alice['accounts']['HOUR']}",
        f"/v1/accounts/{alice['accounts']['HOUR']}/entries",
        f"/v1/transactions/{tx_id}",
    ):
        r = await tenant.client.get(path, headers=outsider)
        assert_problem(r, 404, "not-found")
    bob = await other_tenant.member()
    r = await other_tenant.transfer(
        {
            "from_account": alice["accounts"]["HOUR"],
            "to_account": bob["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 1,
        }
    )
    assert_problem(r, 404, "not-found")
    for action in ("post", "void", "reverse"):
        r = await tenant.client.post(
            f"/v1/transactions/{tx_id}/{action}",
            json={"reason": "x"},
            headers={**outsider, "Idempotency-Key": str(uuid.uuid4())},
        )
        assert r.status_code == 404, r.text
    r = await tenant.client.delete(f"/v1/api-keys/{uuid.uuid4()}", headers=outsider)
    assert_problem(r, 404, "not-found")
    assert (await tenant.balance(alice["accounts"]["HOUR"]))["posted"] == 60


# The pages anyone may open: to sign in, and to choose the page's language and text size.
PUBLIC_PAGES = {
    "/": {"GET"},
    "/sign-in": {"GET", "POST"},
    "/s/{token:str}": {"GET", "POST"},
    "/settings/language": {"POST"},
    "/settings/text-size": {"POST"},
}


async def test_every_route_has_an_access_rule(client):
    """Deny by default: a route is public only by saying so, else it names its roles."""
    app = client.app
    for route in app.routes:
        for handler in getattr(route, "route_handlers", []):
            if route.path.startswith("/schema"):
                continue
            if set(handler.http_methods) == {"OPTIONS"}:
                continue  # Litestar's automatic OPTIONS handlers: closed by the same guard, see below
            opt = handler.opt
            assert opt.get("public") or opt.get("roles"), f"{route.path} {handler} has no access rule"
            if opt.get("public") and route.path in PUBLIC_PAGES:  # signing in, and the page's language
                assert handler.http_methods <= PUBLIC_PAGES[route.path], route.path
            elif opt.get(
                "public"
            ):  # health, metrics, the log's hashes, keys and proofs, certificate checks, static files,
                # the communities' public pages: nothing else
                assert route.path.startswith(
                    ("/health", "/metrics", "/v1/log/", "/v1/certificates/", "/static", "/p/")
                ), route.path
                assert handler.http_methods <= {"GET", "HEAD"}, route.path
    r = await client.options("/v1/members")
    assert r.status_code == 401


async def test_unknown_routes_and_methods_are_problems(tenant):
    assert_problem(await tenant.client.get("/v1/nope", headers=tenant.auth()), 404, "not-found")
    assert_problem(await tenant.client.put("/v1/community", headers=tenant.auth()), 405, "method-not-allowed")


async def test_request_size_is_limited(tenant, settings):
    big = {"display_name": "x" * (settings.max_body_bytes + 10)}
    r = await tenant.client.post("/v1/members", json=big, headers=tenant.auth())
    assert_problem(r, 413, "payload-too-large")


async def test_health_and_schema_need_no_key(client):
    assert (await client.get("/health/live")).json() == {"status": "ok"}
    r = await client.get("/health/ready")
    assert r.status_code == 200 and r.json()["checks"]["database"] == "ok"
    schema = (await client.get("/schema/openapi.json")).json()
    for path in (
        "/v1/transfers",
        "/v1/members",
        "/v1/api-keys",
        "/v1/accounts/{account_id}/entries",
        "/v1/transactions/{tx_id}/reverse",
        "/v1/community",
    ):
        assert path in schema["paths"], path

"""The edge: hostile input is a 4xx problem+json on every route, never a 500; hosts,
security headers, request ids, the offline API reference, failed-authentication limits.

The property test takes every operation of the OpenAPI schema and sends it, as an
admin and as a resident, a value of each hostile class (control characters, integers
beyond 64 bits, deep JSON, dates out of range) in its path, its query or its body.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import sys
import uuid
from typing import Any
from urllib.parse import quote

import httpx
import pytest
import pytest_asyncio
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import event, text
from support import problem

from timebank.app import create_app
from timebank.edge import MAX_JSON_DEPTH

# --- the property: no hostile value reaches a 5xx --------------------------------------


def _nest(depth: int) -> Any:
    value: Any = 1
    for i in range(depth):
        value = [value] if i % 2 else {"a": value}
    return value


CONTROL = st.builds(
    lambda head, c, tail: head + c + tail,
    st.text(max_size=5),
    st.sampled_from([chr(c) for c in [*range(9), 11, 12, *range(14, 32), 127]]),
    st.text(max_size=5),
)
HUGE = st.one_of(
    st.integers(min_value=2**63, max_value=2**300), st.integers(min_value=-(2**300), max_value=-(2**63) - 1)
)
BAD_DATE = st.sampled_from(
    [
        "0001-01-01",
        "0001-01-01T00:00:00Z",
        "9999-12-31",
        "9999-12-31T23:59:59+08:00",
        "1899-12-31T23:59:59Z",
        "2200-01-01",
    ]
)
DEEP = st.integers(min_value=MAX_JSON_DEPTH + 1, max_value=400).map(_nest)
HOSTILE = st.one_of(CONTROL, HUGE, BAD_DATE, DEEP)


def _operations(schema: dict[str, Any]) -> list[tuple[str, str, list[str], list[str], list[str]]]:
    """(method, path, path params, query params, body properties) of every operation."""
    ops = []
    for path, item in schema["paths"].items():
        for method, op in item.items():
            if method not in {"get", "post", "put", "patch", "delete"}:
                continue
            params = op.get("parameters", [])
            body_props: list[str] = []
            content = (op.get("requestBody") or {}).get("content", {})
            for media in content.values():
                ref = media.get("schema", {}).get("$ref", "")
                target = (
                    schema["components"]["schemas"].get(ref.rsplit("/", 1)[-1], {})
                    if ref
                    else media.get("schema", {})
                )
                body_props = sorted(target.get("properties", {})) or ["x"]
            ops.append(
                (
                    method.upper(),
                    path,
                    [p["name"] for p in params if p["in"] == "path"],
                    [p["name"] for p in params if p["in"] == "query"],
                    body_props,
                )
            )
    return ops


@pytest_asyncio.fixture(loop_scope="session")
async def hostile_setup(client, tenant) -> dict[str, Any]:
    member = await tenant.member("边缘测试")
    resident = await tenant.key("resident", member["id"])
    schema = (await client.get("/schema/openapi.json")).json()
    return {
        "loop": asyncio.get_running_loop(),
        "ops": _operations(schema),
        "member": member,
        "keys": {"admin": tenant.admin_key, "resident": resident},
    }


def test_hostile_values_in_any_route_are_a_4xx_problem(client, tenant, hostile_setup) -> None:
    # Synchronous on purpose: hypothesis drives the session loop (as in test_ledger_model).
    ops, keys, loop = hostile_setup["ops"], hostile_setup["keys"], hostile_setup["loop"]
    assert len(ops) > 40, "the schema lost its operations"
    member_id = hostile_setup["member"]["id"]
    seen: set[str] = set()

    @settings(max_examples=300, deadline=None, suppress_health_check=list(HealthCheck))
    @given(
        op=st.sampled_from(ops), role=st.sampled_from(["admin", "resident"]), value=HOSTILE, data=st.data()
    )
    def probe(op, role, value, data) -> None:
        method, path, path_params, query_params, body_props = op
        places = (["path"] if path_params else []) + ["query"] + (["body"] if method != "GET" else [])
        place = data.draw(st.sampled_from(places))
        assume(place == "body" or not isinstance(value, (dict, list)))  # nesting is a property of JSON bodies
        rendered = value if isinstance(value, str) else json.dumps(value)
        url = path
        for name in path_params:
            hostile_here = place == "path" and name == path_params[0]
            url = url.replace("{" + name + "}", quote(rendered, safe="") if hostile_here else member_id)
        params, body = {}, None
        if place == "query":
            params[data.draw(st.sampled_from(query_params or ["q"]))] = rendered
        if place == "body":
            body = json.dumps({data.draw(st.sampled_from(body_props or ["x"])): value}).encode()
        headers = {
            "Authorization": f"Bearer {keys[role]}",
            "Idempotency-Key": str(uuid.uuid4()),
            "Content-Type": "application/json",
        }
        r = loop.run_until_complete(client.request(method, url, params=params, content=body, headers=headers))
        assert 400 <= r.status_code < 500, (
            f"{method} {url} {place}={rendered[:80]!r}: {r.status_code} {r.text[:300]}"
        )
        assert r.headers["content-type"].startswith("application/problem+json"), (method, url, r.headers)
        seen.add(f"{r.status_code}")

    probe()
    assert "400" in seen


# --- each class, by hand, and that it changes nothing ------------------------------


async def _members(engine, community_id: str) -> int:
    async with engine.connect() as conn:
        return (
            await conn.execute(
                text("SELECT count(*) FROM parties WHERE community_id = :c"), {"c": community_id}
            )
        ).scalar_one()


@pytest.mark.parametrize("name", ["刘\x00阿姨", "a\x07b", "tab\x0bbed", "del\x7f"])
async def test_control_characters_in_a_text_field_are_refused_and_store_nothing(client, tenant, engine, name):
    before = await _members(engine, tenant.id)
    r = await client.post("/v1/members", json={"display_name": name}, headers=tenant.auth())
    assert "control character" in problem(r, 400, "invalid-request")["detail"]
    assert await _members(engine, tenant.id) == before


async def test_lines_and_tabs_in_a_memo_are_text_not_control(client, tenant):
    member = await tenant.member()
    r = await tenant.transfer(
        {
            "from_account": tenant.accounts["issuance"]["HOUR"],
            "to_account": member["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 5,
            "kind": "adjustment",
            "memo": "第一行\n第二行\t完",
        }
    )
    assert r.status_code == 201, r.text


async def test_integers_beyond_64_bits_anywhere_are_refused(client, tenant):
    member = await tenant.member()
    body = {
        "from_account": tenant.accounts["issuance"]["HOUR"],
        "to_account": member["accounts"]["HOUR"],
        "asset": "HOUR",
        "amount": 2**64,
        "kind": "adjustment",
    }
    problem(await tenant.transfer(body), 400, "invalid-request")
    account = member["accounts"]["HOUR"]
    for query in (f"limit={2**70}", f"cursor={2**64}", f"cursor=-{2**63 + 1}"):
        r = await client.get(f"/v1/accounts/{account}/entries?{query}", headers=tenant.auth())
        assert "64 bits" in problem(r, 400, "invalid-request")["detail"]
    r = await client.get(f"/v1/log/checkpoints?community_id={tenant.id}&size={2**80}")
    problem(r, 400, "invalid-request")
    assert (await tenant.balance(account))["posted"] == 0


async def test_json_nested_too_deep_is_refused(client, tenant):
    body = json.dumps({"display_name": "x", "extra": _nest(MAX_JSON_DEPTH + 5)})
    r = await client.post("/v1/members", content=body, headers=tenant.auth())
    assert "nests deeper" in problem(r, 400, "invalid-request")["detail"]
    r = await client.post("/v1/members", content="[" * 20_000 + "]" * 20_000, headers=tenant.auth())
    problem(r, 400, "invalid-request")


@pytest.mark.parametrize("when", ["0001-01-01T08:00:00+08:00", "9999-12-31T08:00:00+08:00"])
async def test_dates_outside_a_sane_range_are_refused(client, tenant, when):
    org = await tenant.party("organisations", "边缘志愿队")
    member = await tenant.member()
    r = await client.post(
        "/v1/service-records",
        headers=tenant.auth(),
        json={
            "volunteer_id": member["id"],
            "organisation_id": org["id"],
            "activity": "巡逻",
            "category": "volunteer_service",
            "started_at": when,
            "ended_at": "2026-01-01T10:00:00+08:00",
            "minutes": 60,
        },
    )
    assert "outside 1900" in problem(r, 400, "invalid-request")["detail"]
    r = await client.get(f"/v1/members/{member['id']}/service-records?from=9999-01-01", headers=tenant.auth())
    problem(r, 400, "invalid-request")


async def test_a_body_over_the_routes_limit_is_413_whether_declared_or_streamed(client, tenant):
    limit = client.app.state.settings.max_body_bytes
    big = b'{"display_name": "' + b"x" * (limit + 10) + b'"}'
    r = await client.post("/v1/members", content=big, headers=tenant.auth())
    problem(r, 413, "payload-too-large")

    async def stream():
        for _ in range(0, len(big), 65536):
            yield big[:65536]

    r = await client.post("/v1/members", content=stream(), headers=tenant.auth())
    problem(r, 413, "payload-too-large")


# --- hosts, headers, request ids -------------------------------------------------


async def test_a_host_outside_the_allow_list_is_refused(client, tenant):
    r = await client.get("/v1/community", headers={**tenant.auth(), "Host": "evil.example"})
    problem(r, 400, "invalid-host")
    r = await client.get("/v1/log/keys", headers={"Host": "evil.example:8000"})
    problem(r, 400, "invalid-host")
    # probes reach the service by address: health answers any host
    assert (await client.get("/health/live", headers={"Host": "10.1.2.3:8000"})).status_code == 200
    for host in ("localhost:8000", "127.0.0.1", "[::1]:8000", "timebank.test"):
        assert (await client.get("/v1/log/keys", headers={"Host": host})).status_code == 200, host


async def test_certificate_links_name_the_public_url_not_the_request_host(client, tenant, monkeypatch):
    state = client.app.state
    monkeypatch.setattr(state, "settings", state.settings.with_(public_url="https://bank.example.org"))
    member = await tenant.member()
    r = await client.get(
        f"/v1/members/{member['id']}/certificate?from=2026-01-01&to=2026-06-30", headers=tenant.auth()
    )
    assert r.status_code == 200, r.text
    assert r.json()["certificate"]["verify_url"].startswith("https://bank.example.org/v1/certificates/")


async def test_every_response_has_a_request_id_and_the_security_headers(client, tenant):
    answers = {
        "ok": await client.get("/v1/community", headers=tenant.auth()),
        "401": await client.get("/v1/community"),
        "401-bad-key": await client.get("/v1/community", headers={"Authorization": "Bearer tbk_nope"}),
        "404-route": await client.get("/v1/nothing-here"),
        "404-object": await client.get(f"/v1/members/{uuid.uuid4()}", headers=tenant.auth()),
        "405": await client.delete("/v1/transfers", headers=tenant.auth()),
        "400-host": await client.get("/v1/community", headers={"Host": "evil.example"}),
        "public": await client.get("/v1/log/keys"),
    }
    assert answers["401"].status_code == 401 and answers["405"].status_code == 405
    assert set(answers["405"].headers["allow"].replace(" ", "").split(",")) >= {"POST"}
    for name, r in answers.items():
        assert re.fullmatch(r"[0-9a-f]{32}", r.headers.get("x-request-id", "")), name
        assert r.headers["x-content-type-options"] == "nosniff", name
        assert r.headers["referrer-policy"] == "no-referrer", name
        assert "default-src 'none'" in r.headers["content-security-policy"], name
        assert r.headers["cache-control"] == "no-store", name
    r = await client.get("/v1/community", headers={**tenant.auth(), "X-Request-Id": "caller-chosen-1"})
    assert r.headers["x-request-id"] == "caller-chosen-1"


async def test_responses_that_carry_a_secret_are_never_stored(client, tenant):
    member = await tenant.member()
    r = await client.post(
        "/v1/api-keys", json={"role": "resident", "subject_id": member["id"]}, headers=tenant.auth()
    )
    assert r.status_code == 201 and r.json()["key"].startswith("tbk_")
    assert r.headers["cache-control"] == "no-store"


async def test_the_api_reference_needs_no_internet(client):
    page = await client.get("/schema")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp.split("script-src")[1].split(";")[0]
    refs = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert refs and all(ref.startswith("/") and not ref.startswith("//") for ref in refs), refs
    assert "<script>" not in page.text  # no inline script: the CSP forbids it
    for ref in refs:
        r = await client.get(ref)
        assert r.status_code == 200 and r.content, ref
    assert "SwaggerUIBundle" in (await client.get("/schema/assets/swagger-init.js")).text
    assert "Apache License" in (await client.get("/schema/assets/LICENSE")).text
    assert (await client.get("/schema/openapi.json")).json()["openapi"].startswith("3.")


@pytest.mark.parametrize(
    "path", ["/schema/redoc", "/schema/elements", "/schema/nope", "/schema/openapi.yaml"]
)
async def test_a_reference_page_that_does_not_exist_is_a_problem_like_every_error(client, path):
    """Litestar answers unknown /schema pages with its own HTML 404; ours is problem+json."""
    problem(await client.get(path), 404, "not-found")


async def test_messages_name_a_role_with_its_article(client, tenant):
    """ "an auditor key", "an admin", "a recorder": a refusal reads as a sentence."""
    auditor = await tenant.key("auditor", (await tenant.member("监事"))["id"])
    r = await client.post("/v1/api-keys", json={"role": "resident"}, headers=tenant.auth(auditor))
    assert problem(r, 403, "forbidden")["detail"] == "an auditor key may not call this route"
    body = {"role": "admin", "subject_id": str(uuid.uuid4())}
    r = await client.post("/v1/api-keys", json=body, headers=tenant.auth())
    assert problem(r, 400, "invalid-request")["detail"] == "an admin has no subject_id"
    r = await client.post("/v1/api-keys", json={"role": "recorder"}, headers=tenant.auth())
    assert problem(r, 400, "invalid-request")["detail"].startswith("a recorder needs subject_id")


# --- failed authentication --------------------------------------------------------


async def test_failed_authentication_is_limited_per_address_without_database_lookups(
    database_url, settings, engine, tenant
):
    app = create_app(settings.with_(auth_failure_limit=5, auth_failure_window_seconds=60), database_url)
    app.state.engine = engine
    checkouts = 0

    def count(*_: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    transport = httpx.ASGITransport(app=app, client=("198.51.100.7", 40000))
    event.listen(engine.sync_engine.pool, "checkout", count)
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://timebank.test") as c:
            wrong = {"Authorization": "Bearer tbk_" + "A" * 43}
            for _ in range(5):
                problem(await c.get("/v1/community", headers=wrong), 401, "unauthorized")
            looked_up = checkouts
            assert looked_up >= 1  # a key of the right shape is looked up ...
            for _ in range(200):  # ... until the address has failed too often
                r = await c.get("/v1/community", headers=wrong)
            problem(r, 429, "too-many-requests")
            assert 1 <= int(r.headers["retry-after"]) <= 60
            assert checkouts == looked_up, "a refused flood must not touch the database"
            # a malformed key never costs a lookup
            other = httpx.ASGITransport(app=app, client=("198.51.100.8", 40000))
            async with httpx.AsyncClient(transport=other, base_url="http://timebank.test") as c2:
                for bad in ("Bearer tbk_short", "Bearer " + "x" * 5000, "Basic abc"):
                    problem(
                        await c2.get("/v1/community", headers={"Authorization": bad}), 401, "unauthorized"
                    )
                assert checkouts == looked_up
                # another address with a good key is not affected
                assert (await c2.get("/v1/community", headers=tenant.auth())).status_code == 200
    finally:
        event.remove(engine.sync_engine.pool, "checkout", count)


# --- a 500 is logged with its traceback, and says nothing of it ------------------


async def test_an_unexpected_error_logs_its_traceback_and_answers_plainly(
    database_url, settings, engine, tenant, monkeypatch
):
    from timebank.community import service as community_service

    async def broken(*_: Any, **__: Any) -> None:
        raise RuntimeError("boom: secret detail")

    log = io.StringIO()
    app = create_app(settings, database_url)
    app.state.engine = engine
    monkeypatch.setattr(community_service, "community_view", broken)
    monkeypatch.setattr(sys, "stderr", log)  # the log writes to whatever stderr is now
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app, raise_app_exceptions=False), base_url="http://timebank.test"
    ) as c:
        r = await c.get("/v1/community", headers=tenant.auth())
    monkeypatch.undo()
    body = problem(r, 500, "internal-error")
    assert "boom" not in r.text and "Traceback" not in r.text and "secret" not in json.dumps(body)
    lines = [json.loads(line) for line in log.getvalue().splitlines() if line.startswith("{")]
    error = next(line for line in lines if line.get("event") == "unhandled error")
    assert error["request_id"] == r.headers["x-request-id"]
    assert "RuntimeError" in json.dumps(error["exception"]) and "boom: secret detail" in json.dumps(
        error["exception"]
    )

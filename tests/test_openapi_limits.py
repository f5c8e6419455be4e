"""The OpenAPI schema states the limits the service enforces and every answer a route can give
(issue 12): walked here operation by operation, and checked against real requests."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from support import problem

from timebank import schemas

METHODS = ("get", "put", "post", "delete", "patch")
# Routes that find an object named in their body or query (not in the path): they answer 404 too.
LOOKUPS = {
    ("post", "/v1/transfers"),
    ("post", "/v1/api-keys"),
    ("post", "/v1/rewards"),
    ("post", "/v1/redemptions"),
    ("get", "/v1/redemptions"),
    ("get", "/v1/service-records"),
}
# Bodies whose fields are not described (yet): PUT /v1/community/policy is decoded by the policy module.
OPEN_BODIES = {("put", "/v1/community/policy")}
TEXT_FORMATS = {"uuid", "date", "date-time", "binary"}


@pytest.fixture
async def spec(client: Any) -> dict[str, Any]:
    r = await client.get("/schema/openapi.json")
    assert r.status_code == 200, r.text
    return r.json()


def operations(spec: dict[str, Any]) -> Iterator[tuple[str, str, dict[str, Any]]]:
    for path, item in spec["paths"].items():
        for method in METHODS:
            if method in item:
                yield method, path, item[method]


def is_public(op: dict[str, Any]) -> bool:
    return {} in op.get("security", [])


def resolve(spec: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    while "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
    return schema


def leaves(
    spec: dict[str, Any], schema: dict[str, Any], where: str, seen: frozenset[str] = frozenset()
) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(where, the schema that carries the constraints, the typed alternative) for every leaf."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        if name in seen:
            return
        schema, seen = resolve(spec, schema), seen | {name}
    for option in schema.get("oneOf", [schema]):
        alternative = resolve(spec, option) if "$ref" in option else option
        types = alternative.get("type")
        types = [types] if isinstance(types, str) else (types or [])
        if "object" in types or "properties" in alternative:
            for key, sub in alternative.get("properties", {}).items():
                yield from leaves(spec, sub, f"{where}.{key}", seen)
            # Litestar may put an optional field's constraints beside its oneOf: those apply.
            extra = schema.get("additionalProperties", alternative.get("additionalProperties"))
            if isinstance(extra, dict):
                yield from leaves(spec, extra, f"{where}.*", seen)
            continue
        if "array" in types:
            yield where, schema, alternative
            yield from leaves(spec, alternative.get("items", {}), f"{where}[]", seen)
            continue
        yield where, schema, alternative


async def test_every_operation_documents_its_problem_answers(spec):
    seen = 0
    for method, path, op in operations(spec):
        seen += 1
        codes = set(op["responses"])
        label = f"{method.upper()} {path}: {sorted(codes)}"
        if not is_public(op):
            assert {"401", "403"} <= codes, label
        if "{" in path or (method, path) in LOOKUPS:
            assert "404" in codes, label
        if "requestBody" in op:
            assert "413" in codes, label
        if op.get("parameters") or "requestBody" in op:
            assert "400" in codes, label
        if path != "/health/live":  # every other route reads the database
            assert "503" in codes, label
        for code in codes - {"200", "201", "204"}:
            if path.startswith("/health/"):
                continue  # a readiness probe answers its own JSON
            content = op["responses"][code]["content"]
            assert list(content) == ["application/problem+json"], (label, code)
            assert content["application/problem+json"]["schema"]["$ref"].endswith("/Problem"), (label, code)
    assert seen > 50


async def test_every_input_states_its_limits(spec):
    """A string has maxLength (or an enum or a format), an integer minimum and maximum, an array
    maxItems: in every parameter and every JSON body."""
    open_bodies = set()
    for method, path, op in operations(spec):
        inputs = [(f"{p['in']} {p['name']}", p["schema"]) for p in op.get("parameters", [])]
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None:
            schema = resolve(spec, body["schema"])
            if not schema.get("properties"):
                open_bodies.add((method, path))
            else:
                inputs.append(("body", body["schema"]))
        for name, schema in inputs:
            for where, constraints, typed in leaves(spec, schema, name):
                types = typed.get("type")
                types = {types} if isinstance(types, str) else set(types or [])
                label = f"{method.upper()} {path} {where}: {constraints}"
                if "string" in types and "enum" not in typed and "enum" not in constraints:
                    assert typed.get("format") in TEXT_FORMATS or "maxLength" in constraints, label
                    if typed.get("format") in ("date", "date-time"):  # years 1900-2199, as the edge says
                        assert constraints.get("pattern", "").startswith("^(19|2[01])"), label
                if "integer" in types:
                    assert "minimum" in constraints and "maximum" in constraints, label
                    assert constraints["maximum"] <= 2**53, label
                if "array" in types:
                    assert "maxItems" in constraints, label
    assert open_bodies == OPEN_BODIES


async def test_the_limits_are_the_services(spec, settings):
    components = spec["components"]["schemas"]
    transfer = components["TransferIn"]["properties"]
    assert (transfer["amount"]["minimum"], transfer["amount"]["maximum"]) == (1, 10**12)
    assert transfer["memo"]["maxLength"] == 500 and transfer["legs"]["maxItems"] == 64
    leg = components["LegIn"]["properties"]["amount"]
    assert (leg["minimum"], leg["maximum"]) == (1, 10**12)
    assert components["MemberIn"]["properties"]["display_name"]["maxLength"] == 200
    assert components["ReverseIn"]["properties"]["reason"]["maxLength"] == 500
    assert components["CreditLimitIn"]["properties"]["credit_limit"]["minimum"] == 0
    reward = components["RewardIn"]["properties"]
    assert reward["price_points"]["maximum"] == 10**9 and reward["description"]["maxLength"] == 2000
    assert reward["stock"]["minimum"] == 0 and (
        reward["min_star"]["minimum"],
        reward["min_star"]["maximum"],
    ) == (0, 5)
    assert reward["star_prices"]["maxProperties"] == 5
    # Text carries no control character (tab, CR, LF may be in a memo); nor may a parameter.
    assert transfer["memo"]["pattern"] == schemas.TEXT_PATTERN
    limits = 0
    for _method, path, op in operations(spec):
        for p in op.get("parameters", []):
            if p["name"] == "limit":
                limits += 1
                assert (p["schema"]["minimum"], p["schema"]["maximum"]) == (1, settings.page_max), path
            if p["name"] == "Idempotency-Key":
                assert p["schema"]["maxLength"] == 255 and p["schema"]["minLength"] == 1, path
    assert limits >= 11
    # A write that moves value says it needs an Idempotency-Key.
    for path in ("/v1/transfers", "/v1/redemptions", "/v1/transactions/{tx_id}/reverse"):
        key = next(p for p in spec["paths"][path]["post"]["parameters"] if p["name"] == "Idempotency-Key")
        assert key["required"] is True, path
    # Answers in other media types are documented too.
    statement = spec["paths"]["/v1/merchants/{merchant_id}/statement"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "text/csv"} <= set(statement)
    certificate = spec["paths"]["/v1/members/{member_id}/certificate"]["get"]["responses"]["200"]["content"]
    assert {"application/json", "application/pdf"} <= set(certificate)
    imported = spec["paths"]["/v1/service-records/import"]["post"]["requestBody"]["content"]
    assert set(imported) == {"text/csv"}


async def test_the_schema_limits_are_enforced(tenant, settings):
    c, auth = tenant.client, tenant.auth()
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 100)
    assert (await c.get(f"/v1/members?limit={settings.page_max}", headers=auth)).status_code == 200
    problem(await c.get(f"/v1/members?limit={settings.page_max + 1}", headers=auth), 400, "invalid-request")
    problem(await c.get("/v1/members?limit=0", headers=auth), 400, "invalid-request")
    problem(await c.get("/v1/members?cursor=" + "0" * 37, headers=auth), 400, "invalid-request")
    problem(
        await c.get(f"/v1/accounts/{a['accounts']['HOUR']}/entries?cursor=" + "9" * 19, headers=auth),
        400,
        "invalid-request",
    )
    problem(await c.get("/v1/log/checkpoints?size=" + str(2**53), headers=auth), 400, "invalid-request")
    leg = {"debit": a["accounts"]["HOUR"], "credit": b["accounts"]["HOUR"], "asset": "HOUR", "amount": 1}
    problem(await tenant.transfer({"legs": [leg] * 65}), 400, "invalid-request")
    assert (await tenant.transfer({"legs": [leg] * 64})).status_code == 201
    problem(
        await c.post("/v1/members", json={"display_name": "名" * 201}, headers=auth), 400, "invalid-request"
    )
    assert (await c.post("/v1/members", json={"display_name": "名" * 200}, headers=auth)).status_code == 201
    r = await c.post("/v1/rewards", json={"title": "米", "price_points": 10**9 + 1}, headers=auth)
    problem(r, 400, "invalid-request")
    r = await c.post("/v1/transfers", json={"legs": [leg]}, headers={**auth, "Idempotency-Key": "k" * 256})
    problem(r, 400, "invalid-request")


async def test_a_json_route_takes_bodies_up_to_its_limit(tenant):
    c, auth = tenant.client, tenant.auth()
    padded = b'{"display_name": "\xe7\x94\xb2"}' + b" " * (schemas.JSON_BODY_MAX - 40)
    r = await c.post("/v1/members", content=padded, headers={**auth, "Content-Type": "application/json"})
    assert r.status_code == 201, r.text
    too_big = b'{"display_name": "\xe7\x94\xb2"}' + b" " * schemas.JSON_BODY_MAX
    r = await c.post("/v1/members", content=too_big, headers={**auth, "Content-Type": "application/json"})
    problem(r, 413, "payload-too-large")
    # A CSV import is not a JSON route: it takes a file far larger (TIMEBANK_IMPORT_MAX_BYTES).
    csv = (
        "member_ref,activity,category,place,started_at,ended_at\n"
        + "V404,陪聊,volunteer_service,中心,2026-11-05T10:00:00+08:00,2026-11-05T11:00:00+08:00\n" * 1500
    )
    assert len(csv.encode()) > schemas.JSON_BODY_MAX
    r = await c.post(
        "/v1/service-records/import", content=csv.encode(), headers={**auth, "Content-Type": "text/csv"}
    )
    assert r.status_code != 413, r.text


@pytest.mark.parametrize(
    "method, path, allowed",
    [
        ("DELETE", "/v1/transfers", {"POST"}),
        ("PUT", "/v1/community", {"GET"}),
        ("POST", "/v1/log/keys", {"GET"}),
        ("PATCH", "/v1/members/{member}", {"GET"}),
    ],
)
async def test_a_method_a_path_does_not_have_is_405_with_allow(tenant, method, path, allowed):
    """RFC 9110 15.5.6: a 405 names the methods the resource has, in ``Allow``."""
    member = await tenant.member()
    for headers in (tenant.auth(), {}):  # with a key and without one
        r = await tenant.client.request(method, path.format(member=member["id"]), headers=headers)
        problem(r, 405, "method-not-allowed")
        assert "allow" in r.headers, (method, path, dict(r.headers))
        methods = {m.strip() for m in r.headers["allow"].split(",")}
        assert allowed <= methods and method not in methods, r.headers["allow"]


async def test_a_405_on_a_route_of_many_methods_lists_them_all(tenant):
    key_id = str(uuid.uuid4())
    r = await tenant.client.put(f"/v1/api-keys/{key_id}", headers=tenant.auth())
    problem(r, 405, "method-not-allowed")
    assert {"DELETE"} <= {m.strip() for m in r.headers["allow"].split(",")}
    r = await tenant.client.put(f"/v1/rewards/{key_id}", headers=tenant.auth())
    problem(r, 405, "method-not-allowed")
    assert {"GET", "PATCH"} <= {m.strip() for m in r.headers["allow"].split(",")}


async def test_a_body_that_refuses_unknown_fields_says_so(spec):
    for method, path, op in operations(spec):
        body = op.get("requestBody", {}).get("content", {}).get("application/json")
        if body is not None and (method, path) not in OPEN_BODIES:
            assert resolve(spec, body["schema"]).get("additionalProperties") is False, (method, path)
    assert spec["components"]["schemas"]["Transaction"]["additionalProperties"] is False  # responses too

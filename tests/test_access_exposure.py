"""What a key must not reach (issue 12): value moved into a community's system
accounts by anyone but their own flows, and anything about a member that is not one
of the key's community (every member route answers 404, as if it did not exist)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import pytest
from support import problem

# --- system accounts ---------------------------------------------------------------


async def resident_with_value(tenant, name: str = "居民") -> tuple[dict[str, Any], str]:
    member = await tenant.member(name)
    await tenant.fund(member["accounts"]["HOUR"], "HOUR", 120)
    await tenant.fund(member["accounts"]["POINT"], "POINT", 50)
    return member, await tenant.key("resident", member["id"])


async def all_balances(tenant, accounts: list[str]) -> dict[str, tuple[int, int]]:
    out = {}
    for account_id in accounts:
        b = await tenant.balance(account_id)
        out[account_id] = (b["posted"], b["pending"])
    return out


def system_accounts(tenant) -> list[str]:
    return [
        tenant.accounts[role][asset]
        for role in ("issuance", "expired", "fund")
        for asset in ("HOUR", "POINT")
    ]


async def test_a_resident_moves_nothing_into_issuance_or_expired_and_gives_to_the_fund_only_as_a_donation(
    tenant,
):
    member, key = await resident_with_value(tenant)
    neighbour = await tenant.member("邻居")
    watched = [
        member["accounts"]["HOUR"],
        member["accounts"]["POINT"],
        neighbour["accounts"]["HOUR"],
        *system_accounts(tenant),
    ]
    before = await all_balances(tenant, watched)
    for role in ("issuance", "expired", "fund"):
        for asset in ("HOUR", "POINT"):
            target = tenant.accounts[role][asset]
            single = {
                "from_account": member["accounts"][asset],
                "to_account": target,
                "asset": asset,
                "amount": 5,
            }
            attempts = [
                single,
                {**single, "kind": "transfer", "memo": "还给社区"},
                {**single, "pending": {"timeout_seconds": 600}},  # a hold reserves nothing either
                # hidden in a multi-leg transfer beside a legitimate leg: all or nothing
                {
                    "legs": [
                        {
                            "debit": member["accounts"]["HOUR"],
                            "credit": neighbour["accounts"]["HOUR"],
                            "asset": "HOUR",
                            "amount": 1,
                        },
                        {"debit": member["accounts"][asset], "credit": target, "asset": asset, "amount": 5},
                    ],
                    "kind": "transfer",
                },
            ]
            for body in attempts:
                idem = str(uuid.uuid4())
                r = await tenant.transfer(body, key=key, idem=idem)
                got = problem(r, 403, "forbidden")
                assert got["account_id"] == target, got
                assert (role == "fund") == ("donation" in got["detail"]), got["detail"]
                # a rejection stays a rejection on replay
                problem(await tenant.transfer(body, key=key, idem=idem), 403, "forbidden")
    assert await all_balances(tenant, watched) == before
    # a donation into issuance or expired is no donation (400, as before); into the fund it is one
    for role in ("issuance", "expired"):
        problem(
            await tenant.transfer(
                {
                    "from_account": member["accounts"]["POINT"],
                    "to_account": tenant.accounts[role]["POINT"],
                    "asset": "POINT",
                    "amount": 5,
                    "kind": "donation",
                },
                key=key,
            ),
            400,
            "invalid-request",
        )
    assert await all_balances(tenant, watched) == before
    for asset in ("POINT", "HOUR"):
        gift = await tenant.transfer(
            {
                "from_account": member["accounts"][asset],
                "to_account": tenant.accounts["fund"][asset],
                "asset": asset,
                "amount": 5,
                "kind": "donation",
            },
            key=key,
        )
        assert gift.status_code == 201, gift.text
    assert (await tenant.balance(tenant.accounts["fund"]["POINT"]))["posted"] == before[
        tenant.accounts["fund"]["POINT"]
    ][0] + 5
    # neighbour help is untouched
    r = await tenant.transfer(
        {
            "from_account": member["accounts"]["HOUR"],
            "to_account": neighbour["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 30,
        },
        key=key,
    )
    assert r.status_code == 201, r.text


@pytest.mark.parametrize("role,kind", [("merchant", "merchants"), ("recorder", "organisations")])
async def test_merchants_and_recorders_are_held_to_the_same_rule(tenant, role, kind):
    party = await tenant.party(kind, f"一方 {role}")
    await tenant.fund(party["accounts"]["POINT"], "POINT", 40)
    key = await tenant.key(role, party["id"])
    before = await all_balances(tenant, [party["accounts"]["POINT"], *system_accounts(tenant)])
    for target_role in ("issuance", "expired", "fund"):
        r = await tenant.transfer(
            {
                "from_account": party["accounts"]["POINT"],
                "to_account": tenant.accounts[target_role]["POINT"],
                "asset": "POINT",
                "amount": 10,
            },
            key=key,
        )
        problem(r, 403, "forbidden")
    assert await all_balances(tenant, [party["accounts"]["POINT"], *system_accounts(tenant)]) == before
    r = await tenant.transfer(
        {
            "from_account": party["accounts"]["POINT"],
            "to_account": tenant.accounts["fund"]["POINT"],
            "asset": "POINT",
            "amount": 10,
            "kind": "donation",
        },
        key=key,
    )
    assert r.status_code == 201, r.text


async def test_an_admin_still_corrects_through_issuance(tenant):
    member = await tenant.member()
    await tenant.fund(member["accounts"]["HOUR"], "HOUR", 60)
    back = await tenant.transfer(
        {
            "from_account": member["accounts"]["HOUR"],
            "to_account": tenant.accounts["issuance"]["HOUR"],
            "asset": "HOUR",
            "amount": 60,
            "kind": "adjustment",
            "memo": "录入错误, 冲回",
        }
    )
    assert back.status_code == 201, back.text
    assert (await tenant.balance(member["accounts"]["HOUR"]))["posted"] == 0


# --- members of no community of the key's ---------------------------------------------

PERIOD = "?from=2026-01-01&to=2026-01-31"


@dataclass(frozen=True)
class Route:
    method: str
    template: str  # {id} is the member
    roles: tuple[str, ...]  # the roles the route admits, of admin, auditor, resident
    ok: int = 200

    def path(self, member_id: str) -> str:
        return self.template.format(id=member_id)


MEMBER_ROUTES = [
    Route("GET", "/v1/members/{id}", ("admin", "auditor", "resident")),
    Route("GET", "/v1/members/{id}/balances", ("admin", "auditor", "resident")),
    Route("GET", "/v1/members/{id}/points", ("admin", "auditor", "resident")),
    Route("GET", "/v1/members/{id}/redemptions", ("admin", "auditor", "resident")),
    Route("GET", "/v1/members/{id}/notifications", ("admin", "auditor", "resident")),
    Route("GET", "/v1/members/{id}/service-records", ("admin", "auditor", "resident")),
    Route("GET", "/v1/members/{id}/certificate" + PERIOD, ("admin", "resident")),
    Route("POST", "/v1/members/{id}/redemption-token", ("resident",), ok=201),
    Route("GET", "/v1/members/{id}/activities", ("admin", "auditor", "resident")),
]


def test_every_member_route_is_listed_here(client):
    """A new /v1/members/{id}/... route must join MEMBER_ROUTES (and its 404 rule)."""
    app_routes = {
        (method, route.path)
        for route in client.app.routes
        for method in getattr(route, "methods", ())
        if route.path.startswith("/v1/members/{member_id") and method != "OPTIONS"
    }
    listed = {(r.method, r.template.split("?")[0].replace("{id}", "{member_id:uuid}")) for r in MEMBER_ROUTES}
    assert app_routes == listed


@pytest.fixture
async def people(tenant, other_tenant) -> dict[str, Any]:
    me = await tenant.member("本人")
    neighbour = await tenant.member("邻居")
    board = await tenant.member("监事")
    elsewhere = await other_tenant.member("别的社区的人")
    shop = await tenant.party("merchants", "小店")
    return {
        "me": me["id"],
        "neighbour": neighbour["id"],
        "elsewhere": elsewhere["id"],
        "shop": shop["id"],
        "keys": {
            "admin": tenant.admin_key,
            "auditor": await tenant.key("auditor", board["id"]),
            "resident": await tenant.key("resident", me["id"]),
        },
    }


async def call(tenant, route: Route, member_id: str, key: str) -> Any:
    return await tenant.client.request(route.method, route.path(member_id), headers=tenant.auth(key))


@pytest.mark.parametrize("route", MEMBER_ROUTES, ids=lambda r: f"{r.method} {r.template}")
async def test_a_member_not_of_the_keys_community_is_404_on_every_member_route(tenant, people, route):
    strangers = {
        "a random id": str(uuid.uuid4()),
        "a member of another community": people["elsewhere"],
        "a merchant, not a member": people["shop"],
    }
    for role in route.roles:
        key = people["keys"][role]
        # the route works for someone the key may see (so a 404 below is about the member)
        mine = people["me"]
        ok = await call(tenant, route, mine, key)
        assert ok.status_code == route.ok, (role, ok.text)
        for what, member_id in strangers.items():
            body = problem(await call(tenant, route, member_id, key), 404, "not-found")
            assert member_id in body.get("detail", ""), (role, what, body)
            assert "another community" not in body.get("detail", "")
        if role == "resident":  # another member of the same community: not the resident's either
            problem(await call(tenant, route, people["neighbour"], key), 404, "not-found")
    for role in {"admin", "auditor", "resident"} - set(route.roles):
        # a role the route does not admit is refused before any member is looked at
        for member_id in (people["me"], str(uuid.uuid4()), people["elsewhere"]):
            problem(await call(tenant, route, member_id, people["keys"][role]), 403, "forbidden")


def without_id(body: dict[str, Any], member_id: str) -> dict[str, str]:
    return {k: str(v).replace(member_id, "ID") for k, v in body.items()}


async def test_the_answers_for_no_member_and_another_communitys_member_are_the_same(tenant, people):
    """Nothing in a 404 tells an id of another community from an id of no one."""
    for route in MEMBER_ROUTES:
        for role in route.roles:
            key = people["keys"][role]
            a = problem(await call(tenant, route, str(uuid.UUID(int=7)), key), 404, "not-found")
            b = problem(await call(tenant, route, people["elsewhere"], key), 404, "not-found")
            assert without_id(a, str(uuid.UUID(int=7))) == without_id(b, people["elsewhere"]), (
                route.template,
                role,
            )

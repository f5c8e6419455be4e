"""A district's own people and keys: made by `timebank district create`, then by its admins."""

from __future__ import annotations

import json

from support import problem

from tests.districts.helpers import new_district


def test_timebank_district_create_prints_a_key_and_a_sign_in_link(run_cli, database_url):
    done = run_cli("district", "create", "--name", "华锦街道", "--hour-limit", "600", url=database_url)
    assert done.returncode == 0, done.stderr
    made = json.loads(done.stdout)
    assert made["admin_key"].startswith("tbk_") and made["staff"]["sign_in_link"].startswith("http")
    assert made["staff"]["login"].startswith("district")


async def test_a_district_admin_adds_another_for_four_eyes_and_nobody_else(client, engine):
    d = await new_district(client, engine, 1)
    (community,) = d.communities
    r = await client.post(
        "/v1/people",
        json={"role": "district_admin", "display_name": "第二位街道管理员", "login": f"d2-{d.id[:8]}"},
        headers=d.auth(),
    )
    assert r.status_code == 201, r.text
    person = r.json()
    no_body = await client.post(f"/v1/people/{person['id']}/sign-in-links", headers=d.auth())
    assert problem(no_body, 400, "invalid-request")["detail"] == "send a JSON object as the request body"
    link = await client.post(f"/v1/people/{person['id']}/sign-in-links", json={}, headers=d.auth())
    assert link.status_code == 201, link.text
    listed = (await client.get("/v1/people", headers=d.auth())).json()
    assert {p["role"] for p in listed["items"]} == {"district_admin"}
    # A district gives out district roles only; a community never a district role.
    for role in ("admin", "resident"):
        body = {"role": role, "display_name": "某人", "login": f"x-{role}-{d.id[:6]}"}
        assert problem(await client.post("/v1/people", json=body, headers=d.auth()), 400, "invalid-request")
    body = {"role": "district_admin", "display_name": "某人", "login": f"y-{d.id[:6]}"}
    assert problem(
        await client.post("/v1/people", json=body, headers=community.auth()), 400, "invalid-request"
    )
    # The district's people are not the community's.
    people = (await client.get("/v1/people", headers=community.auth())).json()["items"]
    assert person["id"] not in {p["id"] for p in people}

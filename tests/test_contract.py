"""Every response matches the shape the OpenAPI schema documents (timebank/schemas.py)."""

from __future__ import annotations

import uuid

import msgspec

from timebank import schemas


def conforms(body, shape):
    return msgspec.convert(body, shape, strict=True)


async def test_responses_match_the_documented_shapes(tenant):
    c = tenant.client
    conforms((await c.get("/v1/community", headers=tenant.auth())).json(), schemas.Community)
    a = conforms(await tenant.member("甲"), schemas.Party)
    b = conforms(await tenant.member("乙"), schemas.Party)
    conforms(await tenant.party("organisations", "队"), schemas.Party)
    conforms(await tenant.party("merchants", "店"), schemas.Party)
    conforms((await c.get("/v1/members", headers=tenant.auth())).json(), schemas.PartyPage)
    conforms((await c.get(f"/v1/members/{a.id}", headers=tenant.auth())).json(), schemas.Party)
    conforms(
        (await c.get(f"/v1/members/{a.id}/balances", headers=tenant.auth())).json(),
        dict[str, schemas.MemberBalance],
    )
    r = await c.post("/v1/api-keys", json={"role": "resident", "subject_id": a.id}, headers=tenant.auth())
    conforms(r.json(), schemas.ApiKeyCreated)
    conforms((await c.get("/v1/api-keys", headers=tenant.auth())).json(), schemas.ApiKeyList)

    conforms(await tenant.fund(a.accounts["HOUR"], "HOUR", 100), schemas.Transaction)
    move = {
        "from_account": a.accounts["HOUR"],
        "to_account": b.accounts["HOUR"],
        "asset": "HOUR",
        "amount": 5,
    }
    tx = conforms((await tenant.transfer(move)).json(), schemas.Transaction)
    hold = conforms(
        (await tenant.transfer({**move, "pending": {"timeout_seconds": 60}})).json(), schemas.Transaction
    )
    idem = {**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())}
    conforms((await c.post(f"/v1/transactions/{hold.id}/post", headers=idem)).json(), schemas.Transaction)
    conforms((await c.get(f"/v1/transactions/{hold.id}", headers=tenant.auth())).json(), schemas.Transaction)
    rev = await c.post(
        f"/v1/transactions/{tx.id}/reverse",
        json={"reason": "测试"},
        headers={**tenant.auth(), "Idempotency-Key": str(uuid.uuid4())},
    )
    conforms(rev.json(), schemas.Transaction)
    conforms((await c.get(f"/v1/transactions/{tx.id}", headers=tenant.auth())).json(), schemas.Transaction)
    conforms(
        (await c.get(f"/v1/accounts/{a.accounts['HOUR']}", headers=tenant.auth())).json(), schemas.Account
    )
    conforms(
        (await c.get(f"/v1/accounts/{a.accounts['HOUR']}/entries", headers=tenant.auth())).json(),
        schemas.EntryPage,
    )
    r = await c.patch(f"/v1/accounts/{a.accounts['HOUR']}", json={"credit_limit": 3}, headers=tenant.auth())
    conforms(r.json(), schemas.Account)
    conforms((await tenant.transfer({**move, "amount": 10**6})).json(), schemas.Problem)

    # The transparency log (public) and receipts.
    early = conforms(
        (await c.get(f"/v1/transactions/{tx.id}/receipt", headers=tenant.auth())).json(), schemas.Receipt
    )
    assert early.log is None
    await tenant.integrate()
    receipt = conforms(
        (await c.get(f"/v1/transactions/{tx.id}/receipt", headers=tenant.auth())).json(), schemas.Receipt
    )
    assert receipt.log is not None
    log = f"community_id={tenant.id}"
    conforms((await c.get("/v1/log/keys")).json(), schemas.KeySet)
    conforms((await c.get(f"/v1/log/checkpoints?{log}")).json(), schemas.CheckpointPage)
    conforms(
        (await c.get(f"/v1/log/proof/inclusion?{log}&transaction_id={tx.id}")).json(), schemas.InclusionProof
    )
    conforms(
        (await c.get(f"/v1/log/proof/consistency?{log}&first=1&second={receipt.log.tree_size}")).json(),
        schemas.ConsistencyProof,
    )


async def test_the_schema_documents_bodies_responses_and_problems(client):
    spec = (await client.get("/schema/openapi.json")).json()
    names = set(spec["components"]["schemas"])
    assert {"Transaction", "Account", "EntryPage", "Community", "Party", "Problem", "TransferIn"} <= {
        n.split("_")[-1] for n in names
    }, names
    transfer = spec["paths"]["/v1/transfers"]["post"]
    assert {"201", "400", "401", "403", "404", "409", "422"} <= set(transfer["responses"])
    assert "application/problem+json" in transfer["responses"]["422"]["content"]
    assert any(p["name"] == "Idempotency-Key" for p in transfer["parameters"])
    assert spec["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    # the log's public endpoints say so (no security requirement)
    for path in (
        "/v1/log/keys",
        "/v1/log/checkpoint",
        "/v1/log/proof/inclusion",
        "/v1/log/proof/consistency",
    ):
        assert {} in spec["paths"][path]["get"]["security"], path
    assert "security" not in spec["paths"]["/v1/transactions/{tx_id}/receipt"]["get"]  # the global: a key

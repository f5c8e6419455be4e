"""A small community with a public history, for the public page's tests (HTTP and browser):
approved service (hours and points), a confirmed redemption at a merchant, a signed
certificate, and the log integrated, so receipts carry their inclusion proofs."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text

from timebank.log import proofs

COUNT_SQL = text("SELECT count(*) FROM transactions WHERE community_id = :c")
VOLUNTEER = "王桂兰"  # a name that must never appear on the public page
ORGANISATION = "华锦志愿服务队"
MERCHANT = "幸福里爱心超市"


async def service(t: Any, member: dict[str, Any], recorder: str, hours: list[float]) -> list[dict[str, Any]]:
    """Approved service records (recent days, local mornings): their approvals' answers."""
    start = datetime.now(UTC).replace(hour=1, minute=0, second=0, microsecond=0) - timedelta(days=len(hours))
    done = []
    for n, h in enumerate(hours):
        begin = start + timedelta(days=n)
        r = await t.client.post(
            "/v1/service-records",
            headers=t.auth(recorder),
            json={
                "member_id": member["id"],
                "activity": ["陪老人聊天", "修水管", "社区义诊"][n % 3],
                "category": "volunteer_service",
                "place": "社区活动室",
                "started_at": begin.isoformat(),
                "ended_at": (begin + timedelta(hours=h)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        a = await t.client.post(
            f"/v1/service-records/{r.json()['id']}/approve",
            headers={**t.auth(), "Idempotency-Key": str(uuid.uuid4())},
        )
        assert a.status_code == 201, a.text
        done.append(a.json())
    return done


async def public_history(t: Any) -> dict[str, Any]:
    """Service by two volunteers, a redemption confirmed at a merchant, a certificate;
    the log integrated. Returns what the tests need (ids, keys, the certificate)."""
    # The service is entered by hand (back-filled, 补录): it earns points when the policy says so.
    r = await t.client.put("/v1/community/policy", json={"backfilled_points": True}, headers=t.auth())
    assert r.status_code == 200, r.text
    org = await t.party("organisations", ORGANISATION)
    recorder = await t.key("recorder", org["id"])
    volunteer = await t.member(VOLUNTEER)
    other = await t.member("李建国")
    approvals = await service(t, volunteer, recorder, [2, 1.5])
    await service(t, other, recorder, [3])
    merchant = await t.party("merchants", MERCHANT)
    merchant_key = await t.key("merchant", merchant["id"])
    resident_key = await t.key("resident", volunteer["id"])
    reward = await t.client.post(
        "/v1/rewards", json={"title": "十斤大米", "price_points": 10}, headers=t.auth(merchant_key)
    )
    assert reward.status_code == 201, reward.text
    held = await t.client.post(
        "/v1/redemptions",
        json={"reward_id": reward.json()["id"], "member_id": volunteer["id"]},
        headers={**t.auth(resident_key), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert held.status_code == 201, held.text
    confirmed = await t.client.post(
        f"/v1/redemptions/{held.json()['id']}/confirm",
        json={"code": held.json()["code"]},
        headers=t.auth(merchant_key),
    )
    assert confirmed.status_code in (200, 201), confirmed.text
    today = datetime.now(UTC).date()
    cert = await t.client.get(
        f"/v1/members/{volunteer['id']}/certificate",
        params={"from": (today - timedelta(days=10)).isoformat(), "to": today.isoformat()},
        headers=t.auth(),
    )
    assert cert.status_code == 200, cert.text
    await settled(t)
    return {
        "volunteer": volunteer,
        "credits": [transaction_of(a) for a in approvals],
        "other": other,
        "merchant": merchant,
        "resident_key": resident_key,
        "certificate": cert.json(),
    }


def transaction_of(approval: dict[str, Any]) -> str:
    """The id of the service credit an approval made."""
    return str(approval["transaction"]["id"])


async def settled(t: Any) -> None:
    """Every transaction of the community is in a signed checkpoint (integrated here, or by
    a live server's integrator, which may hold the community's lock meanwhile)."""
    engine = t.client.app.state.engine
    for _ in range(100):
        await t.integrate()
        async with engine.connect() as conn:
            state = await proofs.log_state(conn, uuid.UUID(t.id))
            count = (await conn.execute(COUNT_SQL, {"c": uuid.UUID(t.id)})).scalar_one()
        if state["waiting"] == 0 and state["checkpoint"] and state["checkpoint"]["tree_size"] == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"the log of {t.id} did not settle: {state}, {count} transactions")


async def a_receipt(t: Any, tx_id: str, key: str | None = None) -> dict[str, Any]:
    """A transaction's receipt with its inclusion proof. The log is integrated here; a
    live server's integrator may hold the community's lock meanwhile, so ask again until
    the receipt has its proof (the maximum merge delay is 2 s)."""
    body: dict[str, Any] = {}
    for _ in range(50):
        await t.integrate()
        r = await t.client.get(f"/v1/transactions/{tx_id}/receipt", headers=t.auth(key))
        assert r.status_code == 200, r.text
        body = r.json()
        if "log" in body and body["log"]["inclusion_proof"]:
            return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"no inclusion proof after 5 s: {body}")

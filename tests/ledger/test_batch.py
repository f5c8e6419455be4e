"""POST /v1/transfers/batch: many transfers, one commit, one result each (TigerBeetle style).

Checked against a model that applies the same transfers one by one: every result and
every balance; a failing linked chain moves nothing; the whole batch replays; a
transfer of a batch and the same transfer alone share their key; batches racing on a
hot account neither deadlock nor overdraw; receipts verify; the audit stays clean.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from typing import Any

from support import problem

from timebank.audits import run_audit
from timebank.ledger.audit import ledger_checks
from timebank.log.verify import load_jwks, verify_set


async def batch(tenant, transfers: list[dict[str, Any]], key: str | None = None) -> Any:
    return await tenant.client.post(
        "/v1/transfers/batch", json={"transfers": transfers}, headers=tenant.auth(key)
    )


def model(balances: dict[str, int], transfers: list[dict[str, Any]], known: set[str]) -> list[str]:
    """What each transfer should answer, applying them in order (chains all or nothing)."""
    out: list[str] = []
    chain: list[int] = []
    saved = dict(balances)
    failed = False
    for n, t in enumerate(transfers):
        if not chain:
            saved, failed = dict(balances), False
        chain.append(n)
        ok = (
            not failed
            and t["from_account"] in known
            and t["to_account"] in known
            and balances.get(t["from_account"], 0) >= t["amount"]
        )
        if ok:
            balances[t["from_account"]] -= t["amount"]
            balances[t["to_account"]] = balances.get(t["to_account"], 0) + t["amount"]
            out.append("created")
        else:
            out.append("rejected" if not failed else "chain")
            failed = True
        if not t.get("linked"):
            if failed and len(chain) > 1:
                balances.clear()
                balances.update(saved)
                for m in chain:
                    out[m] = out[m] if out[m] == "rejected" else "chain"
            chain = []
    return ["rejected" if o == "chain" else o for o in out]


async def test_a_thousand_transfers_with_rejections_and_a_failing_chain(tenant, engine):
    members = [await tenant.member(f"居民{n}") for n in range(40)]
    accounts = [m["accounts"]["HOUR"] for m in members]
    for account in accounts:
        await tenant.fund(account, "HOUR", 50)
    rng = random.Random(19)
    transfers = []
    for n in range(1000):
        a, b = rng.sample(accounts, 2)
        transfers.append(
            {
                "idempotency_key": f"b-{n}",
                "from_account": a,
                "to_account": b,
                "asset": "HOUR",
                "amount": rng.randint(1, 30),
            }
        )
    unknown = str(uuid.uuid4())
    transfers[10]["to_account"] = unknown  # refused: no such account
    # A chain of three whose second leg asks for more than there is: none of it moves.
    transfers[500:503] = [
        {
            "idempotency_key": "chain-1",
            "from_account": accounts[0],
            "to_account": accounts[1],
            "asset": "HOUR",
            "amount": 1,
            "linked": True,
        },
        {
            "idempotency_key": "chain-2",
            "from_account": accounts[2],
            "to_account": accounts[3],
            "asset": "HOUR",
            "amount": 10**6,
            "linked": True,
        },
        {
            "idempotency_key": "chain-3",
            "from_account": accounts[4],
            "to_account": accounts[5],
            "asset": "HOUR",
            "amount": 1,
        },
    ]
    # A chain that succeeds.
    transfers[700:702] = [
        {
            "idempotency_key": "good-1",
            "from_account": accounts[6],
            "to_account": accounts[7],
            "asset": "HOUR",
            "amount": 1,
            "linked": True,
        },
        {
            "idempotency_key": "good-2",
            "from_account": accounts[7],
            "to_account": accounts[8],
            "asset": "HOUR",
            "amount": 1,
        },
    ]
    balances = dict.fromkeys(accounts, 50)
    expected = model(balances, transfers, set(accounts))
    r = await batch(tenant, transfers)
    assert r.status_code == 200, r.text
    body = r.json()
    statuses = [x["status"] for x in body["results"]]
    assert statuses == expected
    assert body["created"] == expected.count("created") and body["rejected"] == expected.count("rejected")
    assert 0 < body["rejected"] < 1000
    results = body["results"]
    assert problem_type(results[10]) == "not-found"
    assert problem_type(results[501]) == "insufficient-funds"
    assert problem_type(results[500]) == problem_type(results[502]) == "linked-chain-failed"
    assert results[700]["status"] == results[701]["status"] == "created"
    for account in accounts:
        assert (await tenant.balance(account))["posted"] == balances[account]
    # Every created transfer answers with its signed entry timestamp.
    keys = load_jwks((await tenant.client.get("/v1/log/keys")).json())
    created = [x for x in results if x["status"] == "created"]
    for x in created[:20]:
        payload = verify_set(x["transaction"]["set"], keys)
        assert payload is not None

    # The whole batch again: every answer the same, nothing moves again.
    again = (await batch(tenant, transfers)).json()
    assert [x["status"] for x in again["results"]] == ["replayed" if s == "created" else s for s in statuses]
    assert all(x["replayed"] for x, s in zip(again["results"], statuses, strict=True) if s == "created")
    assert [x["transaction"]["id"] for x in again["results"] if x["status"] == "replayed"] == [
        x["transaction"]["id"] for x in created
    ]
    assert problem_type(again["results"][501]) == "insufficient-funds"
    assert problem_type(again["results"][500]) == "linked-chain-failed"
    for account in accounts:
        assert (await tenant.balance(account))["posted"] == balances[account]

    # One of them alone, by its key: the same transfer (one key space).
    first = transfers[0]
    single = {k: v for k, v in first.items() if k != "idempotency_key"}
    alone = await tenant.transfer(single, idem=first["idempotency_key"])
    assert alone.status_code == 201 and alone.json()["id"] == results[0]["transaction"]["id"]
    other = await tenant.transfer({**single, "amount": single["amount"] + 1}, idem=first["idempotency_key"])
    assert problem(other, 409, "idempotency-conflict")

    report = await run_audit(engine, groups=(ledger_checks,))
    assert report.ok, {k: v[:2] for k, v in report.results.items() if v}


def problem_type(result: dict[str, Any]) -> str:
    assert result["status"] == "rejected", result
    return result["problem"]["type"].rsplit("/", 1)[-1]


async def test_batches_racing_on_a_hot_account_neither_deadlock_nor_overdraw(tenant):
    hot = await tenant.member("热门")
    members = [await tenant.member(f"志愿者{n}") for n in range(20)]
    for m in members:
        await tenant.fund(m["accounts"]["HOUR"], "HOUR", 100)
    await tenant.fund(hot["accounts"]["HOUR"], "HOUR", 300)
    hot_account = hot["accounts"]["HOUR"]
    rng = random.Random(7)

    def one_batch(b: int) -> list[dict[str, Any]]:
        out = []
        for n in range(100):
            m = rng.choice(members)["accounts"]["HOUR"]
            into_hot = n % 3 != 0
            out.append(
                {
                    "idempotency_key": f"hot-{b}-{n}",
                    "asset": "HOUR",
                    "amount": 2,
                    "from_account": m if into_hot else hot_account,
                    "to_account": hot_account if into_hot else m,
                }
            )
        return out

    batches = [one_batch(b) for b in range(8)]
    answers = await asyncio.gather(*(batch(tenant, t) for t in batches))
    assert all(a.status_code == 200 for a in answers), [a.text[:200] for a in answers]
    total = 0
    for t, a in zip(batches, answers, strict=True):
        for x, item in zip(a.json()["results"], t, strict=True):
            if x["status"] == "created":
                total += item["amount"] if item["to_account"] == hot_account else -item["amount"]
            else:
                assert problem_type(x) == "insufficient-funds"
    balance = await tenant.balance(hot_account)
    assert balance["posted"] == 300 + total and balance["posted"] >= 0
    everyone = (
        sum([(await tenant.balance(m["accounts"]["HOUR"]))["posted"] for m in members]) + balance["posted"]
    )
    assert everyone == 20 * 100 + 300


async def test_batch_limits_and_refusals(tenant):
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 10)
    move = {
        "from_account": a["accounts"]["HOUR"],
        "to_account": b["accounts"]["HOUR"],
        "asset": "HOUR",
        "amount": 1,
    }
    too_many = [{**move, "idempotency_key": f"k{n}"} for n in range(1001)]
    assert problem(await batch(tenant, too_many), 400, "invalid-request")
    assert problem(await batch(tenant, []), 400, "invalid-request")
    huge = [{**move, "idempotency_key": f"k{n}", "memo": "备" * 400} for n in range(1000)]
    assert (await batch(tenant, huge)).status_code == 413
    # A chain still open at the end fails whole.
    r = (
        await batch(
            tenant, [{**move, "idempotency_key": "o1"}, {**move, "idempotency_key": "o2", "linked": True}]
        )
    ).json()
    assert [x["status"] for x in r["results"]] == ["created", "rejected"]
    assert problem_type(r["results"][1]) == "linked-chain-failed"
    # A resident moves only from its own accounts; the kinds are those of a single transfer.
    key = await tenant.key("resident", b["id"])
    r = (await batch(tenant, [{**move, "idempotency_key": "theirs"}], key)).json()
    assert problem_type(r["results"][0]) == "forbidden"
    r = (
        await batch(
            tenant,
            [
                {
                    **move,
                    "idempotency_key": "adj",
                    "kind": "adjustment",
                    "from_account": b["accounts"]["HOUR"],
                    "to_account": a["accounts"]["HOUR"],
                }
            ],
            key,
        )
    ).json()
    assert problem_type(r["results"][0]) == "forbidden"
    # The same key twice in one batch: the second is the first's answer (or a conflict).
    r = (
        await batch(
            tenant,
            [
                {**move, "idempotency_key": "twice"},
                {**move, "idempotency_key": "twice"},
                {**move, "idempotency_key": "twice", "amount": 2},
            ],
        )
    ).json()
    assert [x["status"] for x in r["results"]] == ["created", "replayed", "rejected"]
    assert problem_type(r["results"][2]) == "idempotency-conflict"
    assert (await tenant.balance(a["accounts"]["HOUR"]))["posted"] == 10 - 2
    # A key that is only spaces is refused alone (there is no key to answer under).
    r = (
        await batch(tenant, [{**move, "idempotency_key": "   "}, {**move, "idempotency_key": "fine"}])
    ).json()
    assert [x["status"] for x in r["results"]] == ["rejected", "created"]
    assert problem_type(r["results"][0]) == "idempotency-key-required"

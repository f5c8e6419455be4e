"""Jepsen-style bank test: many concurrent clients move money among members over HTTP.

24 members are funded from issuance, then 16 concurrent clients make 40 operations each:
single transfers (some then reversed by two racing reversal requests: at most one may
win), multi-leg transfers that touch 3 to 6 accounts in random order (a wrong lock
order would deadlock), holds that are then posted or voided (sometimes both at once:
exactly one may win), and the same request sent twice at once with one
Idempotency-Key (it must run once, both answers equal). Amounts are large enough that
many transfers are rejected with 422 insufficient-funds. Meanwhile a reader checks,
in one SQL statement (a consistent snapshot), that the members' total never changes
and no member is below zero, and another reads balances over HTTP.

At the end: the total is unchanged, every account equals its funding plus the
successful operations (each applied exactly once, rejections not at all), nothing
answered 5xx, every 201 transaction can be read back (with its status, resolved_by
and reversed_by), the community's transaction rows match the successes one for one,
every Idempotency-Key stored the status the client saw, and the audit (recomputing
everything from the entries) is clean.

Why not the ``client`` fixture: litestar's ``AsyncTestClient`` transport is synchronous
(``handle_async_request`` calls ``handle_request``, which runs the app through a
blocking portal thread), so while one request runs the calling event loop is blocked
and requests from concurrent tasks never overlap. ``bank_client`` below runs the same
app in the test's event loop through ``httpx.ASGITransport``, so requests really
interleave and contend for rows in PostgreSQL (each holds its own pooled connection).
"""

from __future__ import annotations

import asyncio
import os
import random
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

import httpx
from sqlalchemy import bindparam, text
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.app import create_app
from timebank.audits import run_audit
from timebank.core.settings import Settings

N_MEMBERS = 24
N_CLIENTS = 16
OPS_PER_CLIENT = 40
SEED = int(os.environ.get("BANK_SEED", "20261122"))
PROBLEM_BASE = "https://timebank.example/problems/"


@asynccontextmanager
async def bank_client(settings: Settings, database_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app in this event loop, so concurrent requests interleave (see module docstring).

    A context manager rather than a fixture: the app's lifespan holds an anyio task group,
    which must be left in the task that entered it (pytest-asyncio tears fixtures down in
    another task)."""
    app = create_app(settings, database_url)
    async with app.lifespan():
        transport = httpx.ASGITransport(app=InFlight(app))
        async with httpx.AsyncClient(transport=transport, base_url="http://timebank.test", timeout=120) as c:
            yield c


class InFlight:
    """ASGI wrapper counting requests inside the app at once (proof the run is concurrent)."""

    peak = 0

    def __init__(self, app: Any) -> None:
        self.app = app
        self.now = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.now += 1
        InFlight.peak = max(InFlight.peak, self.now)
        try:
            await self.app(scope, receive, send)
        finally:
            self.now -= 1


@dataclass
class History:
    """What the clients saw, to check against the database afterwards."""

    responses: list[tuple[str, int, str]] = field(
        default_factory=list
    )  # (what, status, text) of every request
    unexpected: list[str] = field(default_factory=list)
    keys: dict[str, int] = field(default_factory=dict)  # Idempotency-Key -> status the client saw
    # successful writes: transaction id -> (what, the status reading it back must show)
    created: dict[str, tuple[str, str]] = field(default_factory=dict)
    applied: list[tuple[str, str, int]] = field(
        default_factory=list
    )  # (debit, credit, amount) that took effect
    resolved_by: dict[str, str] = field(default_factory=dict)  # hold id -> its post/void
    reversed_by: dict[str, str] = field(default_factory=dict)  # transfer id -> its reversal
    ok: Counter[str] = field(default_factory=Counter)
    rejected: Counter[str] = field(default_factory=Counter)

    def created_tx(self, tx_id: str, what: str, status: str) -> None:
        if tx_id in self.created:
            self.unexpected.append(f"two successful writes answered the same transaction id {tx_id}")
        self.created[tx_id] = (what, status)


async def test_concurrent_transfers_conserve_money(
    tenant: Any, engine: AsyncEngine, settings: Settings, database_url: str
) -> None:
    InFlight.peak = 0
    async with bank_client(settings, database_url) as c:
        await run_bank(tenant, engine, c)


async def run_bank(tenant: Any, engine: AsyncEngine, c: httpx.AsyncClient) -> None:
    auth = tenant.auth()
    setup_rng = random.Random(SEED)
    members = [await tenant.member(f"储户{i}") for i in range(N_MEMBERS)]
    accounts = [m["accounts"]["HOUR"] for m in members]
    initial = {a: setup_rng.randint(40, 160) for a in accounts}
    for a, amount in initial.items():
        await tenant.fund(a, "HOUR", amount)
    total = sum(initial.values())
    h = History()

    async def write(
        what: str, path: str, body: dict[str, Any] | None, key: str | None = None
    ) -> httpx.Response:
        key = key or str(uuid.uuid4())
        r = await c.post(path, json=body, headers={**auth, "Idempotency-Key": key})
        h.responses.append((what, r.status_code, r.text))
        h.keys[key] = r.status_code
        return r

    def expect_transfer_outcome(
        what: str, r: httpx.Response, legs: list[tuple[str, str, int]], status: str
    ) -> bool:
        """Record a transfer's or hold's answer; ``status`` is what reading it back must show."""
        if r.status_code == 201:
            h.ok[what] += 1
            h.created_tx(r.json()["id"], what, status)
            if what == "transfer":  # a hold moves nothing until it is posted
                h.applied.extend(legs)
            return True
        if r.status_code == 422 and r.json().get("type") == PROBLEM_BASE + "insufficient-funds":
            h.rejected[what] += 1
            return False
        h.unexpected.append(f"{what} {legs}: {r.status_code} {r.text}")
        return False

    def legs_body(legs: list[tuple[str, str, int]], **extra: Any) -> dict[str, Any]:
        return {
            "legs": [{"debit": d, "credit": cr, "asset": "HOUR", "amount": n} for d, cr, n in legs],
            **extra,
        }

    def problem_is(r: httpx.Response, status: int, slug: str) -> bool:
        return r.status_code == status and r.json().get("type") == PROBLEM_BASE + slug

    async def reversal_race(tx_id: str, legs: list[tuple[str, str, int]]) -> None:
        """Two reversals of one transfer at once: at most one succeeds. The other is told it was
        already reversed, or (if it ran first, while the receiver had spent the money) 422."""
        r1, r2 = await asyncio.gather(
            write("reverse", f"/v1/transactions/{tx_id}/reverse", {"reason": "race one"}),
            write("reverse", f"/v1/transactions/{tx_id}/reverse", {"reason": "race two"}),
        )
        won = [r for r in (r1, r2) if r.status_code == 201]
        told_reversed = [r for r in (r1, r2) if problem_is(r, 409, "already-reversed")]
        insufficient = [r for r in (r1, r2) if problem_is(r, 422, "insufficient-funds")]
        if (
            len(won) > 1
            or len(won) + len(told_reversed) + len(insufficient) != 2
            or (told_reversed and not won)
        ):
            h.unexpected.append(
                f"reversal race on {tx_id}: {r1.status_code} {r1.text} / {r2.status_code} {r2.text}"
            )
        if won:
            reversal = won[0].json()["id"]
            h.ok["reversal"] += 1
            h.created_tx(reversal, "reversal", "posted")
            h.reversed_by[tx_id] = reversal
            h.applied.extend((credit, debit, n) for debit, credit, n in legs)

    async def hold_race(hold_id: str, legs: list[tuple[str, str, int]]) -> None:
        """Post and void one hold at once: exactly one wins, the other is told it was resolved."""
        rp, rv = await asyncio.gather(
            write("post", f"/v1/transactions/{hold_id}/post", None),
            write("void", f"/v1/transactions/{hold_id}/void", None),
        )
        if sorted([rp.status_code, rv.status_code]) != [201, 409] or not any(
            problem_is(r, 409, "hold-already-resolved") for r in (rp, rv)
        ):
            h.unexpected.append(
                f"post/void race on {hold_id}: {rp.status_code} {rp.text} / {rv.status_code} {rv.text}"
            )
            return
        action, r = ("post", rp) if rp.status_code == 201 else ("void", rv)
        settled(hold_id, action, r, legs)

    def settled(hold_id: str, action: str, r: httpx.Response, legs: list[tuple[str, str, int]]) -> None:
        status = "posted" if action == "post" else "voided"
        h.ok[action] += 1
        h.created_tx(r.json()["id"], action, status)
        h.created[hold_id] = ("hold", status)
        h.resolved_by[hold_id] = r.json()["id"]
        if action == "post":
            h.applied.extend(legs)

    async def client_task(i: int) -> None:
        rng = random.Random(f"{SEED}-{i}")
        for _ in range(OPS_PER_CLIENT):
            x = rng.random()
            if x < 0.45:  # single transfer, sometimes then reversed by two racing requests
                src, dst = rng.sample(accounts, 2)
                amount = rng.randint(1, 90)
                r = await write(
                    "transfer",
                    "/v1/transfers",
                    {"from_account": src, "to_account": dst, "asset": "HOUR", "amount": amount},
                )
                if (
                    expect_transfer_outcome("transfer", r, [(src, dst, amount)], "posted")
                    and rng.random() < 0.2
                ):
                    await reversal_race(r.json()["id"], [(src, dst, amount)])
            elif x < 0.7:  # multi-leg over 3..6 accounts, legs and accounts in random order
                chosen = rng.sample(accounts, rng.randint(3, 6))
                legs = [(a, b, rng.randint(1, 60)) for a, b in pairwise(chosen)]
                if rng.random() < 0.5:  # close the cycle: every account both pays and receives
                    legs.append((chosen[-1], chosen[0], rng.randint(1, 60)))
                rng.shuffle(legs)
                r = await write("multi-leg", "/v1/transfers", legs_body(legs))
                expect_transfer_outcome("transfer", r, legs, "posted")
            elif x < 0.88:  # a hold, then post or void it (or both at once)
                chosen = rng.sample(accounts, rng.choice([2, 3]))
                legs = [(a, b, rng.randint(1, 60)) for a, b in pairwise(chosen)]
                rng.shuffle(legs)
                r = await write("hold", "/v1/transfers", legs_body(legs, pending={"timeout_seconds": 3600}))
                if not expect_transfer_outcome("hold", r, legs, "pending"):
                    continue
                hold_id = r.json()["id"]
                await asyncio.sleep(rng.random() * 0.01)  # let others run while the hold is open
                if rng.random() < 0.3:
                    await hold_race(hold_id, legs)
                    continue
                action = rng.choice(["post", "void"])
                r = await write(action, f"/v1/transactions/{hold_id}/{action}", None)
                if r.status_code != 201:
                    h.unexpected.append(f"{action} of our own open hold {hold_id}: {r.status_code} {r.text}")
                    continue
                settled(hold_id, action, r, legs)
            else:  # the same request twice at once with one key: it runs once, both get its answer
                src, dst = rng.sample(accounts, 2)
                amount = rng.randint(1, 90)
                body = {"from_account": src, "to_account": dst, "asset": "HOUR", "amount": amount}
                key = str(uuid.uuid4())
                r1, r2 = await asyncio.gather(
                    write("dup", "/v1/transfers", body, key), write("dup", "/v1/transfers", body, key)
                )
                replayed = sorted(r.headers.get("idempotent-replayed") == "true" for r in (r1, r2))
                if r1.status_code != r2.status_code or r1.json() != r2.json() or replayed != [False, True]:
                    h.unexpected.append(
                        f"concurrent duplicates differ: {r1.status_code} {dict(r1.headers)} {r1.text} / "
                        f"{r2.status_code} {dict(r2.headers)} {r2.text}"
                    )
                expect_transfer_outcome("transfer", r1, [(src, dst, amount)], "posted")

    account_ids = [uuid.UUID(a) for a in accounts]
    snapshot_sql = text(
        "SELECT sum(credits_posted - debits_posted) AS total, "
        "min(credits_posted - debits_posted - debits_pending) AS lowest, count(*) AS n "
        "FROM accounts WHERE id = ANY(:ids)"
    ).bindparams(bindparam("ids", type_=ARRAY(UUID(as_uuid=True))))
    done = asyncio.Event()
    snapshots: list[tuple[int, int, int]] = []
    http_reads = 0

    async def snapshot_reader() -> None:
        while not done.is_set():
            async with engine.connect() as conn:
                row = (await conn.execute(snapshot_sql, {"ids": account_ids})).one()
            snapshots.append((row.total, row.lowest, row.n))
            await asyncio.sleep(0.001)

    async def http_reader() -> None:
        nonlocal http_reads
        rng = random.Random(f"{SEED}-reader")
        while not done.is_set():
            account = rng.choice(accounts)
            r = await c.get(f"/v1/accounts/{account}", headers=auth)
            h.responses.append(("read", r.status_code, r.text))
            http_reads += 1
            if r.status_code != 200:
                h.unexpected.append(f"read {account}: {r.status_code} {r.text}")
            elif r.json()["available"] < 0 or r.json()["posted"] < 0:
                h.unexpected.append(f"read {account}: below zero {r.json()}")
            await asyncio.sleep(0.001)

    async def clients() -> None:
        try:
            await asyncio.gather(*(client_task(i) for i in range(N_CLIENTS)))
        finally:
            done.set()

    await asyncio.gather(clients(), snapshot_reader(), http_reader())
    peak = InFlight.peak  # during the run (the checks below read many things at once)

    # -- during the run ----------------------------------------------------------------
    server_errors = [f"{what} {status} {body}" for what, status, body in h.responses if status >= 500]
    assert not server_errors, f"{len(server_errors)} 5xx answers (seed {SEED}), first: {server_errors[:5]}"
    assert not h.unexpected, f"unexpected answers (seed {SEED}): {h.unexpected[:10]}"
    assert len(snapshots) >= 5 and http_reads >= 5, (len(snapshots), http_reads)
    assert peak >= N_CLIENTS // 2, f"requests did not overlap (peak {peak} in flight)"
    bad = [s for s in snapshots if s != (total, s[1], N_MEMBERS) or s[1] < 0]
    assert not bad, f"a snapshot saw total != {total} or a member below zero: {bad[:5]}"
    # The workload must have exercised both outcomes, or it proves little.
    assert h.ok["transfer"] > 50 and h.rejected["transfer"] > 20, (h.ok, h.rejected)
    assert h.ok["hold"] > 5 and h.ok["post"] > 0 and h.ok["void"] > 0, (h.ok, h.rejected)
    assert h.ok["reversal"] > 0, (h.ok, h.rejected)

    # -- balances: each success applied exactly once, each rejection not at all ----------
    expected = dict(initial)
    for debit, credit, amount in h.applied:
        expected[debit] -= amount
        expected[credit] += amount
    assert sum(expected.values()) == total
    final = await asyncio.gather(*(c.get(f"/v1/accounts/{a}", headers=auth) for a in accounts))
    got = {a: r.json() for a, r in zip(accounts, final, strict=True)}
    mismatched = {
        a: {"posted": got[a]["posted"], "expected": expected[a], "pending": got[a]["pending"]}
        for a in accounts
        if got[a]["posted"] != expected[a] or got[a]["pending"] != 0 or got[a]["pending_credits"] != 0
    }
    assert not mismatched, f"balances differ from funding + successful operations: {mismatched}"
    assert all(got[a]["available"] >= 0 for a in accounts)
    assert sum(got[a]["posted"] for a in accounts) == total

    # -- every 201 transaction can be read back, with the status it must have ------------
    reads = await asyncio.gather(*(c.get(f"/v1/transactions/{tx_id}", headers=auth) for tx_id in h.created))
    missing = [
        (tx_id, what, want, r.status_code, r.text)
        for (tx_id, (what, want)), r in zip(h.created.items(), reads, strict=True)
        if r.status_code != 200
        or r.json()["id"] != tx_id
        or r.json()["status"] != want
        or r.json().get("resolved_by") != h.resolved_by.get(tx_id)
        or r.json().get("reversed_by") != h.reversed_by.get(tx_id)
    ]
    assert not missing, f"{len(missing)} answered-201 transactions not readable as expected: {missing[:5]}"

    # -- the database has exactly the successful transactions -----------------------------
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT kind, phase, count(*) AS n FROM transactions "
                    "WHERE community_id = :c GROUP BY kind, phase"
                ),
                {"c": tenant.id},
            )
        ).all()
        stored_keys = dict(
            (
                await conn.execute(
                    text("SELECT key, status_code FROM idempotency_keys WHERE community_id = :c"),
                    {"c": tenant.id},
                )
            ).all()
        )
    counts = {(r.kind, r.phase): r.n for r in rows}
    want_counts = {
        ("adjustment", "posted"): N_MEMBERS,
        ("transfer", "posted"): h.ok["transfer"],
        ("transfer", "pending"): h.ok["hold"],
        ("transfer", "post"): h.ok["post"],
        ("transfer", "void"): h.ok["void"],
        ("reversal", "posted"): h.ok["reversal"],
    }
    assert counts == {k: v for k, v in want_counts.items() if v}, (counts, want_counts)
    key_mismatch = {k: (s, stored_keys.get(k)) for k, s in h.keys.items() if stored_keys.get(k) != s}
    assert not key_mismatch, (
        f"stored idempotency results differ from what clients saw: {list(key_mismatch.items())[:5]}"
    )

    # -- the audit recomputes everything from the entries (the whole database) -------------
    report = await run_audit(engine)
    assert report.ok, report.as_dict()
    print(
        f"bank: seed {SEED}, ok {dict(h.ok)}, rejected {dict(h.rejected)}, peak in flight {peak}, "
        f"{len(snapshots)} snapshots, {http_reads} HTTP reads"
    )

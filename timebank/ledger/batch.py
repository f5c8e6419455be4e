"""Batches of transfers, TigerBeetle style: many transfers, one commit, one result each.

Each transfer of a batch is what ``POST /v1/transfers`` would be with the same body
and ``Idempotency-Key`` (the same key space and request fingerprint, so a transfer
retried alone after its batch replays, and the other way round). Each gets its own
result: created, replayed (its key was answered before, with the same request), or
rejected with its problem (recorded under its key, so a replay gives it again).

Transfers marked ``linked`` are chained to the next (TigerBeetle's linked events): a
chain succeeds or fails as a whole; when one of its transfers is refused, none of it
moves (a savepoint) and the others answer ``linked-chain-failed`` (not recorded, so a
retry may succeed once the cause is gone). A chain still open at the end of the batch
fails as a whole.

Every account of the batch is locked first, in id order (``queries.lock_accounts``),
so two batches never deadlock however their segments are ordered; the runs of
unlinked transfers and each chain are posted with ``ledger_post_batch`` (one round
trip each), and the batch commits once.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from timebank.core.access import Principal
from timebank.core.ids import uuid7
from timebank.core.problems import DomainError, Forbidden, IdempotencyConflict, NotFound, a, problem_body
from timebank.core.terms import Kind, Layer, Phase
from timebank.db import driver
from timebank.ledger import queries
from timebank.ledger.idempotency import check_key
from timebank.ledger.legs import Claim, Leg, Movement, legs_of
from timebank.ledger.movement import _rejection, _request
from timebank.ledger.posting import post_batch
from timebank.ledger.transactions import created_view
from timebank.ledger.transfers import CLIENT_KINDS, check_leg
from timebank.ledger.views import transaction_view

MAX_BATCH = 1000
CHAIN_FAILED = "linked-chain-failed"
BAD_KEY = "bad-key"


@dataclass(frozen=True, slots=True)
class BatchItem:
    key: str
    movements: Sequence[Movement]
    kind: Kind
    memo: str | None
    linked: bool
    fingerprint: bytes  # the request hash a single POST /v1/transfers of this body has


@dataclass(slots=True)
class Outcome:
    status: str = "pending"  # then created | replayed | rejected
    transaction: dict[str, Any] | None = None
    problem: dict[str, Any] | None = None
    replayed: bool = False
    code: str | None = None  # the ledger's result code, while posting
    legs: list[Leg] = field(default_factory=list)
    tx: dict[str, Any] | None = None


def chains(items: Sequence[BatchItem]) -> list[list[int]]:
    """The batch's segments in order: each chain (linked transfers and the one that
    closes them) on its own, and each unlinked transfer as a chain of one."""
    out: list[list[int]] = []
    current: list[int] = []
    for n, item in enumerate(items):
        current.append(n)
        if not item.linked:
            out.append(current)
            current = []
    if current:
        out.append(current)  # open at the end: fails as a whole
    return out


async def transfer_batch(
    engine: AsyncEngine, principal: Principal, items: Sequence[BatchItem], *, instance: str | None = None
) -> list[Outcome]:
    """Post the batch's transfers in one database transaction; one outcome per transfer."""
    assert 1 <= len(items) <= MAX_BATCH
    outcomes = [Outcome() for _ in items]
    async with engine.connect() as conn, conn.begin():
        await _prepare(conn, principal, items, outcomes, instance)
        # Keys answered before: their answer (or a conflict), and they post nothing.
        await _answer_replays(conn, principal, items, outcomes, instance, range(len(items)))
        segments = chains(items)
        open_chain = segments[-1] if items[-1].linked else None
        ids = {leg.account_id for o in outcomes if o.legs for leg in o.legs}
        await queries.lock_accounts(conn, ids)
        drv = await driver(conn)
        singles: list[int] = []
        for segment in segments:
            if len(segment) == 1 and segment is not open_chain:
                singles.append(segment[0])
                continue
            await _post(drv, principal, items, outcomes, singles, instance)
            singles = []
            await _post_chain(conn, drv, principal, items, outcomes, segment, segment is open_chain, instance)
        await _post(drv, principal, items, outcomes, singles, instance)
        # Keys a concurrent request answered while this batch waited for them.
        await _answer_replays(
            conn,
            principal,
            items,
            outcomes,
            instance,
            [n for n, o in enumerate(outcomes) if o.code == "replay"],
        )
        await _record_rejections(drv, principal, items, outcomes)
    assert all(o.status in ("created", "replayed", "rejected") for o in outcomes), (
        "a transfer without an answer"
    )
    return outcomes


async def _prepare(
    conn: AsyncConnection,
    principal: Principal,
    items: Sequence[BatchItem],
    outcomes: list[Outcome],
    instance: str | None,
) -> None:
    """Check each transfer as ``transfers.transfer`` would; a refused one gets its problem."""
    allowed = CLIENT_KINDS.get(principal.role, set())
    checked = [n for n, item in enumerate(items) if not principal.is_admin or item.kind is Kind.DONATION]
    wanted = {m.debit for n in checked for m in items[n].movements} | {
        m.credit for n in checked for m in items[n].movements
    }
    accounts = await queries.accounts_by_id(conn, principal.community_id, wanted) if wanted else {}
    for n, item in enumerate(items):
        try:
            check_key(item.key)
        except DomainError as err:  # no key to answer under: refused, nothing recorded
            outcomes[n].status, outcomes[n].problem, outcomes[n].code = (
                "rejected",
                err.to_problem(instance),
                BAD_KEY,
            )
            continue
        try:
            if item.kind not in allowed:
                raise _forbidden_kind(principal, item.kind)
            legs = legs_of(item.movements, Layer.POSTED)
            if n in checked or not principal.is_admin:
                for leg in legs:
                    if leg.account_id not in accounts:
                        raise NotFound(f"account {leg.account_id} not found", account_id=str(leg.account_id))
                    check_leg(principal, item.kind, leg, accounts[leg.account_id])
        except DomainError as err:
            outcomes[n].status, outcomes[n].problem = "rejected", err.to_problem(instance)
            outcomes[n].code = "refused"
            continue  # (its key may still have an earlier answer: looked up next)
        outcomes[n].legs = legs


def _forbidden_kind(principal: Principal, kind: Kind) -> DomainError:
    return Forbidden(f"{a(principal.role.value)} key may not make {kind.value} transactions")


def _tx(principal: Principal, item: BatchItem) -> dict[str, Any]:
    return {
        "id": uuid7(),
        "community_id": principal.community_id,
        "kind": item.kind.value,
        "phase": Phase.POSTED.value,
        "memo": item.memo,
        "pending_id": None,
        "reverses_id": None,
        "reason": None,
    }


async def _post(
    drv: Any,
    principal: Principal,
    items: Sequence[BatchItem],
    outcomes: list[Outcome],
    which: list[int],
    instance: str | None,
) -> None:
    """Post these transfers in one ``ledger_post_batch`` call; each result is its own."""
    to_post = [n for n in which if outcomes[n].legs and outcomes[n].code is None]
    if not to_post:
        return
    requests = []
    for n in to_post:
        outcomes[n].tx = _tx(principal, items[n])
        claim = Claim(items[n].key, items[n].fingerprint)
        requests.append(_request(outcomes[n].tx, principal.key_id, claim, None, outcomes[n].legs))
    rows = await post_batch(drv, requests)
    for n, row in zip(to_post, rows, strict=True):
        o = outcomes[n]
        o.code = row["code"]
        if o.code == "ok":
            assert o.tx is not None
            o.tx.update(timeout_at=None, created_at=row["created_at"], seq=row["seq"])
            o.status, o.transaction = "created", transaction_view(o.tx, o.legs)
        elif o.code != "replay":
            o.status, o.problem = "rejected", _rejection(o.code, row["detail"]).to_problem(instance)


async def _post_chain(
    conn: AsyncConnection,
    drv: Any,
    principal: Principal,
    items: Sequence[BatchItem],
    outcomes: list[Outcome],
    chain: list[int],
    still_open: bool,
    instance: str | None,
) -> None:
    """A chain moves whole or not at all (a savepoint around it)."""
    if still_open:
        _fail_chain(
            outcomes,
            chain,
            None,
            "the batch ends inside a chain: its last transfer must not be linked",
            instance,
        )
        return
    first_refused = next((n for n in chain if outcomes[n].status == "rejected"), None)
    if first_refused is None:
        savepoint = await conn.begin_nested()
        await _post(drv, principal, items, outcomes, chain, instance)
        raced = [n for n in chain if outcomes[n].code == "replay"]
        await _answer_replays(conn, principal, items, outcomes, instance, raced)
        first_refused = next((n for n in chain if outcomes[n].status == "rejected"), None)
        if first_refused is None:
            await savepoint.commit()
            return
        await savepoint.rollback()
    _fail_chain(
        outcomes,
        chain,
        first_refused,
        f"transfer {first_refused} of its chain was refused: none of the chain moved",
        instance,
    )


def _fail_chain(
    outcomes: list[Outcome], chain: list[int], cause: int | None, detail: str, instance: str | None
) -> None:
    for n in chain:
        o = outcomes[n]
        if n == cause:
            o.status, o.transaction = "rejected", None
            continue
        o.status, o.transaction, o.code = "rejected", None, CHAIN_FAILED
        o.problem = problem_body(
            CHAIN_FAILED, "A transfer linked to this one was refused", 422, detail, instance
        )


async def _answer_replays(
    conn: AsyncConnection,
    principal: Principal,
    items: Sequence[BatchItem],
    outcomes: list[Outcome],
    instance: str | None,
    which: Sequence[int],
) -> None:
    """Transfers whose key was answered before (or by a concurrent request): its answer,
    if the request is the same; an idempotency conflict if not."""
    which = [n for n in which if outcomes[n].code != BAD_KEY]
    if not which:
        return
    stored = await queries.stored_answers(conn, principal.community_id, [items[n].key for n in which])
    for n in which:
        o, answer = outcomes[n], stored.get(items[n].key)
        if answer is None:
            assert o.code != "replay", "a key the ledger found answered has an answer"
            continue
        if bytes(answer.request_hash) != items[n].fingerprint:
            o.status, o.transaction, o.code = "rejected", None, "conflict"
            o.problem = IdempotencyConflict(
                "this Idempotency-Key was already used with a different request; use a new key"
            ).to_problem(instance)
            continue
        o.replayed, o.code = True, "answered"
        if answer.transaction_id is not None:
            o.status, o.problem = "replayed", None
            o.transaction = await created_view(conn, principal.community_id, answer.transaction_id)
        else:
            o.status, o.problem = "rejected", answer.response


async def _record_rejections(
    drv: Any, principal: Principal, items: Sequence[BatchItem], outcomes: list[Outcome]
) -> None:
    """A refused transfer's problem is kept under its key, as for a single transfer."""
    for n, o in enumerate(outcomes):
        if (
            o.status != "rejected"
            or o.replayed
            or o.code in (CHAIN_FAILED, "conflict", BAD_KEY)
            or o.problem is None
        ):
            continue
        await drv.fetchval(
            queries.RECORD_ANSWER_SQL,
            principal.community_id,
            items[n].key,
            items[n].fingerprint,
            principal.key_id,
            o.problem["status"],
            json.dumps(o.problem, ensure_ascii=False),
        )

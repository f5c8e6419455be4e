"""HTTP routes of the ledger: transfers, transactions, accounts. HTTP only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, get, patch, post
from litestar.params import Parameter

from timebank import schemas, web
from timebank.core.access import READERS, access
from timebank.core.problems import BadRequest
from timebank.core.roles import Role
from timebank.core.terms import Asset, Kind, Phase
from timebank.ledger import service
from timebank.ledger.batch import BatchItem, transfer_batch
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.schemas import problems

IDEMPOTENCY_KEY = Parameter(
    header="Idempotency-Key",
    required=False,
    **schemas.IDEMPOTENCY_KEY_LIMITS,
    description="Required. A unique key per intended write (e.g. a UUID); a retry with the same key "
    "and body returns the first response, with another body a 409.",
)
AssetName = Literal["HOUR", "POINT"]
MOVERS = (Role.ADMIN, Role.RESIDENT, Role.MERCHANT, Role.RECORDER)


class LegIn(msgspec.Struct, forbid_unknown_fields=True):
    debit: uuid.UUID
    credit: uuid.UUID
    asset: AssetName
    amount: schemas.Amount


class PendingIn(msgspec.Struct, forbid_unknown_fields=True):
    timeout_seconds: schemas.HoldSeconds


class TransferIn(msgspec.Struct, forbid_unknown_fields=True):
    """Either from_account/to_account/asset/amount, or legs (all-or-nothing)."""

    from_account: uuid.UUID | None = None
    to_account: uuid.UUID | None = None
    asset: AssetName | None = None
    amount: schemas.Amount | None = None
    legs: Annotated[list[LegIn], schemas.LEGS] | None = None
    memo: schemas.Memo | None = None
    kind: Literal["transfer", "donation", "adjustment"] = "transfer"
    pending: PendingIn | None = None

    def movements(self) -> list[service.Movement]:
        single = (self.from_account, self.to_account, self.asset, self.amount)
        if self.legs is not None:
            if any(v is not None for v in single):
                raise BadRequest("send either legs or from_account/to_account/asset/amount, not both")
            return [
                service.Movement(leg.debit, leg.credit, Asset(leg.asset), leg.amount) for leg in self.legs
            ]
        if any(v is None for v in single):
            raise BadRequest("from_account, to_account, asset and amount are required (or legs)")
        return [service.Movement(self.from_account, self.to_account, Asset(self.asset), self.amount)]  # type: ignore[arg-type]


class BatchTransferIn(msgspec.Struct, forbid_unknown_fields=True):
    """One transfer of a batch: a single-leg transfer's body, its own key, and whether it
    is linked to the next (a chain moves whole or not at all)."""

    idempotency_key: schemas.IdempotencyKeyField
    from_account: uuid.UUID
    to_account: uuid.UUID
    asset: AssetName
    amount: schemas.Amount
    memo: schemas.Memo | None = None
    kind: Literal["transfer", "donation", "adjustment"] = "transfer"
    linked: bool = False

    def body(self) -> dict[str, Any]:
        """What POST /v1/transfers would receive: the same fingerprint, the same key space."""
        return {
            "from_account": self.from_account,
            "to_account": self.to_account,
            "asset": self.asset,
            "amount": self.amount,
            "legs": None,
            "memo": self.memo,
            "kind": self.kind,
            "pending": None,
        }


class BatchIn(msgspec.Struct, forbid_unknown_fields=True):
    transfers: Annotated[list[BatchTransferIn], msgspec.Meta(min_length=1, max_length=schemas.MAX_BATCH)]


class ReverseIn(msgspec.Struct, forbid_unknown_fields=True):
    reason: schemas.Reason


class CreditLimitIn(msgspec.Struct, forbid_unknown_fields=True):
    credit_limit: schemas.CreditLimit


class TransactionController(Controller):
    path = "/v1"
    tags = ["ledger"]

    @post(
        "/transfers",
        opt=access(*MOVERS),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Move value (single or multi-leg, optionally pending)",
    )
    async def create_transfer(
        self, request: Request, data: TransferIn, idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY]
    ) -> Response[schemas.Transaction]:
        who = web.principal(request)
        data = await web.strict_body(request, TransferIn)
        movements = data.movements()
        cfg = web.settings(request)

        async def action(conn: Any, claim: service.Claim) -> dict[str, Any]:
            return await service.transfer(
                conn,
                who,
                movements,
                kind=Kind(data.kind),
                memo=data.memo,
                timeout_seconds=None if data.pending is None else data.pending.timeout_seconds,
                claim=claim,
                hold_max_timeout_seconds=cfg.hold_max_timeout_seconds,
            )

        fingerprint = request_hash(who, "POST", request.url.path, msgspec.to_builtins(data))
        return web.transaction_response(
            request,
            await run_idempotent(
                web.engine(request),
                who,
                idempotency_key,
                fingerprint,
                action,
                instance=request.url.path,
                pooled=service.reads_accounts(who, Kind(data.kind)),
            ),
        )

    @post(
        "/transfers/batch",
        opt=access(*MOVERS),
        status_code=200,
        request_max_body_size=schemas.BATCH_BODY_MAX,
        responses=problems(413),
        summary=f"Up to {schemas.MAX_BATCH} transfers in one request and one commit, each with its own key and result",
        description="Each transfer is what `POST /v1/transfers` would be with its body and key (the same "
        "key space: a retry alone replays). Results are per transfer: `created`, `replayed`, or "
        "`rejected` with its problem. `linked: true` chains a transfer to the next: a chain moves whole "
        f"or not at all (the others answer `linked-chain-failed`). At most {schemas.MAX_BATCH} transfers "
        f"and {schemas.BATCH_BODY_MAX // 1024} KiB.",
    )
    async def create_batch(self, request: Request, data: BatchIn) -> Response[schemas.BatchAnswer]:
        who = web.principal(request)
        data = await web.strict_body(request, BatchIn)
        items = [
            BatchItem(
                key=t.idempotency_key,
                movements=[service.Movement(t.from_account, t.to_account, Asset(t.asset), t.amount)],
                kind=Kind(t.kind),
                memo=t.memo,
                linked=t.linked,
                fingerprint=request_hash(who, "POST", "/v1/transfers", msgspec.to_builtins(t.body())),
            )
            for t in data.transfers
        ]
        outcomes = await transfer_batch(web.engine(request), who, items, instance=request.url.path)
        results = []
        counts = {"created": 0, "replayed": 0, "rejected": 0}
        for n, (t, o) in enumerate(zip(data.transfers, outcomes, strict=True)):
            counts[o.status] += 1
            result: dict[str, Any] = {
                "index": n,
                "idempotency_key": t.idempotency_key,
                "status": o.status,
                "replayed": o.replayed,
            }
            if o.transaction is not None:
                result["transaction"] = web.stamp(request, o.transaction)
            else:
                result["problem"] = o.problem
            results.append(result)
        return web.json_response({**counts, "results": results})

    @get(
        "/transactions/{tx_id:uuid}",
        opt=access(*READERS, Role.DISTRICT_ADMIN),
        responses=problems(404),
        summary="A transaction with its entries and status",
    )
    async def get_transaction(self, request: Request, tx_id: uuid.UUID) -> Response[schemas.Transaction]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await service.get_transaction(conn, web.principal(request), tx_id))

    async def _resolve(
        self, request: Request, tx_id: uuid.UUID, action: Phase, key: str | None
    ) -> Response[Any]:
        who = web.principal(request)

        async def run(conn: Any, claim: service.Claim) -> dict[str, Any]:
            return await service.resolve_hold(conn, who, tx_id, action, claim=claim)

        fingerprint = request_hash(who, "POST", request.url.path, None)
        return web.transaction_response(
            request,
            await run_idempotent(web.engine(request), who, key, fingerprint, run, instance=request.url.path),
        )

    @post(
        "/transactions/{tx_id:uuid}/post",
        opt=access(*MOVERS),
        status_code=201,
        responses=problems(404, 409, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Post a pending hold",
    )
    async def post_hold(
        self, request: Request, tx_id: uuid.UUID, idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY]
    ) -> Response[schemas.Transaction]:
        return await self._resolve(request, tx_id, Phase.POST, idempotency_key)

    @post(
        "/transactions/{tx_id:uuid}/void",
        opt=access(*MOVERS),
        status_code=201,
        responses=problems(404, 409, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Void a pending hold",
    )
    async def void_hold(
        self, request: Request, tx_id: uuid.UUID, idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY]
    ) -> Response[schemas.Transaction]:
        return await self._resolve(request, tx_id, Phase.VOID, idempotency_key)

    @post(
        "/transactions/{tx_id:uuid}/reverse",
        opt=access(Role.ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Reverse a posted transaction (a new transaction that mirrors it)",
    )
    async def reverse(
        self,
        request: Request,
        tx_id: uuid.UUID,
        data: ReverseIn,
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY],
    ) -> Response[schemas.Transaction]:
        who = web.principal(request)

        async def run(conn: Any, claim: service.Claim) -> dict[str, Any]:
            return await service.reverse(conn, who, tx_id, data.reason, claim=claim)

        fingerprint = request_hash(who, "POST", request.url.path, msgspec.to_builtins(data))
        return web.transaction_response(
            request,
            await run_idempotent(
                web.engine(request), who, idempotency_key, fingerprint, run, instance=request.url.path
            ),
        )


class AccountController(Controller):
    path = "/v1/accounts"
    tags = ["ledger"]

    @get(
        "/{account_id:uuid}",
        opt=access(*READERS),
        responses=problems(404),
        summary="An account and its balances",
    )
    async def get_account(self, request: Request, account_id: uuid.UUID) -> Response[schemas.Account]:
        async with web.engine(request).connect() as conn:
            account = await service.get_account(conn, web.principal(request), account_id)
        return web.json_response(service.account_view(account))

    @patch(
        "/{account_id:uuid}",
        opt=access(Role.ADMIN),
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413, 422),
        summary="Set an account's credit limit",
    )
    async def set_credit_limit(
        self, request: Request, account_id: uuid.UUID, data: CreditLimitIn
    ) -> Response[schemas.Account]:
        data = await web.strict_body(request, CreditLimitIn)
        async with web.engine(request).begin() as conn:
            account = await service.set_credit_limit(
                conn, web.principal(request), account_id, data.credit_limit
            )
        return web.json_response(service.account_view(account))

    @get(
        "/{account_id:uuid}/entries",
        opt=access(*READERS),
        responses=problems(404),
        summary="An account's entries, oldest first",
    )
    async def entries(
        self,
        request: Request,
        account_id: uuid.UUID,
        cursor: schemas.IntCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.EntryPage]:
        n = web.page_limit(request, limit)
        after = web.int_cursor(cursor)
        async with web.engine(request).connect() as conn:
            await service.get_account(conn, web.principal(request), account_id)
            items, next_cursor = await service.entries_page(conn, account_id, after, n)
        return web.json_response({"items": items, "next_cursor": next_cursor})

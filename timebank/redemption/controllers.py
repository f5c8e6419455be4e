"""HTTP routes of rewards, redemptions and merchant statements. HTTP only."""

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
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.redemption import redemption_views, redemptions, rewards, statements
from timebank.schemas import problems

REQUIRED_KEY = Parameter(
    header="Idempotency-Key",
    required=False,
    **schemas.IDEMPOTENCY_KEY_LIMITS,
    description="Required. A unique key per redemption (e.g. a UUID); a retry with the same "
    "key and body returns the first answer.",
)
OPTIONAL_KEY = Parameter(
    header="Idempotency-Key",
    required=False,
    **schemas.IDEMPOTENCY_KEY_LIMITS,
    description="Optional: a redemption is confirmed or cancelled once. Without it, a retry "
    "by the same API key answers the first answer again.",
)


class RedeemIn(msgspec.Struct, forbid_unknown_fields=True):
    reward_id: uuid.UUID
    member_id: uuid.UUID
    member_token: schemas.Token | None = None


class ConfirmIn(msgspec.Struct, forbid_unknown_fields=True):
    code: schemas.Code | None = None
    qr: schemas.Token | None = None


class RewardController(Controller):
    path = "/v1/rewards"
    tags = ["rewards"]

    @post(
        "/",
        opt=access(Role.ADMIN, Role.MERCHANT),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413),
        summary="Publish a reward (a merchant for itself, or an admin for a merchant)",
    )
    async def create(self, request: Request, data: rewards.RewardIn) -> Response[schemas.Reward]:
        data = await web.strict_body(request, rewards.RewardIn)
        async with web.engine(request).begin() as conn:
            return web.json_response(await rewards.create_reward(conn, web.principal(request), data), 201)

    @get(
        "/",
        opt=access(*READERS),
        responses=problems(404),
        summary="Rewards, oldest first (for a resident: whether they may redeem each now, and why not)",
        description="`community_id`: another community of this community's district, whose rewards "
        "(with their merchants' names) are public there; a resident sees what each costs in their "
        "own points at the district's rate (`eligibility.pay_points`) and redeems it with "
        "`POST /v1/redemptions` like a reward of their own community.",
    )
    async def list_(
        self,
        request: Request,
        community_id: uuid.UUID | None = None,
        merchant_id: uuid.UUID | None = None,
        active: bool | None = True,
        cursor: schemas.UuidCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.RewardPage]:
        n = web.page_limit(request, limit)
        async with web.engine(request).connect() as conn:
            items, nxt = await rewards.list_rewards(
                conn,
                web.principal(request),
                merchant_id=merchant_id,
                active=active,
                cursor=web.uuid_cursor(cursor),
                limit=n,
                community_id=community_id,
            )
        return web.json_response({"items": items, "next_cursor": nxt})

    @get(
        "/{reward_id:uuid}",
        opt=access(*READERS),
        responses=problems(404),
        summary="A reward (of this community, or of another community of its district)",
    )
    async def get_one(self, request: Request, reward_id: uuid.UUID) -> Response[schemas.Reward]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await rewards.get_reward(conn, web.principal(request), reward_id))

    @patch(
        "/{reward_id:uuid}",
        opt=access(Role.ADMIN, Role.MERCHANT),
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413),
        summary="Change a reward (absent fields stay; null clears stock, limit, validity)",
    )
    async def update(
        self, request: Request, reward_id: uuid.UUID, data: rewards.RewardPatch
    ) -> Response[schemas.Reward]:
        data = await web.strict_body(request, rewards.RewardPatch)
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await rewards.update_reward(conn, web.principal(request), reward_id, data)
            )

    @post(
        "/{reward_id:uuid}/deactivate",
        opt=access(Role.ADMIN, Role.MERCHANT),
        status_code=200,
        responses=problems(404),
        summary="Stop offering a reward (open vouchers stay valid)",
    )
    async def deactivate(self, request: Request, reward_id: uuid.UUID) -> Response[schemas.Reward]:
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await rewards.update_reward(conn, web.principal(request), reward_id, None, deactivate=True)
            )


async def _step(request: Request, key: str | None, body: Any, action: Any) -> Response[Any]:
    """A redemption step: idempotent, answered with the redemption and its signed transaction."""
    who = web.principal(request)
    signer = request.app.state.signer

    async def render(conn: Any, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
        return await redemption_views.redemption_answer(conn, community_id, tx_id, signer)

    result = await run_idempotent(
        web.engine(request),
        who,
        key,
        request_hash(who, "POST", request.url.path, body),
        action,
        instance=request.url.path,
        render=render,
    )
    return web.signed_transaction_response(request, result)


class RedemptionController(Controller):
    path = "/v1/redemptions"
    tags = ["rewards"]

    @post(
        "/",
        opt=access(Role.RESIDENT, Role.MERCHANT),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Redeem a reward: every rule checked, the member's price held, a voucher (code and QR) issued",
        description="The reward may be another community's of the district (通存通兑): the member pays "
        "in their own points at the district's rate (the least whole number whose worth, rounded "
        "down, covers the price; the merchant receives that worth), held in their own ledger "
        "until the merchant confirms, which posts the crossing.",
    )
    async def redeem(
        self, request: Request, data: RedeemIn, idempotency_key: Annotated[str | None, REQUIRED_KEY]
    ) -> Response[schemas.Redemption]:
        data = await web.strict_body(request, RedeemIn)
        who, signer = web.principal(request), request.app.state.signer

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await redemptions.redeem(
                conn, who, data.reward_id, data.member_id, token=data.member_token, signer=signer, claim=claim
            )

        return await _step(request, idempotency_key, msgspec.to_builtins(data), action)

    @get(
        "/",
        opt=access(Role.MERCHANT),
        responses=problems(404),
        summary="The counter: this merchant's open voucher with a code",
    )
    async def by_code(self, request: Request, code: schemas.CodeQuery) -> Response[schemas.Redemption]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await redemption_views.find_by_code(conn, web.principal(request), code))

    @get("/{redemption_id:uuid}", opt=access(*READERS), responses=problems(404), summary="A redemption")
    async def get_one(self, request: Request, redemption_id: uuid.UUID) -> Response[schemas.Redemption]:
        async with web.engine(request).connect() as conn:
            return web.json_response(
                await redemption_views.get_redemption(conn, web.principal(request), redemption_id)
            )

    @post(
        "/{redemption_id:uuid}/confirm",
        opt=access(Role.MERCHANT),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        summary="The merchant confirms with the voucher's code (or its QR): the points are theirs",
    )
    async def confirm(
        self,
        request: Request,
        redemption_id: uuid.UUID,
        data: ConfirmIn,
        idempotency_key: Annotated[str | None, OPTIONAL_KEY],
    ) -> Response[schemas.Redemption]:
        data = await web.strict_body(request, ConfirmIn)
        if (data.code is None) == (data.qr is None):
            raise BadRequest("send the voucher's code or its qr")
        who, signer = web.principal(request), request.app.state.signer

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await redemptions.confirm(
                conn, who, redemption_id, code=data.code, qr=data.qr, signer=signer, claim=claim
            )

        # Without a key, one per body: a mistyped code's rejection must not stand for the right code.
        body = msgspec.to_builtins(data)
        key = (
            idempotency_key
            or f"{request.url.path}#{who.key_id}#{request_hash(who, 'POST', '', body).hex()[:32]}"
        )
        return await _step(request, key, body, action)

    @post(
        "/{redemption_id:uuid}/cancel",
        opt=access(Role.RESIDENT, Role.MERCHANT, Role.ADMIN),
        status_code=201,
        responses=problems(404, 409),
        summary="Cancel a held redemption (the points and stock come back)",
    )
    async def cancel(
        self,
        request: Request,
        redemption_id: uuid.UUID,
        idempotency_key: Annotated[str | None, OPTIONAL_KEY],
    ) -> Response[schemas.Redemption]:
        who, signer = web.principal(request), request.app.state.signer

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await redemptions.cancel(conn, who, redemption_id, signer=signer, claim=claim)

        key = idempotency_key or f"{request.url.path}#{who.key_id}"
        return await _step(request, key, None, action)


class MemberRedemptionController(Controller):
    path = "/v1/members"
    tags = ["rewards"]

    @get(
        "/{member_id:uuid}/redemptions",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.RESIDENT),
        responses=problems(404),
        summary="A member's redemptions, newest first",
    )
    async def redemptions(
        self,
        request: Request,
        member_id: uuid.UUID,
        cursor: schemas.UuidCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.RedemptionPage]:
        n = web.page_limit(request, limit)
        async with web.engine(request).connect() as conn:
            items, nxt = await redemption_views.member_redemptions(
                conn, web.principal(request), member_id, web.uuid_cursor(cursor), n
            )
        return web.json_response({"items": items, "next_cursor": nxt})

    @post(
        "/{member_id:uuid}/redemption-token",
        opt=access(Role.RESIDENT),
        status_code=201,
        responses=problems(404),
        summary="The resident's one-time QR token: lets a merchant redeem on their behalf at the counter",
    )
    async def token(self, request: Request, member_id: uuid.UUID) -> Response[schemas.MemberToken]:
        async with web.engine(request).connect() as conn:
            body = await redemption_views.member_token(
                conn, web.principal(request), member_id, request.app.state.signer
            )
        return web.json_response(body, 201)


class StatementController(Controller):
    path = "/v1/merchants"
    tags = ["rewards"]

    @get(
        "/{merchant_id:uuid}/statement",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.MERCHANT),
        responses=problems(404),
        operation_class=schemas.documented(answers={"text/csv": schemas.TEXT}),
        summary="A merchant's confirmed redemptions and points received, with totals (JSON, or CSV)",
        description="`from` and `to` are dates in the community's time zone, both included. "
        "`format=csv` (or `Accept: text/csv`) answers CSV, UTF-8 with BOM, a totals row last.",
    )
    async def statement(
        self,
        request: Request,
        merchant_id: uuid.UUID,
        first: schemas.DateFrom,
        last: schemas.DateTo,
        format: Literal["json", "csv"] | None = None,
    ) -> Response[schemas.Statement]:
        async with web.engine(request).connect() as conn:
            body = await statements.statement(conn, web.principal(request), merchant_id, first, last)
        if format == "csv" or (format is None and "text/csv" in request.headers.get("accept", "")):
            name = f"statement-{merchant_id}-{first}-{last}.csv"
            return Response(
                content=statements.statement_csv(body),
                media_type="text/csv",  # Litestar adds "; charset=utf-8" to a text type
                headers={"Content-Disposition": f'attachment; filename="{name}"'},
            )
        if format not in (None, "json"):
            raise BadRequest("format is json or csv")
        return web.json_response(body)

"""HTTP routes of family links (``/v1/family-links``): linking, gifts, grants and acting
for a relative. HTTP only: the rules are ``timebank.families.service``'s."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put

from timebank import schemas, web
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.core.terms import Asset
from timebank.families import service, shapes
from timebank.ledger.controllers import IDEMPOTENCY_KEY
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.schemas import problems

RESIDENT = access(Role.RESIDENT)
READERS = access(Role.ADMIN, Role.AUDITOR, Role.RESIDENT)


async def _once(
    request: Request, principal: Any, key: str | None, body: Any, action: Any, render: Any
) -> Response[Any]:
    status, answer, replayed = await run_idempotent(
        web.engine(request),
        principal,
        key,
        request_hash(principal, "POST", request.url.path, body),
        action,
        instance=request.url.path,
        render=render,
    )
    return web.idempotent_response(status, answer, replayed)


class FamilyLinkController(Controller):
    path = "/v1/family-links"
    tags = ["family links"]

    @post(
        "/",
        opt=RESIDENT,
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="Offer a family link: a one-time family code (亲情码) for the relative, shown once, valid 7 days",
    )
    async def offer(self, request: Request, data: shapes.OfferIn) -> Response[shapes.FamilyLink]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.offer(conn, web.principal(request), data.relation), 201)

    @post(
        "/accept",
        opt=RESIDENT,
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        summary="The relative's consent: the family code they were given (then the staff confirm)",
    )
    async def accept(self, request: Request, data: shapes.AcceptIn) -> Response[shapes.FamilyLink]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.accept(conn, web.principal(request), data.code))

    @get(
        "/",
        opt=READERS,
        responses=problems(),
        summary="A resident's family links and offers; the staff's: their members' links a relative answered",
    )
    async def list_(
        self, request: Request, status: shapes.LinkStatus | None = None
    ) -> Response[shapes.FamilyLinkList]:
        async with web.engine(request).connect() as conn:
            items = await service.list_links(conn, web.principal(request), status)
        return web.json_response({"items": items})

    @get("/{link_id:uuid}", opt=READERS, responses=problems(404), summary="A family link")
    async def get_one(self, request: Request, link_id: uuid.UUID) -> Response[shapes.FamilyLink]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await service.get_link(conn, web.principal(request), link_id))

    @post(
        "/{link_id:uuid}/confirm",
        opt=access(Role.ADMIN),
        status_code=200,
        responses=problems(404, 409),
        summary="The staff of either member's community confirm a link both members agreed to: it is live",
    )
    async def confirm(self, request: Request, link_id: uuid.UUID) -> Response[shapes.FamilyLink]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.confirm(conn, web.principal(request), link_id))

    @post(
        "/{link_id:uuid}/end",
        opt=access(Role.ADMIN, Role.RESIDENT),
        status_code=200,
        responses=problems(404, 409),
        summary="End a family link or withdraw an offer (either member, or the staff); its grants end",
    )
    async def end(self, request: Request, link_id: uuid.UUID) -> Response[shapes.FamilyLink]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.end(conn, web.principal(request), link_id))

    @put(
        "/{link_id:uuid}/grants",
        opt=RESIDENT,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="What the member lets the relative do for them (view, redeem, give); left out is revoked",
    )
    async def grants(
        self, request: Request, link_id: uuid.UUID, data: shapes.GrantsIn
    ) -> Response[shapes.FamilyLink]:
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await service.set_grants(conn, web.principal(request), link_id, list(data.actions))
            )

    @post(
        "/{link_id:uuid}/gifts",
        opt=RESIDENT,
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Give hours or points to the linked relative (across communities through the district)",
    )
    async def gift(
        self,
        request: Request,
        link_id: uuid.UUID,
        data: shapes.GiftIn,
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY],
    ) -> Response[shapes.FamilyGift]:
        who = web.principal(request)
        data = await web.strict_body(request, shapes.GiftIn)

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await service.give(conn, who, link_id, Asset(data.asset), data.amount, data.memo, claim)

        async def render(conn: Any, _community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await service.gift_answer(conn, who, link_id, tx_id)

        return await _once(request, who, idempotency_key, msgspec.to_builtins(data), action, render)

    @get(
        "/{link_id:uuid}/relative",
        opt=RESIDENT,
        responses=problems(404, 409),
        summary="The relative's balances and star level (needs their 'view' grant; the look is recorded)",
    )
    async def relative(self, request: Request, link_id: uuid.UUID) -> Response[shapes.RelativeView]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.view_relative(conn, web.principal(request), link_id))

    async def _acting(self, request: Request, link_id: uuid.UUID, action: str) -> service.Acting:
        """Refused before anything is keyed when the grant is missing (checked again under the lock)."""
        async with web.engine(request).connect() as conn:
            return await service.acting(conn, web.principal(request), link_id, action)

    @post(
        "/{link_id:uuid}/act/give",
        opt=RESIDENT,
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Give from the relative's account for them (needs their 'give' grant; recorded)",
    )
    async def act_give(
        self,
        request: Request,
        link_id: uuid.UUID,
        data: shapes.ActGiveIn,
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY],
    ) -> Response[shapes.ActedGive]:
        who = web.principal(request)
        data = await web.strict_body(request, shapes.ActGiveIn)
        act = await self._acting(request, link_id, "give")
        to = None if data.to is None else (data.to.community_id, data.to.party_id)

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await service.give_for(
                conn, who, link_id, Asset(data.asset), data.amount, data.memo, to, claim
            )

        async def render(conn: Any, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await service.acted_answer(conn, act.relative, community_id, tx_id, None)

        # keyed in the relative's ledger, where the value moves from
        return await _once(request, act.principal, idempotency_key, msgspec.to_builtins(data), action, render)

    @post(
        "/{link_id:uuid}/act/redeem",
        opt=RESIDENT,
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Redeem a reward for the relative with their points (needs their 'redeem' grant; recorded)",
    )
    async def act_redeem(
        self,
        request: Request,
        link_id: uuid.UUID,
        data: shapes.ActRedeemIn,
        idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY],
    ) -> Response[shapes.ActedRedeem]:
        who, signer = web.principal(request), request.app.state.signer
        data = await web.strict_body(request, shapes.ActRedeemIn)
        act = await self._acting(request, link_id, "redeem")

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await service.redeem_for(conn, who, link_id, data.reward_id, signer=signer, claim=claim)

        async def render(conn: Any, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
            return await service.acted_answer(conn, act.relative, community_id, tx_id, signer)

        return await _once(request, act.principal, idempotency_key, msgspec.to_builtins(data), action, render)

    @get(
        "/{link_id:uuid}/actions",
        opt=READERS,
        responses=problems(404),
        summary="What was done for whom under the link, and by whom, newest first",
    )
    async def actions(
        self,
        request: Request,
        link_id: uuid.UUID,
        cursor: schemas.IntCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[shapes.ProxyActionPage]:
        async with web.engine(request).connect() as conn:
            items, nxt = await service.actions_page(
                conn, web.principal(request), link_id, web.int_cursor(cursor), web.page_limit(request, limit)
            )
        return web.json_response({"items": items, "next_cursor": nxt})

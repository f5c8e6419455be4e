"""HTTP routes of districts (``/v1/district``), a community's side (``/v1/community/district``)
and crossings (``/v1/crossings``). HTTP only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, get, post, put

from timebank import schemas, web
from timebank.core.access import READERS, access
from timebank.core.problems import NotFound
from timebank.core.roles import Role
from timebank.core.terms import Asset
from timebank.districts import crossing, service, settlement
from timebank.districts import queries as district_queries
from timebank.districts.crossing import CrossingRequest
from timebank.ledger.controllers import IDEMPOTENCY_KEY
from timebank.ledger.idempotency import request_hash, run_idempotent
from timebank.schemas import districts as shapes
from timebank.schemas import problems
from timebank.schemas.reports import PeriodFrom, PeriodTo

DISTRICT_ADMIN = access(Role.DISTRICT_ADMIN)


class JoinIn(msgspec.Struct, forbid_unknown_fields=True):
    district_id: uuid.UUID


class InviteIn(msgspec.Struct, forbid_unknown_fields=True):
    community_id: uuid.UUID


class LimitsIn(msgspec.Struct, forbid_unknown_fields=True):
    HOUR: shapes.Limit | None = None
    POINT: shapes.Limit | None = None


class PointsValueIn(msgspec.Struct, forbid_unknown_fields=True):
    """How many of the community's points make one district point."""

    points_per_unit: shapes.RatePoints


class SettlementIn(msgspec.Struct, forbid_unknown_fields=True):
    """The period of the statement: days in the district's time zone, ``to`` not included."""

    from_: shapes.Day = msgspec.field(name="from")
    to: shapes.Day


class CrossingIn(msgspec.Struct, forbid_unknown_fields=True):
    """To an account (``to_account_id``: a member's, merchant's, organisation's, or the
    fund) or a party (``to_party_id``) of another community in the same district."""

    to_community_id: uuid.UUID
    asset: shapes.AssetName
    amount: schemas.Amount
    to_account_id: uuid.UUID | None = None
    to_party_id: uuid.UUID | None = None
    from_account_id: uuid.UUID | None = None
    memo: schemas.Memo | None = None

    def request(self) -> CrossingRequest:
        return CrossingRequest(
            to_community_id=self.to_community_id,
            asset=Asset(self.asset),
            amount=self.amount,
            from_account_id=self.from_account_id,
            to_account_id=self.to_account_id,
            to_party_id=self.to_party_id,
            memo=self.memo,
        )


class DistrictController(Controller):
    path = "/v1/district"
    tags = ["districts"]

    @get("/", opt=DISTRICT_ADMIN, responses=problems(), summary="The district: communities, limits, rates")
    async def get_district(self, request: Request) -> Response[shapes.District]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await service.district_view(conn, web.principal(request).community_id))

    @post(
        "/communities",
        opt=DISTRICT_ADMIN,
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="The district's consent to a community joining (it joins once its admin agreed too)",
    )
    async def invite(self, request: Request, data: InviteIn) -> Response[shapes.Membership]:
        who = web.principal(request)
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.consent(conn, who, who.community_id, data.community_id))

    @put(
        "/communities/{community_id:uuid}/limits",
        opt=DISTRICT_ADMIN,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413),
        summary="Set a community's limits (trust line) per asset: how far its position may go either way",
    )
    async def set_limits(
        self, request: Request, community_id: uuid.UUID, data: LimitsIn
    ) -> Response[shapes.Membership]:
        limits = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await service.set_limits(conn, web.principal(request), community_id, limits)
            )

    @put(
        "/communities/{community_id:uuid}/points-value",
        opt=DISTRICT_ADMIN,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413),
        summary="Set how many of a community's points make one district point (rates are the ratios)",
        description="Points cross from A to B at A's points_per_unit : B's (default 1:1). One value per "
        "community, so no cycle of crossings can gain points.",
    )
    async def set_points_value(
        self, request: Request, community_id: uuid.UUID, data: PointsValueIn
    ) -> Response[shapes.Membership]:
        async with web.engine(request).begin() as conn:
            view = await service.set_points_value(
                conn, web.principal(request), community_id, data.points_per_unit
            )
        return web.json_response(view)

    @get(
        "/positions", opt=DISTRICT_ADMIN, responses=problems(), summary="Every community's position per asset"
    )
    async def positions(self, request: Request) -> Response[shapes.Positions]:
        district_id = web.principal(request).community_id
        async with web.engine(request).connect() as conn:
            items = await service.positions(conn, district_id)
        return web.json_response({"district_id": str(district_id), "items": items})

    @get(
        "/crossings",
        opt=DISTRICT_ADMIN,
        responses=problems(),
        summary="Crossings by pair of communities and month, and each community's totals (no members)",
    )
    async def figures(
        self, request: Request, first: PeriodFrom, end: PeriodTo
    ) -> Response[shapes.CrossingFigures]:
        async with web.engine(request).connect() as conn:
            return web.json_response(
                await settlement.figures(conn, web.principal(request).community_id, first, end)
            )

    @post(
        "/settlements",
        opt=DISTRICT_ADMIN,
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(409, 413),
        summary="Propose a settlement of every position, with the period's statement (another admin approves)",
    )
    async def propose(self, request: Request, data: SettlementIn) -> Response[shapes.Settlement]:
        async with web.engine(request).begin() as conn:
            view = await settlement.propose(conn, web.principal(request), data.from_, data.to)
        return web.json_response(view, 201)

    @get(
        "/settlements",
        opt=DISTRICT_ADMIN,
        responses=problems(),
        summary="The district's settlements, newest first",
    )
    async def settlements(self, request: Request) -> Response[shapes.SettlementList]:
        async with web.engine(request).connect() as conn:
            return web.json_response({"items": await settlement.listing(conn, web.principal(request))})

    @get(
        "/settlements/{settlement_id:uuid}",
        opt=DISTRICT_ADMIN,
        responses=problems(404),
        summary="A settlement and its statement",
    )
    async def get_settlement(self, request: Request, settlement_id: uuid.UUID) -> Response[shapes.Settlement]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await settlement.get(conn, web.principal(request), settlement_id))

    @post(
        "/settlements/{settlement_id:uuid}/approve",
        opt=DISTRICT_ADMIN,
        status_code=200,
        responses=problems(404, 409),
        summary="Approve a settlement (not by whoever proposed it) and post it",
    )
    async def approve(self, request: Request, settlement_id: uuid.UUID) -> Response[shapes.Settlement]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await settlement.approve(conn, web.principal(request), settlement_id))

    @post(
        "/settlements/{settlement_id:uuid}/cancel",
        opt=DISTRICT_ADMIN,
        status_code=200,
        responses=problems(404, 409),
        summary="Cancel a settlement that was not approved",
    )
    async def cancel(self, request: Request, settlement_id: uuid.UUID) -> Response[shapes.Settlement]:
        async with web.engine(request).begin() as conn:
            return web.json_response(await settlement.cancel(conn, web.principal(request), settlement_id))


class CommunityDistrictController(Controller):
    path = "/v1/community/district"
    tags = ["districts"]

    @get("/", opt=access(*READERS), responses=problems(404), summary="This community's district, if any")
    async def get_district(self, request: Request) -> Response[shapes.CommunityDistrict]:
        async with web.engine(request).connect() as conn:
            view = await service.community_district(conn, web.principal(request).community_id)
        if view is None:
            raise NotFound("this community is not in a district")
        return web.json_response(view)

    @post(
        "/",
        opt=access(Role.ADMIN),
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="This community's consent to join a district (it joins once the district agreed too)",
    )
    async def join(self, request: Request, data: JoinIn) -> Response[shapes.Membership]:
        who = web.principal(request)
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.consent(conn, who, data.district_id, who.community_id))


async def render_crossing(conn: Any, community_id: uuid.UUID, transaction_id: uuid.UUID) -> dict[str, Any]:
    """A replay's answer: the crossing whose sending part is the key's transaction."""
    row = await district_queries.crossing_of_transaction(conn, transaction_id)
    assert row is not None and row.from_community_id == community_id
    return await crossing.view_with_memo(conn, row)


class CrossingController(Controller):
    path = "/v1/crossings"
    tags = ["districts"]

    @post(
        "/",
        opt=access(*crossing.SENDERS),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        operation_class=schemas.IDEMPOTENT,
        summary="Send hours or points to another community of the district (three linked transactions)",
    )
    async def create(
        self, request: Request, data: CrossingIn, idempotency_key: Annotated[str | None, IDEMPOTENCY_KEY]
    ) -> Response[shapes.Crossing]:
        who = web.principal(request)
        data = await web.strict_body(request, CrossingIn)
        wanted = data.request()

        async def action(conn: Any, claim: Any) -> dict[str, Any]:
            return await crossing.cross(conn, who, wanted, claim)

        fingerprint = request_hash(who, "POST", request.url.path, msgspec.to_builtins(data))
        status, body, replayed = await run_idempotent(
            web.engine(request),
            who,
            idempotency_key,
            fingerprint,
            action,
            instance=request.url.path,
            render=render_crossing,
        )
        return web.idempotent_response(status, body, replayed)

    @get(
        "/",
        opt=access(*READERS),
        responses=problems(),
        summary="This community's crossings in and out, newest first",
    )
    async def list_(
        self, request: Request, cursor: schemas.RecordCursor = None, limit: schemas.PageLimit = None
    ) -> Response[shapes.CrossingPage]:
        async with web.engine(request).connect() as conn:
            items, next_cursor = await crossing.crossings_page(
                conn, web.principal(request), cursor, web.page_limit(request, limit)
            )
        return web.json_response({"items": items, "next_cursor": next_cursor})

    @get(
        "/{crossing_id:uuid}",
        opt=access(*READERS, Role.DISTRICT_ADMIN),
        responses=problems(404),
        summary="A crossing",
    )
    async def get_one(self, request: Request, crossing_id: uuid.UUID) -> Response[shapes.Crossing]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await crossing.get_crossing(conn, web.principal(request), crossing_id))

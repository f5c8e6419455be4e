"""HTTP routes for the community, its members, organisations, merchants and API keys."""

from __future__ import annotations

import uuid
from typing import Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post

from timebank import schemas, web
from timebank.community import service
from timebank.core.access import READERS, access
from timebank.core.roles import PartyKind, Role
from timebank.ledger.views import balance_view
from timebank.schemas import problems


class MemberIn(msgspec.Struct, forbid_unknown_fields=True):
    display_name: schemas.Name
    external_ref: schemas.ExternalRef | None = None


class NamedPartyIn(msgspec.Struct, forbid_unknown_fields=True):
    name: schemas.Name
    external_ref: schemas.ExternalRef | None = None


class ApiKeyIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Role
    subject_id: uuid.UUID | None = None
    label: schemas.Label | None = None


class CommunityController(Controller):
    path = "/v1/community"
    tags = ["community"]

    @get(
        "/", opt=access(*READERS), responses=problems(), summary="The key's community and its system accounts"
    )
    async def get_community(self, request: Request) -> Response[schemas.Community]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await service.community_view(conn, web.principal(request).community_id))


async def _create_party(
    request: Request, kind: PartyKind, name: str, external_ref: str | None
) -> Response[Any]:
    async with web.engine(request).begin() as conn:
        view = await service.create_party(conn, web.principal(request).community_id, kind, name, external_ref)
    return web.json_response(view, 201)


async def _get_party(request: Request, kind: PartyKind, party_id: uuid.UUID) -> Response[Any]:
    async with web.engine(request).connect() as conn:
        party, accounts = await service.get_party(conn, web.principal(request), kind, party_id)
    return web.json_response(service.party_view(party, {a: str(acc.id) for a, acc in accounts.items()}))


async def _list_parties(
    request: Request, kind: PartyKind, cursor: str | None, limit: int | None
) -> Response[Any]:
    n = web.page_limit(request, limit)
    async with web.engine(request).connect() as conn:
        items, next_cursor = await service.list_parties(
            conn, web.principal(request), kind, web.uuid_cursor(cursor), n
        )
    return web.json_response({"items": items, "next_cursor": next_cursor})


class MemberController(Controller):
    path = "/v1/members"
    tags = ["members"]

    @post(
        "/",
        opt=access(Role.ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(409, 413),
        summary="Register a member (opens HOUR and POINT accounts)",
    )
    async def create(self, request: Request, data: MemberIn) -> Response[schemas.Party]:
        return await _create_party(request, PartyKind.MEMBER, data.display_name, data.external_ref)

    @get("/", opt=access(Role.ADMIN, Role.AUDITOR), responses=problems(), summary="List members")
    async def list_(
        self, request: Request, cursor: schemas.UuidCursor = None, limit: schemas.PageLimit = None
    ) -> Response[schemas.PartyPage]:
        return await _list_parties(request, PartyKind.MEMBER, cursor, limit)

    @get(
        "/{member_id:uuid}",
        opt=access(*READERS),
        responses=problems(404),
        summary="A member, with lifetime service and star level",
    )
    async def get_one(self, request: Request, member_id: uuid.UUID) -> Response[schemas.Party]:
        who = web.principal(request)
        async with web.engine(request).connect() as conn:
            party, accounts = await service.get_party(conn, who, PartyKind.MEMBER, member_id)
            view = service.party_view(party, {a: str(acc.id) for a, acc in accounts.items()})
            # The volunteer's standing comes from the volunteer package, wired in by the app
            # (app.state.member_standing): community sits below volunteer in the import order.
            view.update(await request.app.state.member_standing(conn, who.community_id, member_id))
        return web.json_response(view)

    @get(
        "/{member_id:uuid}/balances",
        opt=access(*READERS),
        responses=problems(404),
        summary="A member's balances per asset",
    )
    async def balances(
        self, request: Request, member_id: uuid.UUID
    ) -> Response[dict[str, schemas.MemberBalance]]:
        async with web.engine(request).connect() as conn:
            _, accounts = await service.get_party(conn, web.principal(request), PartyKind.MEMBER, member_id)
        return web.json_response(
            {asset: {"account_id": str(acc.id), **balance_view(acc)} for asset, acc in accounts.items()}
        )


class OrganisationController(Controller):
    path = "/v1/organisations"
    tags = ["organisations"]

    @post(
        "/",
        opt=access(Role.ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(409, 413),
        summary="Register a volunteer organisation",
    )
    async def create(self, request: Request, data: NamedPartyIn) -> Response[schemas.Party]:
        return await _create_party(request, PartyKind.ORGANISATION, data.name, data.external_ref)

    @get("/", opt=access(Role.ADMIN, Role.AUDITOR), responses=problems(), summary="List organisations")
    async def list_(
        self, request: Request, cursor: schemas.UuidCursor = None, limit: schemas.PageLimit = None
    ) -> Response[schemas.PartyPage]:
        return await _list_parties(request, PartyKind.ORGANISATION, cursor, limit)

    @get("/{party_id:uuid}", opt=access(*READERS), responses=problems(404), summary="An organisation")
    async def get_one(self, request: Request, party_id: uuid.UUID) -> Response[schemas.Party]:
        return await _get_party(request, PartyKind.ORGANISATION, party_id)


class MerchantController(Controller):
    path = "/v1/merchants"
    tags = ["merchants"]

    @post(
        "/",
        opt=access(Role.ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(409, 413),
        summary="Register a partner merchant",
    )
    async def create(self, request: Request, data: NamedPartyIn) -> Response[schemas.Party]:
        return await _create_party(request, PartyKind.MERCHANT, data.name, data.external_ref)

    @get("/", opt=access(*READERS), responses=problems(), summary="List partner merchants")
    async def list_(
        self, request: Request, cursor: schemas.UuidCursor = None, limit: schemas.PageLimit = None
    ) -> Response[schemas.PartyPage]:
        return await _list_parties(request, PartyKind.MERCHANT, cursor, limit)

    @get("/{party_id:uuid}", opt=access(*READERS), responses=problems(404), summary="A merchant")
    async def get_one(self, request: Request, party_id: uuid.UUID) -> Response[schemas.Party]:
        return await _get_party(request, PartyKind.MERCHANT, party_id)


class ApiKeyController(Controller):
    path = "/v1/api-keys"
    tags = ["api keys"]

    @post(
        "/",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413),
        summary="Issue an API key (the key is shown only here)",
    )
    async def create(self, request: Request, data: ApiKeyIn) -> Response[schemas.ApiKeyCreated]:
        async with web.engine(request).begin() as conn:
            view = await service.issue_key(
                conn, web.principal(request), data.role, data.subject_id, data.label
            )
        return web.json_response(view, 201)

    @get(
        "/",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN),
        responses=problems(),
        summary="List the community's (or district's) API keys (never the keys themselves)",
    )
    async def list_(self, request: Request) -> Response[schemas.ApiKeyList]:
        async with web.engine(request).connect() as conn:
            return web.json_response({"items": await service.list_keys(conn, web.principal(request))})

    @delete(
        "/{key_id:uuid}",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=204,
        responses=problems(404, 409),
        summary="Revoke an API key",
    )
    async def revoke(self, request: Request, key_id: uuid.UUID) -> None:
        async with web.engine(request).begin() as conn:
            await service.revoke_key(conn, web.principal(request), key_id)
        request.app.state.key_cache.forget(key_id)

"""HTTP routes of people who sign in (admins manage them; auditors read). HTTP only."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post

from timebank import schemas, web
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.people import accounts, links
from timebank.schemas import problems
from timebank.schemas.limits import _text

Login = _text(64, 3, description="a phone number or a user name")
Password = _text(128, 8)


class PersonIn(msgspec.Struct, forbid_unknown_fields=True):
    role: Role
    display_name: schemas.Name
    subject_id: uuid.UUID | None = None
    login: Login | None = None
    password: Password | None = None


class LinkIn(msgspec.Struct, forbid_unknown_fields=True):
    hours: (
        Annotated[
            int,
            msgspec.Meta(ge=1, le=links.MAX_HOURS, description="default 72 (TIMEBANK_SIGN_IN_LINK_HOURS)"),
        ]
        | None
    ) = None


def sign_in_url(request: Request, path: str) -> str:
    """The link as people open it: on the public address when one is set."""
    base = web.settings(request).public_url or str(request.base_url)
    return base.rstrip("/") + path


class PeopleController(Controller):
    path = "/v1/people"
    tags = ["people"]

    @post(
        "/",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="Add a person who signs in to the pages (with the role and scope of an API key)",
    )
    async def create(self, request: Request, data: PersonIn) -> Response[schemas.Person]:
        async with web.engine(request).begin() as conn:
            view = await accounts.create_person(
                conn,
                web.principal(request),
                role=data.role.value,
                subject_id=data.subject_id,
                display_name=data.display_name,
                login=data.login,
                password=data.password,
            )
        return web.json_response(view, 201)

    @get(
        "/",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN),
        responses=problems(),
        summary="The community's people",
    )
    async def list_(self, request: Request) -> Response[schemas.PersonList]:
        async with web.engine(request).connect() as conn:
            return web.json_response({"items": await accounts.list_people(conn, web.principal(request))})

    @get(
        "/{person_id:uuid}",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN),
        responses=problems(404),
        summary="A person",
    )
    async def get_one(self, request: Request, person_id: uuid.UUID) -> Response[schemas.Person]:
        async with web.engine(request).connect() as conn:
            row = await accounts.get_person(conn, web.principal(request), person_id)
        return web.json_response(accounts.person_view(row))

    @post(
        "/{person_id:uuid}/disable",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=200,
        responses=problems(404),
        summary="Stop a person signing in (their sessions end at once)",
    )
    async def disable(self, request: Request, person_id: uuid.UUID) -> Response[schemas.Person]:
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await accounts.set_disabled(conn, web.principal(request), person_id, True)
            )

    @post(
        "/{person_id:uuid}/enable",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=200,
        responses=problems(404),
        summary="Let a disabled person sign in again",
    )
    async def enable(self, request: Request, person_id: uuid.UUID) -> Response[schemas.Person]:
        async with web.engine(request).begin() as conn:
            return web.json_response(
                await accounts.set_disabled(conn, web.principal(request), person_id, False)
            )

    @post(
        "/{person_id:uuid}/sign-in-links",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 413),
        summary="Issue a one-time sign-in link (single use, short-lived; the token is shown only here)",
    )
    async def issue_link(
        self, request: Request, person_id: uuid.UUID, data: LinkIn
    ) -> Response[schemas.SignInLinkCreated]:
        hours = data.hours if data.hours is not None else web.settings(request).sign_in_link_hours
        async with web.engine(request).begin() as conn:
            view: dict[str, Any] = await links.issue_link(conn, web.principal(request), person_id, hours)
        return web.json_response({**view, "url": sign_in_url(request, view["path"])}, 201)

    @get(
        "/{person_id:uuid}/sign-in-links",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN),
        responses=problems(404),
        summary="A person's latest sign-in links (never their tokens)",
    )
    async def list_links(self, request: Request, person_id: uuid.UUID) -> Response[schemas.SignInLinkList]:
        async with web.engine(request).connect() as conn:
            return web.json_response({"items": await links.links_of(conn, web.principal(request), person_id)})


class SignInLinkController(Controller):
    path = "/v1/sign-in-links"
    tags = ["people"]

    @delete(
        "/{link_id:uuid}",
        opt=access(Role.ADMIN, Role.DISTRICT_ADMIN),
        status_code=204,
        responses=problems(404),
        summary="Revoke an unused sign-in link",
    )
    async def revoke(self, request: Request, link_id: uuid.UUID) -> None:
        async with web.engine(request).begin() as conn:
            await links.revoke(conn, web.principal(request), link_id)

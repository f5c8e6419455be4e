"""HTTP routes of activities: publish, list, sign up, check in and out, attendance. HTTP only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post

from timebank import schemas, web
from timebank.activities import attendance, service, signups, tokens
from timebank.activities.queries import ActivityFilter
from timebank.core.access import READERS, access
from timebank.core.clock import SYSTEM_CLOCK, Clock
from timebank.core.roles import Role
from timebank.schemas import activities as shapes
from timebank.schemas import problems
from timebank.security import load_web_secret

ORGANISERS = (Role.ADMIN, Role.RECORDER)
ACTIVITY_READERS = (Role.ADMIN, Role.AUDITOR, Role.RECORDER, Role.RESIDENT)


class ActivityBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    title: schemas.Title
    category: schemas.CategoryName
    place: schemas.RequiredText
    starts_at: schemas.DateTime
    ends_at: schemas.DateTime
    capacity: shapes.Capacity
    description: schemas.Description | None = None
    lat: shapes.Latitude | None = None
    lon: shapes.Longitude | None = None
    radius_m: shapes.RadiusM | None = None
    signup_opens_at: schemas.DateTime | None = None
    signup_closes_at: schemas.DateTime | None = None
    min_star: shapes.MinStar | None = None
    organisation_id: uuid.UUID | None = None


class ActivityPatch(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """Fields to change; an absent field stays, ``null`` clears an optional one."""

    title: schemas.Title | msgspec.UnsetType = msgspec.UNSET
    category: schemas.CategoryName | msgspec.UnsetType = msgspec.UNSET
    place: schemas.RequiredText | msgspec.UnsetType = msgspec.UNSET
    starts_at: schemas.DateTime | msgspec.UnsetType = msgspec.UNSET
    ends_at: schemas.DateTime | msgspec.UnsetType = msgspec.UNSET
    capacity: shapes.Capacity | msgspec.UnsetType = msgspec.UNSET
    description: schemas.Description | msgspec.UnsetType | None = msgspec.UNSET
    lat: shapes.Latitude | msgspec.UnsetType | None = msgspec.UNSET
    lon: shapes.Longitude | msgspec.UnsetType | None = msgspec.UNSET
    radius_m: shapes.RadiusM | msgspec.UnsetType | None = msgspec.UNSET
    signup_opens_at: schemas.DateTime | msgspec.UnsetType | None = msgspec.UNSET
    signup_closes_at: schemas.DateTime | msgspec.UnsetType | None = msgspec.UNSET
    min_star: shapes.MinStar | msgspec.UnsetType | None = msgspec.UNSET


class CancelBody(msgspec.Struct, forbid_unknown_fields=True):
    reason: schemas.Reason


class SignupBody(msgspec.Struct, forbid_unknown_fields=True):
    member_id: uuid.UUID | None = None


class ScanBody(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    token: shapes.ScanToken | None = None
    code: shapes.ScanCode | None = None
    lat: shapes.Latitude | None = None
    lon: shapes.Longitude | None = None


class HandBody(msgspec.Struct, forbid_unknown_fields=True):
    at: schemas.DateTime | None = None


def _now(request: Request) -> datetime:
    """The clock of activities: the system's, or one a test puts in ``app.state.clock``."""
    clock: Clock = getattr(request.app.state, "clock", None) or SYSTEM_CLOCK
    return clock.now()


def _key(request: Request) -> bytes:
    return tokens.derive_key(load_web_secret(web.settings(request)))


async def _body(request: Request, struct: type[Any]) -> Any:
    """A body that may be empty (then every field takes its default)."""
    raw = await request.body()
    return struct() if not raw.strip() else await web.strict_body(request, struct)


class ActivityController(Controller):
    path = "/v1/activities"
    tags = ["activities"]

    @post(
        "/",
        opt=access(*ORGANISERS),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(413, 422),
        summary="Publish an activity (a recorder: its organisation's; an admin: an organisation's it names)",
    )
    async def create(self, request: Request, data: ActivityBody) -> Response[shapes.Activity]:
        data = await web.strict_body(request, ActivityBody)
        fields = msgspec.structs.asdict(data)
        given = service.ActivityIn(fields, fields.pop("organisation_id"))
        async with web.engine(request).begin() as conn:
            return web.json_response(await service.create(conn, web.principal(request), given), 201)

    @get(
        "/",
        opt=access(*ACTIVITY_READERS),
        responses=problems(),
        summary="Activities, soonest first (residents: the community's upcoming; recorders: their own)",
    )
    async def list_(
        self,
        request: Request,
        category: shapes.ActivityCategory = None,
        from_: shapes.StartsFrom = None,
        to: shapes.StartsBefore = None,
        cursor: shapes.ActivityCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[shapes.ActivityPage]:
        n = web.page_limit(request, limit)
        f = ActivityFilter(web.principal(request).community_id, category=category, since=from_, until=to)
        async with web.engine(request).connect() as conn:
            items, nxt = await service.listing(conn, web.principal(request), f, cursor, n, _now(request))
        return web.json_response({"items": items, "next_cursor": nxt})

    @get("/{activity_id:uuid}", opt=access(*ACTIVITY_READERS), responses=problems(404), summary="An activity")
    async def get_one(self, request: Request, activity_id: uuid.UUID) -> Response[shapes.Activity]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await service.show(conn, web.principal(request), activity_id))

    @patch(
        "/{activity_id:uuid}",
        opt=access(*ORGANISERS),
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        summary="Change an activity (absent fields stay); a larger capacity moves the waiting list up",
    )
    async def update(
        self, request: Request, activity_id: uuid.UUID, data: ActivityPatch
    ) -> Response[shapes.Activity]:
        data = await web.strict_body(request, ActivityPatch)
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not msgspec.UNSET}
        async with web.engine(request).begin() as conn:
            view = await service.change(conn, web.principal(request), activity_id, changes, _now(request))
        return web.json_response(view)

    @post(
        "/{activity_id:uuid}/cancel",
        opt=access(*ORGANISERS),
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="Cancel an activity, with a reason (everyone signed up or waiting is notified)",
    )
    async def cancel(
        self, request: Request, activity_id: uuid.UUID, data: CancelBody
    ) -> Response[shapes.Activity]:
        data = await web.strict_body(request, CancelBody)
        async with web.engine(request).begin() as conn:
            view = await service.cancel(conn, web.principal(request), activity_id, data.reason, _now(request))
        return web.json_response(view)

    @post(
        "/{activity_id:uuid}/signups",
        opt=access(Role.ADMIN, Role.RECORDER, Role.RESIDENT),
        status_code=201,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413),
        summary="Sign up (a resident: themself; the organiser or an admin: a member_id); full: the waiting list",
        description="Answers 201 with the new sign-up (status signed_up or waiting), or 200 with the one "
        "that exists if the volunteer is signed up or waiting already.",
    )
    async def sign_up(
        self, request: Request, activity_id: uuid.UUID, data: SignupBody
    ) -> Response[shapes.Signup]:
        body = await _body(request, SignupBody)
        async with web.engine(request).begin() as conn:
            view, new = await signups.sign_up(
                conn, web.principal(request), activity_id, body.member_id, _now(request)
            )
        return web.json_response(view, 201 if new else 200)

    @delete(
        "/{activity_id:uuid}/signups/{member_id:uuid}",
        opt=access(Role.ADMIN, Role.RECORDER, Role.RESIDENT),
        status_code=200,
        responses=problems(404, 409),
        summary="Withdraw (late, it counts as a no-show); the first waiting volunteer moves up",
    )
    async def withdraw(
        self, request: Request, activity_id: uuid.UUID, member_id: uuid.UUID
    ) -> Response[shapes.Signup]:
        async with web.engine(request).begin() as conn:
            view = await signups.withdraw(conn, web.principal(request), activity_id, member_id, _now(request))
        return web.json_response(view)

    @get(
        "/{activity_id:uuid}/check-in-code",
        opt=access(*ORGANISERS),
        responses=problems(404, 409),
        summary="The organiser's check-in QR (a URL) and 6-digit code, valid for this 30-second window",
    )
    async def check_in_code(self, request: Request, activity_id: uuid.UUID) -> Response[shapes.CheckInCode]:
        public_url = web.settings(request).public_url or str(request.base_url)
        async with web.engine(request).connect() as conn:
            view = await attendance.check_in_code(
                conn, web.principal(request), activity_id, _key(request), public_url, _now(request)
            )
        return web.json_response(view, headers={"Cache-Control": "no-store"})

    @post(
        "/{activity_id:uuid}/scan",
        opt=access(Role.RESIDENT),
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        summary="A volunteer's scan (the QR's token or the code): checks in, then out (the record follows)",
    )
    async def scan(
        self, request: Request, activity_id: uuid.UUID, data: ScanBody
    ) -> Response[shapes.ScanResult]:
        data = await web.strict_body(request, ScanBody)
        given = attendance.Scan(data.token, data.code, data.lat, data.lon)
        async with web.engine(request).begin() as conn:
            view = await attendance.scan(
                conn, web.principal(request), activity_id, given, _key(request), _now(request)
            )
        return web.json_response(view)

    @post(
        "/{activity_id:uuid}/attendance/{member_id:uuid}/{step:str}",
        opt=access(*ORGANISERS),
        status_code=200,
        request_max_body_size=schemas.JSON_BODY_MAX,
        responses=problems(404, 409, 413, 422),
        summary="The organiser checks a volunteer in or out by hand (step: check-in or check-out; at: when)",
    )
    async def by_hand(
        self,
        request: Request,
        activity_id: uuid.UUID,
        member_id: uuid.UUID,
        step: Literal["check-in", "check-out"],
        data: HandBody,
    ) -> Response[shapes.ScanResult]:
        body = await _body(request, HandBody)
        who, now = web.principal(request), _now(request)
        async with web.engine(request).begin() as conn:
            view = await attendance.check_by_hand(conn, who, activity_id, member_id, step, body.at, now)
        return web.json_response(view)

    @get(
        "/{activity_id:uuid}/attendance",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.RECORDER),
        responses=problems(404),
        operation_class=schemas.documented(answers={"text/csv": schemas.TEXT}),
        summary="Attendance: signed up, waiting, present (times), manual, no-shows (JSON, or CSV with format=csv)",
    )
    async def attendance(
        self, request: Request, activity_id: uuid.UUID, format: Literal["json", "csv"] | None = None
    ) -> Response[shapes.Attendance]:
        async with web.engine(request).connect() as conn:
            view = await attendance.attendance(conn, web.principal(request), activity_id, _now(request))
        wants_csv = format == "csv" or (
            format is None and request.accept.best_match(["application/json", "text/csv"]) == "text/csv"
        )
        if wants_csv:
            return Response(
                attendance.attendance_csv(view),
                media_type="text/csv",
                headers={"Content-Disposition": f'attachment; filename="attendance-{activity_id}.csv"'},
            )
        return web.json_response(view)


class MemberActivityController(Controller):
    path = "/v1/members"
    tags = ["members"]

    @get(
        "/{member_id:uuid}/activities",
        opt=access(*READERS),
        responses=problems(404),
        summary="A member's sign-ups and attendance, and their no-show count",
    )
    async def of_member(self, request: Request, member_id: uuid.UUID) -> Response[shapes.MemberActivities]:
        async with web.engine(request).connect() as conn:
            view = await attendance.member_activities(conn, web.principal(request), member_id, _now(request))
        return web.json_response(view)

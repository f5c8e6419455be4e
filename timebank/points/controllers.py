"""HTTP route of a member's points lots. HTTP only."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, get

from timebank import schemas, web
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.points import service
from timebank.schemas import problems


class MemberPointsController(Controller):
    path = "/v1/members"
    tags = ["rewards"]

    @get(
        "/{member_id:uuid}/points",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.RESIDENT),
        responses=problems(404),
        summary="A member's points: balance, available (less open holds), open lots by expiry (spent oldest first)",
    )
    async def points(self, request: Request, member_id: uuid.UUID) -> Response[schemas.MemberPoints]:
        async with web.engine(request).connect() as conn:
            return web.json_response(await service.member_points(conn, web.principal(request), member_id))

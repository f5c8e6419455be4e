"""HTTP route of a member's notifications. HTTP only."""

from __future__ import annotations

import uuid

from litestar import Controller, Request, Response, get

from timebank import schemas, web
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.notifications import service
from timebank.schemas import problems


class NotificationController(Controller):
    path = "/v1/members"
    tags = ["rewards"]

    @get(
        "/{member_id:uuid}/notifications",
        opt=access(Role.ADMIN, Role.AUDITOR, Role.RESIDENT),
        responses=problems(404),
        summary="A member's notifications (points about to expire), newest first, with their delivery state",
    )
    async def notifications(
        self,
        request: Request,
        member_id: uuid.UUID,
        cursor: schemas.UuidCursor = None,
        limit: schemas.PageLimit = None,
    ) -> Response[schemas.NotificationPage]:
        n = web.page_limit(request, limit)
        async with web.engine(request).connect() as conn:
            items, nxt = await service.member_notifications(
                conn, web.principal(request), member_id, web.uuid_cursor(cursor), n
            )
        return web.json_response({"items": items, "next_cursor": nxt})

"""HTTP route of the scheduled jobs' runs. HTTP only."""

from __future__ import annotations

from litestar import Controller, Request, Response, get

from timebank import schemas, web
from timebank.core.access import access
from timebank.core.roles import Role
from timebank.jobs import service
from timebank.schemas import problems

JobName = schemas.job_name(service.JOBS)


class JobController(Controller):
    path = "/v1/jobs"
    tags = ["operations"]

    @get(
        "/",
        opt=access(Role.ADMIN, Role.AUDITOR),
        responses=problems(),
        summary="The last runs of the scheduled jobs (this community's and the global ones), newest first",
    )
    async def runs(
        self, request: Request, job: JobName = None, limit: schemas.PageLimit = None
    ) -> Response[schemas.JobRunList]:
        n = web.page_limit(request, limit)
        async with web.engine(request).connect() as conn:
            items = await service.recent_runs(conn, web.principal(request).community_id, job, n)
        return web.json_response({"items": items})

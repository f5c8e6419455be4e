"""The public page of each community (``/p/{community}``) and its verifier
(``/p/{community}/verify``): no sign-in, a stable address to share, zh-CN and English.

The page shows aggregates only (the reports' headline figures), the log's signed
checkpoints and the published keys; no name and no member id. The verifier page is a
form and the words of each step; the checking itself happens in the visitor's browser
(``static/verify.js``, the same rules as ``timebank/log/verify.py``), against the
public routes ``/v1/log/keys``, ``/v1/certificates/{number}``. A community that turned
its page off (policy ``public_page``) answers 404 with a page saying so.
"""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.params import Parameter
from litestar.types import ControllerRouterHandler

from timebank import web
from timebank.core.access import PUBLIC
from timebank.districts.service import community_district
from timebank.reports.snapshot import report_snapshot
from timebank.transparency import service
from timebank.web import i18n
from timebank.web.templating import page_locale, render

ENGINES = ("auto", "webcrypto", "noble")


async def _community(request: Request, community_id: uuid.UUID) -> tuple[str, str] | Response[Any]:
    """(name, zone) of a community that publishes its page, or the 404 page to answer."""
    async with web.engine(request).connect() as conn:
        found = await service.find_community(conn, community_id)
        publishes = found is not None and await service.publishes(conn, community_id)
    if found is None:
        return render(request, "public/unknown.html", 404)
    if not publishes:
        return render(request, "public/unpublished.html", 404, community_name=found[0])
    return found


def _formats(request: Request, zone: str) -> i18n.Formats:
    """Times in the community's zone (a visitor has no session to say it)."""
    return i18n.Formats(page_locale(request), zone)


def _fresh(response: Response[Any]) -> Response[Any]:
    # Figures change with every transaction: a shared link always shows the current ones.
    response.headers["Cache-Control"] = "no-cache"
    return response


class PublicPages(Controller):
    path = "/p"

    @get("/{community_id:uuid}", opt=PUBLIC)
    async def public_page(
        self,
        request: Request,
        community_id: uuid.UUID,
        cursor: str | None = Parameter(query="cursor", default=None, max_length=20),
    ) -> Response[Any]:
        found = await _community(request, community_id)
        if isinstance(found, Response):
            return found
        name, zone = found
        before = web.int_cursor(cursor)
        async with report_snapshot(web.engine(request)) as conn:
            content = await service.public_page(conn, community_id, before)
            # its district's name and its position there (totals only), once joined
            district = await community_district(conn, community_id)
        if district is not None and "position" not in district:
            district = None
        return _fresh(
            render(
                request,
                "public/page.html",
                community_id=str(community_id),
                community_name=name,
                fmt=_formats(request, zone),
                first_page=before is None,
                district=district,
                **content,
            )
        )

    @get("/{community_id:uuid}/verify", opt=PUBLIC)
    async def verify_page(
        self,
        request: Request,
        community_id: uuid.UUID,
        certificate: str = Parameter(query="certificate", default="", max_length=40),
        engine: str = Parameter(query="engine", default="auto", max_length=20),
    ) -> Response[Any]:
        found = await _community(request, community_id)
        if isinstance(found, Response):
            return found
        name, zone = found
        return render(
            request,
            "public/verify.html",
            community_id=str(community_id),
            community_name=name,
            fmt=_formats(request, zone),
            certificate=certificate.strip().upper(),
            engine=engine if engine in ENGINES else "auto",
        )


PAGES: list[ControllerRouterHandler] = [PublicPages]

"""The one place that wires the application together."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from litestar import Litestar, Response, Router
from litestar.config.csrf import CSRFConfig
from litestar.datastructures import CacheControlHeader
from litestar.exceptions import NotFoundException
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.spec import Components, SecurityScheme
from litestar.static_files import create_static_files_router
from litestar.types import ControllerRouterHandler

from timebank import __version__, edge, errors, logs, schemas
from timebank.activities import attendance
from timebank.activities import pages as activity_pages
from timebank.activities.controllers import ActivityController, MemberActivityController
from timebank.community import pages as community_pages
from timebank.community.controllers import (
    ApiKeyController,
    CommunityController,
    MemberController,
    MerchantController,
    OrganisationController,
)
from timebank.core.access import PUBLIC
from timebank.core.settings import Settings, get_settings
from timebank.db import create_engine
from timebank.districts import pages as district_pages
from timebank.districts.controllers import CommunityDistrictController, CrossingController, DistrictController
from timebank.families import pages as family_pages
from timebank.families.controllers import FamilyLinkController
from timebank.health import HealthController
from timebank.jobs import pages as operations_pages
from timebank.jobs.controllers import JobController
from timebank.ledger import pages as journal_pages
from timebank.ledger.controllers import AccountController, TransactionController
from timebank.ledger.posting import close_poster
from timebank.log import pages as receipt_pages
from timebank.log.controllers import LogController, ReceiptController
from timebank.log.keys import Signer, load_signer
from timebank.log.timestamps import with_set
from timebank.metrics import PROMETHEUS, MetricsController
from timebank.notifications.controllers import NotificationController
from timebank.people import staff_pages
from timebank.people.controllers import PeopleController, SignInLinkController
from timebank.people.pages import AccountPages, SignInPages
from timebank.points.controllers import MemberPointsController
from timebank.redemption import pages as merchant_pages
from timebank.redemption import redemption_views
from timebank.redemption.controllers import (
    MemberRedemptionController,
    RedemptionController,
    RewardController,
    StatementController,
)
from timebank.reference import OfflineSwaggerPlugin
from timebank.reports import pages as report_pages
from timebank.reports.controllers import ReportController
from timebank.resident import pages as resident_pages
from timebank.runtime import background
from timebank.security import (
    ApiKeyAuthMiddleware,
    AuthFailures,
    KeyCache,
    SessionAuthMiddleware,
    load_web_secret,
)
from timebank.transparency import pages as public_pages
from timebank.volunteer import approval_pages, policy_pages
from timebank.volunteer import pages as recorder_pages
from timebank.volunteer.controllers import (
    CertificateController,
    MemberRecordsController,
    PolicyController,
    ServiceRecordController,
)
from timebank.volunteer.standing import standing
from timebank.web import failures, templating

ROUTES: list[ControllerRouterHandler] = [
    HealthController,
    CommunityController,
    MemberController,
    OrganisationController,
    MerchantController,
    ApiKeyController,
    DistrictController,
    CommunityDistrictController,
    CrossingController,
    FamilyLinkController,
    TransactionController,
    AccountController,
    LogController,
    ReceiptController,
    PolicyController,
    ServiceRecordController,
    MemberRecordsController,
    CertificateController,
    RewardController,
    RedemptionController,
    MemberRedemptionController,
    StatementController,
    ReportController,
    MemberPointsController,
    JobController,
    NotificationController,
    MetricsController,
    PeopleController,
    SignInLinkController,
    ActivityController,
    MemberActivityController,
]

# The people's pages (HTML): sessions instead of keys, errors as pages, no OpenAPI.
PAGES: list[ControllerRouterHandler] = [
    SignInPages,
    AccountPages,
    *resident_pages.PAGES,
    *merchant_pages.PAGES,
    *receipt_pages.PAGES,
    *staff_pages.PAGES,
    *recorder_pages.PAGES,
    *approval_pages.PAGES,
    *community_pages.PAGES,
    *policy_pages.PAGES,
    *operations_pages.PAGES,
    *journal_pages.PAGES,
    *report_pages.PAGES,
    *activity_pages.PAGES,
    *family_pages.PAGES,
    *public_pages.PAGES,
    *district_pages.PAGES,
]

# Outermost first: metrics and the request log see every answer; the edge refuses bad
# input before authentication reads a key; authentication (and authorisation) last.
MIDDLEWARE = [
    PROMETHEUS.middleware,
    logs.RequestLogMiddleware(),
    edge.EdgeMiddleware(),
    DefineMiddleware(
        ApiKeyAuthMiddleware,
        exclude=["^/schema", "^/health"],
        exclude_from_auth_key="no_api_key",
        exclude_http_methods=[],
    ),
]
# Paths where no form is posted (API keys, not cookies): no CSRF token asked.
NO_FORMS = ["^/v1/", "^/schema", "^/health", "^/metrics", "^/static/"]


def pages_router() -> Router:
    """The pages: a session, not an API key, says who is asking (``opt`` ``no_api_key``
    keeps the API-key middleware away); errors are pages in the person's language."""
    return Router(
        "/",
        route_handlers=PAGES,
        middleware=[SessionAuthMiddleware()],
        exception_handlers=failures.EXCEPTION_HANDLERS,
        include_in_schema=False,
        opt={"no_api_key": True},
    )


def static_router() -> Router:
    # Files are named in pages with their content hash (?v=), so they may be kept long.
    return create_static_files_router(
        "/static",
        directories=[templating.STATIC],
        opt=PUBLIC,
        include_in_schema=False,
        cache_control=CacheControlHeader(max_age=7 * 24 * 3600, public=True),
        send_as_attachment=False,
    )


async def _schema_not_found(response: Response[Any]) -> Response[Any]:
    """Litestar answers an unknown ``/schema/…`` page (``/schema/redoc``) with its own HTML
    404; every error here is problem+json."""
    if response.status_code == 404:
        raise NotFoundException()
    return response


def openapi_config() -> OpenAPIConfig:
    return OpenAPIConfig(
        title="timebank",
        version=__version__,
        description="Community public-welfare bank: volunteer hours and love points on a double-entry "
        "ledger. Errors are application/problem+json; see docs/api.md.",
        # The schema and its UIs are public (they describe the API, reveal no data).
        openapi_router=Router(
            "/schema", route_handlers=[], include_in_schema=False, opt=PUBLIC, after_request=_schema_not_found
        ),
        render_plugins=[OfflineSwaggerPlugin()],
        components=Components(
            security_schemes={
                "apiKey": SecurityScheme(type="http", scheme="bearer", description="tbk_... API key")
            }
        ),
        security=[{"apiKey": []}],
    )


def lifespan(
    url: str, settings: Settings, signer: Signer
) -> Callable[[Litestar], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def run(app: Litestar) -> AsyncIterator[None]:
        # What exists now (the app, its routes, modules) lives as long as the process:
        # keep the collector from walking it again and again under load.
        gc.collect()
        gc.freeze()
        app.state.engine = engine = create_engine(url, settings)
        try:
            async with background(engine, signer, settings):
                yield
        finally:
            await close_poster(engine)
            await engine.dispose()

    return run


def create_app(settings: Settings | None = None, database_url: str | None = None) -> Litestar:
    """Build the app. ``database_url`` defaults to ``settings.database_url``."""
    settings = settings or get_settings()
    url = database_url or settings.database_url
    if not url:
        raise RuntimeError(
            "no database URL: run through `timebank serve`, which starts the embedded database"
        )
    logs.configure(settings)
    signer = load_signer(settings.key_dir)  # fail at start, not at the first transfer
    app = Litestar(
        route_handlers=[*ROUTES, pages_router(), static_router()],
        lifespan=[lifespan(url, settings, signer)],
        middleware=MIDDLEWARE,
        exception_handlers=errors.EXCEPTION_HANDLERS,
        before_send=[edge.response_headers],
        plugins=[schemas.StrictStructs()],  # first: it must see the structs before Litestar's own plugin
        request_max_body_size=settings.max_body_bytes,
        openapi_config=openapi_config(),
        template_config=templating.TEMPLATE_CONFIG,
        csrf_config=CSRFConfig(
            secret=load_web_secret(settings),
            cookie_name="tb_csrf",
            cookie_httponly=True,
            cookie_secure=settings.secure_cookies,
            cookie_samesite="lax",
            exclude=NO_FORMS,
        ),
        debug=False,
    )
    app.state.settings = settings
    app.state.key_cache = KeyCache(settings.key_cache_seconds)
    app.state.auth_failures = AuthFailures(settings.auth_failure_limit, settings.auth_failure_window_seconds)
    app.state.sign_in_failures = AuthFailures(
        settings.sign_in_address_limit, settings.sign_in_window_minutes * 60
    )
    # phone numbers a resident types that lead to nobody (the give page shows a masked name)
    app.state.neighbour_misses = AuthFailures(10, 3600)
    app.state.signer = signer
    app.state.stamp = with_set  # web.stamp signs with app.state.signer
    app.state.member_standing = standing  # shown on GET /v1/members/{id} (community's route)
    app.state.member_redemptions = redemption_views.member_redemptions  # on the staff's member page
    app.state.member_activities = attendance.member_activities  # its no-show count, there too
    return app


def create_app_from_env() -> Litestar:
    """Factory for uvicorn workers (``timebank serve`` passes the resolved URL via the environment)."""
    return create_app()

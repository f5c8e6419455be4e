"""The API reference at /schema, served entirely by this service.

Litestar's bundled UIs load their scripts from a CDN; a community centre's intranet
may have no internet, and a page of this service must not pull code from a third
party. Swagger UI comes from the ``swagger-ui-py`` package (Apache-2.0; its LICENSE
is served beside it at /schema/assets/LICENSE) and is started by our own small
script, so the page needs no inline script (see ``edge.SCHEMA_CSP``).
"""

from __future__ import annotations

from html import escape
from pathlib import Path
from typing import Any

import swagger_ui
from litestar import Request, Router
from litestar.datastructures import CacheControlHeader
from litestar.openapi.plugins import OpenAPIRenderPlugin
from litestar.static_files import create_static_files_router

from timebank.core.access import PUBLIC

SWAGGER_DIR = Path(swagger_ui.__file__).parent / "static"
OWN_DIR = Path(__file__).parent / "static"
ASSETS = "/schema/assets"


class OfflineSwaggerPlugin(OpenAPIRenderPlugin):
    def __init__(self) -> None:
        super().__init__(
            path=["/", "/swagger"], favicon=f'<link rel="icon" href="{ASSETS}/favicon-32x32.png">', style=""
        )

    def render(self, request: Request, openapi_schema: dict[str, Any]) -> bytes:
        title = escape(str(openapi_schema["info"]["title"]))
        return (
            '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{title} API reference</title>{self.favicon}"
            f'<link rel="stylesheet" href="{ASSETS}/swagger-ui.css"></head>'
            f'<body data-openapi-url="{escape(self.get_openapi_json_route(request))}">'
            '<div id="swagger-ui"><noscript>The interactive reference needs JavaScript; '
            f'the schema itself is at <a href="{escape(self.get_openapi_json_route(request))}">openapi.json</a>.'
            "</noscript></div>"
            f'<script src="{ASSETS}/swagger-ui-bundle.js"></script>'
            f'<script src="{ASSETS}/swagger-ui-standalone-preset.js"></script>'
            f'<script src="{ASSETS}/swagger-init.js"></script>'
            "</body></html>"
        ).encode()

    def receive_router(self, router: Router) -> None:
        router.register(
            create_static_files_router(
                "/assets",
                directories=[OWN_DIR, SWAGGER_DIR],
                opt=PUBLIC,
                name="schema-assets",
                cache_control=CacheControlHeader(max_age=86400, public=True),
            )
        )

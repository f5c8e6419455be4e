"""The reports' console pages (``/staff/reports``): being written."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

PAGES: list[ControllerRouterHandler] = []

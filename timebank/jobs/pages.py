"""Console pages (being built)."""

from __future__ import annotations

from litestar.types import ControllerRouterHandler

PAGES: list[ControllerRouterHandler] = []

"""Helpers shared by the API tests (tests/ is on sys.path: pytest puts conftest.py's folder there)."""

from __future__ import annotations

from typing import Any


def problem(r: Any, status: int, slug: str) -> dict[str, Any]:
    """Assert an application/problem+json answer of this status and type; return its body."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json"), r.headers
    body = r.json()
    assert body["type"].endswith("/" + slug), body
    return body

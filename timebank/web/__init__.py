"""Small HTTP helpers shared by the controllers (no domain logic here)."""

from __future__ import annotations

import uuid
from typing import Any, TypeVar

import msgspec
from litestar import Request, Response
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.core.access import Principal
from timebank.core.problems import PROBLEM_MEDIA_TYPE, BadRequest
from timebank.core.settings import Settings

T = TypeVar("T")


def principal(request: Request) -> Principal:
    return request.user


def engine(request: Request) -> AsyncEngine:
    return request.app.state.engine


def settings(request: Request) -> Settings:
    return request.app.state.settings


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    media_type = PROBLEM_MEDIA_TYPE if status >= 400 else "application/json"
    return Response(content=body, status_code=status, media_type=media_type, headers=headers)


def idempotent_response(status: int, body: dict[str, Any], replayed: bool) -> Response[Any]:
    return json_response(body, status, headers={"Idempotent-Replayed": "true"} if replayed else None)


def stamp(request: Request, transaction: dict[str, Any]) -> dict[str, Any]:
    """The transaction with its signed entry timestamp (the log's ``with_set``, which the
    app wires in as ``app.state.stamp``: web sits below the domain packages)."""
    state = request.app.state
    return state.stamp(state.signer, settings(request).log_origin, transaction)


def transaction_response(request: Request, result: tuple[int, dict[str, Any], bool]) -> Response[Any]:
    """The answer to a request that created a ledger transaction: with its signed entry timestamp."""
    status, body, replayed = result
    if status == 201:
        body = stamp(request, body)
    return idempotent_response(status, body, replayed)


def signed_transaction_response(request: Request, result: tuple[int, dict[str, Any], bool]) -> Response[Any]:
    """The answer to a domain step that made a ledger transaction (an approval, a
    redemption...): its ``transaction`` member gets its signed entry timestamp."""
    status, body, replayed = result
    if status == 201:
        body = {**body, "transaction": stamp(request, body["transaction"])}
    return idempotent_response(status, body, replayed)


def page_limit(request: Request, limit: int | None) -> int:
    cfg = settings(request)
    if limit is None:
        return cfg.page_default
    if not 1 <= limit <= cfg.page_max:
        raise BadRequest(f"limit is from 1 to {cfg.page_max}")
    return limit


def int_cursor(cursor: str | None) -> int | None:
    if cursor in (None, ""):
        return None
    if not cursor.isdigit() or len(cursor) > 19:
        raise BadRequest("cursor is the next_cursor of a previous page")
    return int(cursor)


def uuid_cursor(cursor: str | None) -> uuid.UUID | None:
    if cursor in (None, ""):
        return None
    try:
        return uuid.UUID(cursor)
    except ValueError:
        raise BadRequest("cursor is the next_cursor of a previous page") from None


async def strict_body(request: Request, struct: type[T]) -> T:
    """Decode the body again in msgspec's strict mode.

    Litestar validates bodies leniently (``"5"`` becomes ``5``); amounts of money
    must be JSON integers, so routes that move value re-read their body strictly.
    """
    try:
        return msgspec.json.decode(await request.body(), type=struct, strict=True)
    except msgspec.ValidationError as exc:
        raise BadRequest(str(exc)) from None

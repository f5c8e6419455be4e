"""Page cursors of lists ordered by a time and an id: ``{ISO time}_{uuid}``, the last row
of the previous page (keyset paging: a page costs the same however deep)."""

from __future__ import annotations

import uuid
from datetime import datetime

from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest


def time_id_cursor(stamp: datetime, ident: uuid.UUID) -> str:
    return f"{rfc3339(stamp)}_{ident}"


def after_time_id(cursor: str | None) -> tuple[datetime, uuid.UUID] | None:
    """Where the previous page stopped (its ``next_cursor``); None for the first page."""
    if not cursor:
        return None
    try:
        stamp, _, ident = cursor.partition("_")
        return datetime.fromisoformat(stamp), uuid.UUID(ident)
    except ValueError:
        raise BadRequest("cursor is the next_cursor of a previous page") from None

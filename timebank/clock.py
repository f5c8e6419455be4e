"""Time: one format for every timestamp the service shows or signs."""

from __future__ import annotations

from datetime import UTC, datetime


def rfc3339(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds, e.g. ``2026-11-22T08:52:15.123456Z``.

    One fixed width, so the same instant always has the same text (receipts sign it).
    """
    if moment.tzinfo is None:
        raise ValueError("a naive datetime has no place in the ledger")
    if moment.utcoffset():
        moment = moment.astimezone(UTC)
    # isoformat is C code (strftime is not); "+00:00" becomes "Z"
    return moment.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"

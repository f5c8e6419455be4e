"""Time: one format for every timestamp the service shows or signs."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, tzinfo


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


class Clock:
    """Where job logic takes "now" from: the system's time, or an injected one.

    ``now(tz)`` is the current instant (aware, in ``tz`` or UTC); tests and
    ``timebank jobs run --as-of DATE`` use ``AsOf`` to run a day's jobs at once.
    """

    def now(self, tz: tzinfo | None = None) -> datetime:
        return datetime.now(tz or UTC)


class AsOf(Clock):
    """The start of one calendar day, in each community's own time zone."""

    def __init__(self, day: date) -> None:
        self.day = day

    def now(self, tz: tzinfo | None = None) -> datetime:
        return datetime.combine(self.day, time(0), tz or UTC)


SYSTEM_CLOCK = Clock()

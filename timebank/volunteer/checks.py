"""The rules a service record meets, as pure CPU steps over a batch of rows.

Kept apart from the database work of ``recording.py`` so that a large batch can run
them in a worker thread, and so that each rule lives once: the fields and times of a
row on its own (``check_each``), and the time checks against a volunteer's other
records (``check_times``). Both grow linearly with the rows (an import may hold
20,000 of one volunteer): busy time is kept as sorted, disjoint intervals (a binary
search per row), the daily cap as running totals per local day.
"""

from __future__ import annotations

import bisect
import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from timebank.core.access import Principal
from timebank.core.policy import Policy
from timebank.core.roles import Role
from timebank.volunteer.records import RecordIn

# Control characters (tab, LF and CR are allowed: a cell may have lines), DEL, C1
# controls and lone surrogates: PostgreSQL stores no NUL, and none of them belongs in a record.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


@dataclass(slots=True)
class RecordRow:
    """One submitted row on its way through ``record_many``: its verdict so far."""

    given: RecordIn
    member_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    category: str = ""
    minutes: int = 0
    reason: str | None = None
    existing: Any = None
    new_id: uuid.UUID | None = None


class Reject(Exception):
    """A row breaks a rule; the message is its reason."""


def clean_text(value: str | None, name: str, limit: int, required: bool = True) -> str | None:
    value = None if value is None else value.strip()
    if not value:
        if required:
            raise Reject(f"{name} is required")
        return None
    if len(value) > limit:
        raise Reject(f"{name} is longer than {limit} characters")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise Reject(
            f"{name} contains the control character U+{ord(bad.group()):04X}, which no field accepts"
        )
    return value


def _fields(g: RecordIn) -> None:
    g.activity = clean_text(g.activity, "activity", 200)  # type: ignore[assignment]
    g.place = clean_text(g.place, "place", 200)  # type: ignore[assignment]
    g.beneficiary = clean_text(g.beneficiary, "beneficiary", 200, required=False)
    g.content = clean_text(g.content, "content", 2000, required=False)
    g.external_ref = clean_text(g.external_ref, "external_ref", 200, required=False)


def _category(g: RecordIn, policy: Policy) -> str:
    code = policy.category_code((g.category or "").strip())
    if code is None:
        raise Reject(
            f"category {g.category!r} is not one of the community's categories "
            f"({', '.join(c.code for c in policy.categories)})"
        )
    return code


def _minutes(g: RecordIn, policy: Policy, now: datetime) -> int:
    if g.started_at.tzinfo is None or g.ended_at.tzinfo is None:
        raise Reject("started_at and ended_at need a time zone")
    if g.ended_at <= g.started_at:
        raise Reject("ended_at must be after started_at")
    if g.ended_at > now:
        raise Reject("the service cannot end in the future")
    minutes = policy.round_minutes((g.ended_at - g.started_at).total_seconds())
    if minutes <= 0:
        raise Reject(f"shorter than the community's rounding unit ({policy.rounding.unit_minutes} min)")
    return minutes


def _organisation(g: RecordIn, principal: Principal) -> uuid.UUID:
    if principal.role is Role.RECORDER:
        if g.organisation_id not in (None, principal.subject_id):
            raise Reject("a recorder records for its own organisation only")
        return principal.subject_id  # type: ignore[return-value]
    if g.organisation_id is None:
        raise Reject("organisation_id is required")
    return g.organisation_id


def _volunteer(g: RecordIn) -> None:
    if g.member_id is None:
        g.member_ref = clean_text(g.member_ref, "member_ref", 200, required=False)
        if g.member_ref is None:
            raise Reject("member_id (or member_ref) is required")


def derived_ref(row: RecordRow) -> str:
    """A reference from a row's content: the same row imported again is the same record."""
    g = row.given
    content = (
        g.member_id or g.member_ref,
        row.organisation_id,
        g.activity,
        row.category,
        g.place,
        g.started_at.isoformat(),
        g.ended_at.isoformat(),
        g.beneficiary,
        g.content,
    )
    return "csv:" + hashlib.sha256("\x1f".join(str(x) for x in content).encode()).hexdigest()[:32]


def check_each(
    rows: list[RecordRow], policy: Policy, principal: Principal, now: datetime, derive_refs: bool
) -> None:
    """The rules a row meets on its own: fields, category, times, organisation, volunteer."""
    for row in rows:
        g = row.given
        try:
            _fields(g)
            row.category = _category(g, policy)
            row.minutes = _minutes(g, policy, now)
            row.organisation_id = _organisation(g, principal)
            _volunteer(g)
            if derive_refs and g.external_ref is None:
                g.external_ref = derived_ref(row)
        except Reject as exc:
            row.reason = str(exc)


def local_days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[tuple[date, timedelta]]:
    """The time of [start, end) in each local day of the community, day by day."""
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
        stop = min(end, next_midnight)
        yield local.date(), stop - cursor
        cursor = stop


class Busy:
    """One volunteer's busy time: disjoint intervals sorted by start (so ends are sorted too)."""

    __slots__ = ("ends", "starts")

    def __init__(self, intervals: list[tuple[datetime, datetime]]) -> None:
        self.starts: list[datetime] = []
        self.ends: list[datetime] = []
        for s, e in sorted(intervals):  # overlapping ones merge: the same time is busy
            if self.ends and s <= self.ends[-1]:
                self.ends[-1] = max(self.ends[-1], e)
            else:
                self.starts.append(s)
                self.ends.append(e)

    def overlaps(self, start: datetime, end: datetime) -> bool:
        """Whether [start, end) shares time with a busy interval: the last one starting before ``end``
        is the only candidate, as the intervals are disjoint."""
        i = bisect.bisect_left(self.starts, end)
        return i > 0 and self.ends[i - 1] > start

    def add(self, start: datetime, end: datetime) -> None:
        """Add a free interval (one that ``overlaps`` said shares no time)."""
        i = bisect.bisect_left(self.starts, start)
        self.starts.insert(i, start)
        self.ends.insert(i, end)


def _over_cap(cap_minutes: int, day: date) -> str:
    return f"more than the daily cap of {cap_minutes // 60} h {cap_minutes % 60} min on {day.isoformat()}".replace(
        " 0 min", ""
    )


def check_times(fresh: list[RecordRow], stored: Sequence[Any], tz: ZoneInfo, cap_minutes: int) -> None:
    """No overlap, at most the daily cap (linear in the rows).

    ``stored`` are the volunteers' submitted and approved records (member_id, started_at,
    ended_at) around the new rows. Rows are judged in order; an accepted row is busy
    time and counts towards its days for the rows after it.
    """
    cap = timedelta(minutes=cap_minutes)
    taken: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
    used: dict[tuple[uuid.UUID, date], timedelta] = defaultdict(timedelta)  # (volunteer, local day): time
    for member_id, s, e in stored:
        taken[member_id].append((s, e))
        for d, t in local_days(s, e, tz):
            used[member_id, d] += t
    busy = {m: Busy(taken.get(m, [])) for m in {r.member_id for r in fresh}}  # type: ignore[misc]
    for r in fresh:
        g, mine = r.given, busy[r.member_id]  # type: ignore[index]
        if mine.overlaps(g.started_at, g.ended_at):
            r.reason = "overlaps another record of this volunteer"
            continue
        days: dict[date, timedelta] = defaultdict(timedelta)
        for d, t in local_days(g.started_at, g.ended_at, tz):
            days[d] += t
        over = next((d for d, t in days.items() if used[r.member_id, d] + t > cap), None)  # type: ignore[index]
        if over is not None:
            r.reason = _over_cap(cap_minutes, over)
            continue
        mine.add(g.started_at, g.ended_at)
        for d, t in days.items():
            used[r.member_id, d] += t  # type: ignore[index]

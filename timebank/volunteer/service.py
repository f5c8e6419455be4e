"""Volunteer service records: recording (one or many), approval, corrections, standing.

Domain logic only. One path records every record, whether it comes from the form
(``POST /v1/service-records``), a CSV import or the CLI: ``record_many`` validates each
row by the same rules and writes the accepted ones in a few statements, holding row
locks on the volunteers so that overlap and daily-cap checks cannot race.

Its work grows linearly with the rows (an import is up to ``MAX_ROWS`` of them, maybe
all of one volunteer): the overlap check keeps each volunteer's busy time as sorted,
disjoint intervals (a binary search per row), the daily cap keeps running totals per
local day. The pure-CPU steps of a large batch run in a worker thread, so that the
event loop keeps answering other requests meanwhile.
"""

from __future__ import annotations

import asyncio
import bisect
import hashlib
import re
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import asyncpg
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.core.communities import community_zone
from timebank.core.policy import Policy, current_policy
from timebank.core.problems import BadRequest, Conflict, DomainError, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset, Kind, Layer, Phase
from timebank.db import driver
from timebank.ledger import service as ledger
from timebank.security import Principal

MAX_ROWS = 20_000  # one import (Settings.import_max_rows); bounded like everything else
# Batches at least this large do their CPU-bound steps in a worker thread (a thread hop
# costs more than checking a handful of rows on the event loop).
THREAD_ROWS = 200
# Rows per INSERT: each statement's parameters are encoded on the event loop.
INSERT_CHUNK = 2_000
# Control characters (tab, LF and CR are allowed: a cell may have lines), DEL, C1
# controls and lone surrogates: PostgreSQL stores no NUL, and none of them belongs in a record.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")

T = TypeVar("T")


class ImportTooLarge(DomainError):
    slug, status, title = "payload-too-large", 413, "The request body is too large"


class RecordAlreadyResolved(Conflict):
    slug, title = "record-already-resolved", "The service record was already approved, rejected or reversed"


class FourEyes(DomainError):
    slug, status, title = "four-eyes", 403, "A second admin must decide on this correction"


@dataclass(slots=True)  # an import holds many at once: no __dict__ each (memory, and GC pauses)
class RecordIn:
    """One service record as submitted (from JSON or a CSV row)."""

    activity: str
    category: str
    place: str
    started_at: datetime
    ended_at: datetime
    member_id: uuid.UUID | None = None
    member_ref: str | None = None
    organisation_id: uuid.UUID | None = None
    beneficiary: str | None = None
    content: str | None = None
    external_ref: str | None = None
    line: int | None = None  # CSV line, for the report


@dataclass(slots=True)
class _Row:
    given: RecordIn
    member_id: uuid.UUID | None = None
    organisation_id: uuid.UUID | None = None
    category: str = ""
    minutes: int = 0
    reason: str | None = None
    existing: Any = None
    new_id: uuid.UUID | None = None


@dataclass
class Outcome:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


def _text(value: str | None, name: str, limit: int, required: bool = True) -> str | None:
    value = None if value is None else value.strip()
    if not value:
        if required:
            raise _Reject(f"{name} is required")
        return None
    if len(value) > limit:
        raise _Reject(f"{name} is longer than {limit} characters")
    bad = _CONTROL.search(value)
    if bad is not None:
        raise _Reject(
            f"{name} contains the control character U+{ord(bad.group()):04X}, which no field accepts"
        )
    return value


async def _cpu(n: int, fn: Callable[..., T], *args: Any) -> T:
    """Run a CPU-bound step over ``n`` rows: in a worker thread when it is large."""
    if n >= THREAD_ROWS:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


class _Reject(Exception):
    pass


def _local_days(start: datetime, end: datetime, tz: ZoneInfo) -> Iterator[tuple[date, timedelta]]:
    """The time of [start, end) in each local day of the community, day by day."""
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
        stop = min(end, next_midnight)
        yield local.date(), stop - cursor
        cursor = stop


class _Busy:
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


async def record_many(
    conn: AsyncConnection,
    principal: Principal,
    items: Sequence[RecordIn],
    *,
    now: datetime,
    derive_refs: bool = False,
    max_rows: int = MAX_ROWS,
) -> Outcome:
    """Validate and write service records; each row is accepted or rejected with a reason.

    A row whose organisation already has a record with its ``external_ref`` is accepted
    as that record (nothing is written twice). With ``derive_refs`` (CSV imports), a
    row without one gets a reference derived from its content, so that importing the
    same file again creates nothing twice. Rows are judged in their order: of two rows
    that overlap, the first is accepted. At most ``max_rows`` rows (else a 413).
    """
    assert conn.in_transaction()
    principal.require_writer()
    if principal.role not in (Role.ADMIN, Role.RECORDER):
        raise Forbidden("only admins and recorders record service")
    if len(items) > max_rows:
        raise ImportTooLarge(f"at most {max_rows} records at once")
    version, policy, _ = await current_policy(conn, principal.community_id)
    tz = await community_zone(conn, principal.community_id)
    rows = [_Row(item) for item in items]

    # 1. Each row on its own: fields, times, category, organisation.
    await _cpu(len(rows), _check_each, rows, policy, principal, now, derive_refs)

    # 2. Parties, in one query each.
    live = [r for r in rows if r.reason is None]
    orgs = {r.organisation_id for r in live}
    known_orgs = (
        {
            x.id
            for x in await conn.execute(
                text(
                    "SELECT id FROM parties WHERE community_id = :c AND kind = 'organisation' AND id = ANY(:ids)"
                ),
                {"c": principal.community_id, "ids": list(orgs)},
            )
        }
        if orgs
        else set()
    )
    ids = {r.given.member_id for r in live if r.given.member_id}
    refs = {r.given.member_ref for r in live if r.given.member_id is None and r.given.member_ref}
    members = (
        (
            await conn.execute(
                text(
                    "SELECT id, external_ref FROM parties WHERE community_id = :c AND kind = 'member' "
                    "AND (id = ANY(:ids) OR external_ref = ANY(:refs))"
                ),
                {"c": principal.community_id, "ids": list(ids), "refs": list(refs)},
            )
        ).all()
        if ids or refs
        else []
    )
    by_id = {m.id for m in members}
    by_ref = {m.external_ref: m.id for m in members if m.external_ref}
    for r in live:
        if r.organisation_id not in known_orgs:
            r.reason = f"organisation {r.organisation_id} is not an organisation of this community"
            continue
        g = r.given
        r.member_id = (
            g.member_id
            if g.member_id in by_id
            else by_ref.get(g.member_ref or "")
            if g.member_id is None
            else None
        )
        if r.member_id is None:
            r.reason = f"member {g.member_id or g.member_ref} is not a member of this community"

    # 3. Duplicates: the same external_ref of the same organisation is the same record.
    live = [r for r in rows if r.reason is None]
    keyed = [(r.organisation_id, r.given.external_ref) for r in live if r.given.external_ref]
    if keyed:
        # asyncpg records straight from the driver: an import may find thousands.
        existing = {
            (x["organisation_id"], x["external_ref"]): x
            for x in await (await driver(conn)).fetch(
                "SELECT s.* FROM service_records s JOIN unnest($1::uuid[], $2::text[]) AS k(org, ref) "
                "ON s.organisation_id = k.org AND s.external_ref = k.ref",
                [k[0] for k in keyed],
                [k[1] for k in keyed],
            )
        }
        seen: dict[tuple[Any, str], _Row] = {}
        for r in live:
            if not r.given.external_ref:
                continue
            key = (r.organisation_id, r.given.external_ref)
            if key in existing:
                r.existing = existing[key]
            elif key in seen:
                r.reason = (
                    f"external_ref {r.given.external_ref!r} appears twice (also line {seen[key].given.line})"
                )
            else:
                seen[key] = r
        del keyed, seen, existing  # thousands of small objects each: every collection would walk them

    # 4. Overlap and daily cap, per volunteer, against what is recorded (locked) and
    #    what this request adds.
    fresh = [r for r in rows if r.reason is None and r.existing is None]
    if fresh:
        member_ids = sorted({r.member_id for r in fresh})  # type: ignore[type-var]
        await conn.execute(
            text("SELECT 1 FROM parties WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"), {"ids": member_ids}
        )
        # Two days either side: a record that touches a local day of a new row is in.
        lo = min(r.given.started_at for r in fresh) - timedelta(days=2)
        hi = max(r.given.ended_at for r in fresh) + timedelta(days=2)
        stored = await (await driver(conn)).fetch(
            "SELECT member_id, started_at, ended_at FROM service_records WHERE member_id = ANY($1::uuid[]) "
            "AND status IN ('submitted', 'approved') AND started_at < $3 AND ended_at > $2",
            member_ids,
            lo,
            hi,
        )
        await _cpu(len(fresh) + len(stored), _check_times, fresh, stored, tz, policy.daily_cap_minutes)

    # 5. Write the accepted rows, a few thousand per statement.
    fresh = [r for r in rows if r.reason is None and r.existing is None]
    await _cpu(len(fresh), _new_ids, fresh)  # random ids take a while, by the thousand
    written: dict[uuid.UUID, Any] = {}
    if fresh:
        raw = await driver(conn)
        for start in range(0, len(fresh), INSERT_CHUNK):
            part = fresh[start : start + INSERT_CHUNK]
            for x in await raw.fetch(
                "INSERT INTO service_records (id, community_id, member_id, organisation_id, activity, category, "
                "place, started_at, ended_at, minutes, beneficiary, content, external_ref, recorded_by) "
                "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], "
                "$7::text[], $8::timestamptz[], $9::timestamptz[], $10::int[], $11::text[], $12::text[], "
                "$13::text[], $14::uuid[]) RETURNING *",
                [r.new_id for r in part],
                [principal.community_id] * len(part),
                [r.member_id for r in part],
                [r.organisation_id for r in part],
                [r.given.activity for r in part],
                [r.category for r in part],
                [r.given.place for r in part],
                [r.given.started_at for r in part],
                [r.given.ended_at for r in part],
                [r.minutes for r in part],
                [r.given.beneficiary for r in part],
                [r.given.content for r in part],
                [r.given.external_ref for r in part],
                [principal.key_id] * len(part),
            ):
                written[x["id"]] = x
        trusted = set(policy.trusted_organisations)
        approved = [r for r in fresh if r.organisation_id in trusted]  # the policy trusts their records
        if approved:
            await _approve_new(conn, principal, approved, policy, version)
            for x in await raw.fetch(
                "SELECT * FROM service_records WHERE id = ANY($1::uuid[])", [r.new_id for r in approved]
            ):
                written[x["id"]] = x  # as they are now
    return await _cpu(len(rows), _outcome, rows, written)


async def _approve_new(
    conn: AsyncConnection, principal: Principal, rows: list[_Row], policy: Policy, version: int
) -> None:
    """Approve records just written (by a trusted organisation): what ``_approve_locked``
    does to each, in the same order with the same star levels, but with one statement
    per record (its ledger transaction) instead of six, and none that grows with the
    volunteer's history. Nobody else sees these rows before the commit: no locks needed.
    """
    members = list({r.member_id for r in rows})
    lifetime: dict[Any, int] = {
        x.member_id: int(x.minutes)
        for x in await conn.execute(
            text(
                "SELECT member_id, sum(minutes) AS minutes FROM service_records WHERE member_id = ANY(:m) "
                "AND status = 'approved' GROUP BY member_id"
            ),
            {"m": members},
        )
    }
    accounts: dict[tuple[Any, str], uuid.UUID] = {}
    for x in await conn.execute(
        text(
            "SELECT id, asset, party_id FROM accounts WHERE community_id = :c "
            "AND (party_id = ANY(:m) OR system_role = 'issuance')"
        ),
        {"c": principal.community_id, "m": members},
    ):
        accounts[x.party_id or "issuance", x.asset] = x.id
    decided: list[tuple[uuid.UUID, int, uuid.UUID]] = []
    for r in rows:
        star = policy.star_level(lifetime.get(r.member_id, 0))
        points = policy.points_for(r.minutes, star)
        moves = [
            ledger.Movement(
                accounts["issuance", "HOUR"], accounts[r.member_id, "HOUR"], Asset.HOUR, r.minutes
            )
        ]
        if points:
            moves.append(
                ledger.Movement(
                    accounts["issuance", "POINT"], accounts[r.member_id, "POINT"], Asset.POINT, points
                )
            )
        tx = await ledger.post(
            conn,
            community_id=principal.community_id,
            kind=Kind.SERVICE_CREDIT,
            phase=Phase.POSTED,
            legs=ledger.legs_of(moves, Layer.POSTED),
            principal_id=principal.key_id,
            memo=f"{r.given.activity}"[: ledger.MAX_MEMO],
            claim=None,
        )
        lifetime[r.member_id] = lifetime.get(r.member_id, 0) + r.minutes
        decided.append((r.new_id, points, uuid.UUID(tx["id"])))  # type: ignore[arg-type]
    raw = await driver(conn)
    await raw.execute(
        "UPDATE service_records s SET status = 'approved', decided_by = $1, decided_at = now(), "
        "policy_version = $2, points = d.points, transaction_id = d.tx "
        "FROM unnest($3::uuid[], $4::bigint[], $5::uuid[]) AS d(id, points, tx) "
        "WHERE s.id = d.id",
        principal.key_id,
        version,
        [d[0] for d in decided],
        [d[1] for d in decided],
        [d[2] for d in decided],
    )
    # Each credit made its points lot (points_follow_entry, migration 0004); name its record.
    lots = [(d[0], d[2], accounts[r.member_id, "POINT"]) for r, d in zip(rows, decided, strict=True) if d[1]]
    if lots:
        await raw.execute(
            "UPDATE points_lots p SET record_id = l.record FROM unnest($1::uuid[], $2::uuid[], $3::uuid[]) "
            "AS l(record, tx, account) WHERE p.transaction_id = l.tx AND p.account_id = l.account",
            [x[0] for x in lots],
            [x[1] for x in lots],
            [x[2] for x in lots],
        )


def _check_each(
    rows: list[_Row], policy: Policy, principal: Principal, now: datetime, derive_refs: bool
) -> None:
    """Step 1 of ``record_many``: the rules a row meets on its own (CPU only)."""
    for row in rows:
        g = row.given
        try:
            g.activity = _text(g.activity, "activity", 200)  # type: ignore[assignment]
            g.place = _text(g.place, "place", 200)  # type: ignore[assignment]
            g.beneficiary = _text(g.beneficiary, "beneficiary", 200, required=False)
            g.content = _text(g.content, "content", 2000, required=False)
            g.external_ref = _text(g.external_ref, "external_ref", 200, required=False)
            code = policy.category_code((g.category or "").strip())
            if code is None:
                raise _Reject(
                    f"category {g.category!r} is not one of the community's categories "
                    f"({', '.join(c.code for c in policy.categories)})"
                )
            row.category = code
            if g.started_at.tzinfo is None or g.ended_at.tzinfo is None:
                raise _Reject("started_at and ended_at need a time zone")
            if g.ended_at <= g.started_at:
                raise _Reject("ended_at must be after started_at")
            if g.ended_at > now:
                raise _Reject("the service cannot end in the future")
            row.minutes = policy.round_minutes((g.ended_at - g.started_at).total_seconds())
            if row.minutes <= 0:
                raise _Reject(
                    f"shorter than the community's rounding unit ({policy.rounding.unit_minutes} min)"
                )
            if principal.role is Role.RECORDER:
                if g.organisation_id not in (None, principal.subject_id):
                    raise _Reject("a recorder records for its own organisation only")
                row.organisation_id = principal.subject_id
            elif g.organisation_id is None:
                raise _Reject("organisation_id is required")
            else:
                row.organisation_id = g.organisation_id
            if g.member_id is None:
                g.member_ref = _text(g.member_ref, "member_ref", 200, required=False)
                if g.member_ref is None:
                    raise _Reject("member_id (or member_ref) is required")
            if derive_refs and g.external_ref is None:
                digest = hashlib.sha256(
                    "\x1f".join(
                        str(x)
                        for x in (
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
                    ).encode()
                ).hexdigest()
                g.external_ref = "csv:" + digest[:32]
        except _Reject as exc:
            row.reason = str(exc)


def _check_times(fresh: list[_Row], stored: Sequence[Any], tz: ZoneInfo, cap_minutes: int) -> None:
    """Step 4 of ``record_many`` (CPU only, linear): no overlap, at most the daily cap.

    ``stored`` are the volunteers' submitted and approved records (member_id, started_at,
    ended_at) around the new rows. Rows are judged in order; an accepted row is busy
    time and counts towards its days for the rows after it.
    """
    cap = timedelta(minutes=cap_minutes)
    taken: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
    used: dict[tuple[uuid.UUID, date], timedelta] = defaultdict(timedelta)  # (volunteer, local day): time
    for member_id, s, e in stored:
        taken[member_id].append((s, e))
        for d, t in _local_days(s, e, tz):
            used[member_id, d] += t
    busy = {m: _Busy(taken.get(m, [])) for m in {r.member_id for r in fresh}}  # type: ignore[misc]
    for r in fresh:
        g, mine = r.given, busy[r.member_id]  # type: ignore[index]
        if mine.overlaps(g.started_at, g.ended_at):
            r.reason = "overlaps another record of this volunteer"
            continue
        days: dict[date, timedelta] = defaultdict(timedelta)
        for d, t in _local_days(g.started_at, g.ended_at, tz):
            days[d] += t
        over = next((d for d, t in days.items() if used[r.member_id, d] + t > cap), None)  # type: ignore[index]
        if over is not None:
            r.reason = (
                f"more than the daily cap of {cap_minutes // 60} h "
                f"{cap_minutes % 60} min on {over.isoformat()}".replace(" 0 min", "")
            )
            continue
        mine.add(g.started_at, g.ended_at)
        for d, t in days.items():
            used[r.member_id, d] += t  # type: ignore[index]


def _new_ids(rows: list[_Row]) -> None:
    for r in rows:
        r.new_id = uuid.uuid4()


def _outcome(rows: list[_Row], by_id: dict[uuid.UUID, Any]) -> Outcome:
    """The answer of ``record_many``: each row, accepted (with its record) or rejected (CPU only).

    The database's records are let go of here, as they are read: freeing thousands
    of them holds the interpreter too, better in a worker thread than on the event loop.
    """
    out = Outcome()
    for n, r in enumerate(rows):
        line = r.given.line if r.given.line is not None else n + 1
        if r.reason is not None:
            out.rejected.append({"line": line, "reason": r.reason})
        else:
            duplicate = r.existing is not None
            rec = r.existing if duplicate else by_id.pop(r.new_id)
            r.existing = None
            out.accepted.append({"line": line, **record_view(rec), "duplicate": duplicate})
    return out


def record_view(row: Any) -> dict[str, Any]:
    """A service record (a SQLAlchemy row or an asyncpg record) as the API shows it."""
    rec = row if isinstance(row, asyncpg.Record) else row._mapping
    return {
        "id": str(rec["id"]),
        "member_id": str(rec["member_id"]),
        "organisation_id": str(rec["organisation_id"]),
        "activity": rec["activity"],
        "category": rec["category"],
        "place": rec["place"],
        "started_at": rfc3339(rec["started_at"]),
        "ended_at": rfc3339(rec["ended_at"]),
        "minutes": rec["minutes"],
        "beneficiary": rec["beneficiary"],
        "content": rec["content"],
        "external_ref": rec["external_ref"],
        "status": rec["status"],
        "recorded_at": rfc3339(rec["recorded_at"]),
        "points": rec["points"],
        "transaction_id": None if rec["transaction_id"] is None else str(rec["transaction_id"]),
        "reject_reason": rec["reject_reason"],
        "decided_at": None if rec["decided_at"] is None else rfc3339(rec["decided_at"]),
    }


# --- reading --------------------------------------------------------------------------------


def _may_read(principal: Principal, rec: Any) -> bool:
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return True
    if principal.role is Role.RECORDER:
        return rec.organisation_id == principal.subject_id
    return principal.role is Role.RESIDENT and rec.member_id == principal.subject_id


async def get_record(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> Any:
    rec = (
        await conn.execute(
            text("SELECT * FROM service_records WHERE id = :id AND community_id = :c"),
            {"id": record_id, "c": principal.community_id},
        )
    ).first()
    if rec is None or not _may_read(principal, rec):
        raise NotFound(f"service record {record_id} not found")
    return rec


async def records_page(
    conn: AsyncConnection,
    principal: Principal,
    *,
    member_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None,
    status: str | None = None,
    category: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> tuple[list[dict[str, Any]], str | None]:
    """Newest first. Residents see their own records, recorders their organisation's."""
    if principal.role is Role.RESIDENT:
        if member_id not in (None, principal.subject_id):
            raise NotFound(f"member {member_id} not found")
        member_id = principal.subject_id
    elif principal.role is Role.RECORDER:
        if organisation_id not in (None, principal.subject_id):
            raise NotFound(f"organisation {organisation_id} not found")
        organisation_id = principal.subject_id
    elif principal.role is Role.MERCHANT:
        raise Forbidden("merchant keys do not read service records")
    if status is not None and status not in ("submitted", "approved", "rejected", "reversed"):
        raise BadRequest("status is submitted, approved, rejected or reversed")
    after_time, after_id = None, None
    if cursor:
        try:
            stamp, _, ident = cursor.partition("_")
            after_time, after_id = datetime.fromisoformat(stamp), uuid.UUID(ident)
        except ValueError:
            raise BadRequest("cursor is the next_cursor of a previous page") from None
    rows = (
        await conn.execute(
            text(
                "SELECT * FROM service_records WHERE community_id = :c "
                "AND (CAST(:m AS uuid) IS NULL OR member_id = :m) "
                "AND (CAST(:o AS uuid) IS NULL OR organisation_id = :o) "
                "AND (CAST(:s AS text) IS NULL OR status = :s) AND (CAST(:cat AS text) IS NULL OR category = :cat) "
                "AND (CAST(:since AS timestamptz) IS NULL OR started_at >= :since) "
                "AND (CAST(:until AS timestamptz) IS NULL OR started_at < :until) "
                "AND (CAST(:at AS timestamptz) IS NULL OR (started_at, id) < (:at, :aid)) "
                "ORDER BY started_at DESC, id DESC LIMIT :n"
            ),
            {
                "c": principal.community_id,
                "m": member_id,
                "o": organisation_id,
                "s": status,
                "cat": category,
                "since": since,
                "until": until,
                "at": after_time,
                "aid": after_id,
                "n": limit + 1,
            },
        )
    ).all()
    items = [record_view(r) for r in rows[:limit]]
    nxt = f"{rfc3339(rows[limit - 1].started_at)}_{rows[limit - 1].id}" if len(rows) > limit else None
    return items, nxt


async def lifetime_minutes(conn: AsyncConnection, member_id: uuid.UUID) -> int:
    return int(
        (
            await conn.execute(
                text(
                    "SELECT coalesce(sum(minutes), 0) FROM service_records WHERE member_id = :m AND status = 'approved'"
                ),
                {"m": member_id},
            )
        ).scalar_one()
    )


async def standing(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    """Lifetime approved service and the star level it gives (星级志愿者)."""
    _, policy, _ = await current_policy(conn, community_id)
    minutes = await lifetime_minutes(conn, member_id)
    return {
        "lifetime_minutes": minutes,
        "star_level": policy.star_level(minutes),
        "minutes_to_next_level": policy.minutes_to_next_level(minutes),
    }


# --- approval -------------------------------------------------------------------------------


async def _lock_record(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> Any:
    rec = (
        await conn.execute(
            text("SELECT * FROM service_records WHERE id = :id AND community_id = :c FOR UPDATE"),
            {"id": record_id, "c": principal.community_id},
        )
    ).first()
    if rec is None:
        raise NotFound(f"service record {record_id} not found")
    return rec


async def _accounts(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    rows = (
        await conn.execute(
            text(
                "SELECT id, asset, party_id, system_role FROM accounts WHERE community_id = :c "
                "AND (party_id = :m OR system_role = 'issuance')"
            ),
            {"c": community_id, "m": member_id},
        )
    ).all()
    return {("member" if r.party_id else "issuance", r.asset): r.id for r in rows}


async def _approve_locked(
    conn: AsyncConnection,
    principal: Principal,
    rec: Any,
    policy: Policy,
    version: int,
    *,
    claim: ledger.Claim | None,
    system: bool = False,
) -> dict[str, Any]:
    if rec.status != "submitted":
        raise RecordAlreadyResolved(f"service record {rec.id} is already {rec.status}")
    star = policy.star_level(await lifetime_minutes(conn, rec.member_id))
    points = policy.points_for(rec.minutes, star)
    acc = await _accounts(conn, principal.community_id, rec.member_id)
    moves = [ledger.Movement(acc[("issuance", "HOUR")], acc[("member", "HOUR")], Asset.HOUR, rec.minutes)]
    if points:
        moves.append(
            ledger.Movement(acc[("issuance", "POINT")], acc[("member", "POINT")], Asset.POINT, points)
        )
    tx = await ledger.post(
        conn,
        community_id=principal.community_id,
        kind=Kind.SERVICE_CREDIT,
        phase=Phase.POSTED,
        legs=ledger.legs_of(moves, Layer.POSTED),
        principal_id=principal.key_id,
        memo=f"{rec.activity}"[: ledger.MAX_MEMO],
        claim=claim,
    )
    tx_id = uuid.UUID(tx["id"])
    await conn.execute(
        text(
            "UPDATE service_records SET status = 'approved', decided_by = :by, decided_at = now(), "
            "policy_version = :v, points = :p, transaction_id = :t WHERE id = :id"
        ),
        {"by": principal.key_id, "v": version, "p": points, "t": tx_id, "id": rec.id},
    )
    if points:
        # The credit made its points lot (points_follow_entry, migration 0004); name its record.
        await conn.execute(
            text("UPDATE points_lots SET record_id = :r WHERE transaction_id = :t AND account_id = :a"),
            {"r": rec.id, "t": tx_id, "a": acc[("member", "POINT")]},
        )
    return tx


async def approve(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, claim: ledger.Claim | None
) -> dict[str, Any]:
    """Approve a submitted record: ONE transaction credits its HOUR minutes and POINT points.

    In the caller's database transaction (begun by the first statement if none is).
    """
    if not principal.is_admin:
        raise Forbidden("only admins approve service records")
    rec = await _lock_record(conn, principal, record_id)  # concurrent approvals queue here; one wins
    version, policy, _ = await current_policy(conn, principal.community_id)
    tx = await _approve_locked(conn, principal, rec, policy, version, claim=claim)
    return await decision_view(conn, principal.community_id, uuid.UUID(tx["id"]))


async def decision_view(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
    """The answer to an approval (or a correction), also for its idempotent replay."""
    rec = (
        await conn.execute(
            text(
                "SELECT s.* FROM service_records s LEFT JOIN service_reversals v ON v.record_id = s.id "
                "WHERE s.community_id = :c AND (s.transaction_id = :t OR v.transaction_id = :t)"
            ),
            {"c": community_id, "t": tx_id},
        )
    ).first()
    assert rec is not None, f"no service record for transaction {tx_id}"
    return {"record": record_view(rec), "transaction": await ledger.created_view(conn, community_id, tx_id)}


def _reason(value: str | None, what: str) -> str:
    value = (value or "").strip()
    if not 1 <= len(value) <= 500:
        raise BadRequest(f"{what} needs a reason of 1 to 500 characters")
    return value


async def reject(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins reject service records")
    reason = _reason(reason, "a rejection")
    rec = await _lock_record(conn, principal, record_id)
    if rec.status != "submitted":
        raise RecordAlreadyResolved(f"service record {rec.id} is already {rec.status}")
    row = (
        await conn.execute(
            text(
                "UPDATE service_records SET status = 'rejected', reject_reason = :r, decided_by = :by, "
                "decided_at = now() WHERE id = :id RETURNING *"
            ),
            {"r": reason, "by": principal.key_id, "id": rec.id},
        )
    ).one()
    return record_view(row)


# --- corrections (four eyes) ------------------------------------------------------------------


def reversal_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "record_id": str(row.record_id),
        "reason": row.reason,
        "status": row.status,
        "requested_by": str(row.requested_by),
        "requested_at": rfc3339(row.requested_at),
        "decided_by": None if row.decided_by is None else str(row.decided_by),
        "decided_at": None if row.decided_at is None else rfc3339(row.decided_at),
        "transaction_id": None if row.transaction_id is None else str(row.transaction_id),
    }


async def request_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins ask for corrections")
    reason = _reason(reason, "a correction")
    rec = await _lock_record(conn, principal, record_id)
    if rec.status != "approved":
        raise Conflict(f"only an approved record is corrected; this one is {rec.status}")
    open_ = (
        await conn.execute(
            text("SELECT 1 FROM service_reversals WHERE record_id = :r AND status = 'requested'"),
            {"r": rec.id},
        )
    ).first()
    if open_ is not None:
        raise Conflict("a correction of this record is already waiting for a second admin")
    row = (
        await conn.execute(
            text(
                "INSERT INTO service_reversals (community_id, record_id, reason, requested_by) "
                "VALUES (:c, :r, :reason, :by) RETURNING *"
            ),
            {"c": principal.community_id, "r": rec.id, "reason": reason, "by": principal.key_id},
        )
    ).one()
    return reversal_view(row)


async def _lock_open_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID
) -> tuple[Any, Any]:
    rec = await _lock_record(conn, principal, record_id)
    rev = (
        await conn.execute(
            text("SELECT * FROM service_reversals WHERE record_id = :r AND status = 'requested' FOR UPDATE"),
            {"r": rec.id},
        )
    ).first()
    if rev is None:
        raise NotFound(f"no correction of record {record_id} is waiting")
    if rev.requested_by == principal.key_id:
        raise FourEyes("the admin who asked for a correction cannot decide it; another admin must")
    return rec, rev


async def approve_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, claim: ledger.Claim
) -> dict[str, Any]:
    """The second admin's approval: a reversal transaction referencing the credit."""
    if not principal.is_admin:
        raise Forbidden("only admins decide corrections")
    rec, rev = await _lock_open_reversal(conn, principal, record_id)
    tx = await ledger.reverse(conn, principal, rec.transaction_id, rev.reason, claim=claim)
    tx_id = uuid.UUID(tx["id"])
    await conn.execute(
        text(
            "UPDATE service_reversals SET status = 'approved', decided_by = :by, decided_at = now(), "
            "transaction_id = :t WHERE id = :id"
        ),
        {"by": principal.key_id, "t": tx_id, "id": rev.id},
    )
    await conn.execute(text("UPDATE service_records SET status = 'reversed' WHERE id = :id"), {"id": rec.id})
    return await decision_view(conn, principal.community_id, tx_id)


async def reject_reversal(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID
) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins decide corrections")
    _, rev = await _lock_open_reversal(conn, principal, record_id)
    row = (
        await conn.execute(
            text(
                "UPDATE service_reversals SET status = 'rejected', decided_by = :by, decided_at = now() "
                "WHERE id = :id RETURNING *"
            ),
            {"by": principal.key_id, "id": rev.id},
        )
    ).one()
    return reversal_view(row)


async def member_exists(conn: AsyncConnection, principal: Principal, member_id: uuid.UUID) -> None:
    found = (
        await conn.execute(
            text("SELECT 1 FROM parties WHERE id = :m AND community_id = :c AND kind = :k"),
            {"m": member_id, "c": principal.community_id, "k": PartyKind.MEMBER.value},
        )
    ).first()
    if found is None or (principal.role is Role.RESIDENT and principal.subject_id != member_id):
        raise NotFound(f"member {member_id} not found")

"""Volunteer service records: recording (one or many), approval, corrections, standing.

Domain logic only. One path records every record, whether it comes from the form
(``POST /v1/service-records``), a CSV import or the CLI: ``record_many`` validates each
row by the same rules and writes the accepted ones in one statement, holding row
locks on the volunteers so that overlap and daily-cap checks cannot race.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.clock import rfc3339
from timebank.community.models import PartyKind, Role
from timebank.db import driver
from timebank.ledger import service as ledger
from timebank.ledger.models import Asset, Kind, Layer, Phase
from timebank.problems import BadRequest, Conflict, DomainError, Forbidden, NotFound
from timebank.security import Principal
from timebank.volunteer.policy import Policy, current_policy

MAX_ROWS = 20_000  # one import; bounded like everything else


class RecordAlreadyResolved(Conflict):
    slug, title = "record-already-resolved", "The service record was already approved, rejected or reversed"


class FourEyes(DomainError):
    slug, status, title = "four-eyes", 403, "A second admin must decide on this correction"


@dataclass
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


@dataclass
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
    return value


class _Reject(Exception):
    pass


async def community_zone(conn: AsyncConnection, community_id: uuid.UUID) -> ZoneInfo:
    tz = (await conn.execute(text("SELECT timezone FROM communities WHERE id = :c"), {"c": community_id})).scalar_one()
    return ZoneInfo(tz)


def _day_seconds(start: datetime, end: datetime, tz: ZoneInfo) -> dict[date, float]:
    """Seconds of [start, end) in each local day of the community."""
    out: dict[date, float] = {}
    cursor = start
    while cursor < end:
        local = cursor.astimezone(tz)
        next_midnight = datetime.combine(local.date() + timedelta(days=1), time(0), tz)
        stop = min(end, next_midnight)
        out[local.date()] = out.get(local.date(), 0.0) + (stop - cursor).total_seconds()
        cursor = stop
    return out


async def record_many(
    conn: AsyncConnection, principal: Principal, items: Sequence[RecordIn], *, now: datetime,
    derive_refs: bool = False,
) -> Outcome:
    """Validate and write service records; each row is accepted or rejected with a reason.

    A row whose organisation already has a record with its ``external_ref`` is accepted
    as that record (nothing is written twice). With ``derive_refs`` (CSV imports), a
    row without one gets a reference derived from its content, so that importing the
    same file again creates nothing twice.
    """
    assert conn.in_transaction()
    principal.require_writer()
    if principal.role not in (Role.ADMIN, Role.RECORDER):
        raise Forbidden("only admins and recorders record service")
    if len(items) > MAX_ROWS:
        raise BadRequest(f"at most {MAX_ROWS} records at once")
    version, policy, _ = await current_policy(conn, principal.community_id)
    tz = await community_zone(conn, principal.community_id)
    rows = [_Row(item) for item in items]

    # 1. Each row on its own: fields, times, category, organisation.
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
                raise _Reject(f"category {g.category!r} is not one of the community's categories "
                              f"({', '.join(c.code for c in policy.categories)})")
            row.category = code
            if g.started_at.tzinfo is None or g.ended_at.tzinfo is None:
                raise _Reject("started_at and ended_at need a time zone")
            if g.ended_at <= g.started_at:
                raise _Reject("ended_at must be after started_at")
            if g.ended_at > now:
                raise _Reject("the service cannot end in the future")
            row.minutes = policy.round_minutes((g.ended_at - g.started_at).total_seconds())
            if row.minutes <= 0:
                raise _Reject(f"shorter than the community's rounding unit ({policy.rounding.unit_minutes} min)")
            if principal.role is Role.RECORDER:
                if g.organisation_id not in (None, principal.subject_id):
                    raise _Reject("a recorder records for its own organisation only")
                row.organisation_id = principal.subject_id
            elif g.organisation_id is None:
                raise _Reject("organisation_id is required")
            else:
                row.organisation_id = g.organisation_id
            if g.member_id is None and not g.member_ref:
                raise _Reject("member_id (or member_ref) is required")
            if derive_refs and g.external_ref is None:
                digest = hashlib.sha256("\x1f".join(str(x) for x in (
                    g.member_id or g.member_ref, row.organisation_id, g.activity, row.category, g.place,
                    g.started_at.isoformat(), g.ended_at.isoformat(), g.beneficiary, g.content)).encode()).hexdigest()
                g.external_ref = "csv:" + digest[:32]
        except _Reject as exc:
            row.reason = str(exc)

    # 2. Parties, in one query each.
    live = [r for r in rows if r.reason is None]
    orgs = {r.organisation_id for r in live}
    known_orgs = {
        x.id for x in await conn.execute(
            text("SELECT id FROM parties WHERE community_id = :c AND kind = 'organisation' AND id = ANY(:ids)"),
            {"c": principal.community_id, "ids": list(orgs)})
    } if orgs else set()
    ids = {r.given.member_id for r in live if r.given.member_id}
    refs = {r.given.member_ref for r in live if r.given.member_id is None and r.given.member_ref}
    members = (
        await conn.execute(
            text("SELECT id, external_ref FROM parties WHERE community_id = :c AND kind = 'member' "
                 "AND (id = ANY(:ids) OR external_ref = ANY(:refs))"),
            {"c": principal.community_id, "ids": list(ids), "refs": list(refs)},
        )
    ).all() if ids or refs else []
    by_id = {m.id for m in members}
    by_ref = {m.external_ref: m.id for m in members if m.external_ref}
    for r in live:
        if r.organisation_id not in known_orgs:
            r.reason = f"organisation {r.organisation_id} is not an organisation of this community"
            continue
        g = r.given
        r.member_id = g.member_id if g.member_id in by_id else by_ref.get(g.member_ref or "") if g.member_id is None else None
        if r.member_id is None:
            r.reason = f"member {g.member_id or g.member_ref} is not a member of this community"

    # 3. Duplicates: the same external_ref of the same organisation is the same record.
    live = [r for r in rows if r.reason is None]
    keyed = [(r.organisation_id, r.given.external_ref) for r in live if r.given.external_ref]
    if keyed:
        existing = {
            (x.organisation_id, x.external_ref): x
            for x in await conn.execute(
                text("SELECT s.* FROM service_records s JOIN unnest(CAST(:orgs AS uuid[]), CAST(:refs AS text[])) "
                     "AS k(org, ref) ON s.organisation_id = k.org AND s.external_ref = k.ref"),
                {"orgs": [k[0] for k in keyed], "refs": [k[1] for k in keyed]},
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
                r.reason = f"external_ref {r.given.external_ref!r} appears twice (also line {seen[key].given.line})"
            else:
                seen[key] = r

    # 4. Overlap and daily cap, per volunteer, against what is recorded (locked) and
    #    what this request adds.
    fresh = [r for r in rows if r.reason is None and r.existing is None]
    if fresh:
        member_ids = sorted({r.member_id for r in fresh})  # type: ignore[type-var]
        await conn.execute(text("SELECT 1 FROM parties WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
                           {"ids": member_ids})
        lo = min(r.given.started_at for r in fresh) - timedelta(days=1)
        hi = max(r.given.ended_at for r in fresh) + timedelta(days=1)
        taken: dict[uuid.UUID, list[tuple[datetime, datetime]]] = defaultdict(list)
        for x in await conn.execute(
            text("SELECT member_id, started_at, ended_at FROM service_records WHERE member_id = ANY(:m) "
                 "AND status IN ('submitted', 'approved') AND started_at < :hi AND ended_at > :lo"),
            {"m": member_ids, "lo": lo, "hi": hi},
        ):
            taken[x.member_id].append((x.started_at, x.ended_at))
        cap = policy.daily_cap_minutes * 60
        for r in fresh:
            g, mine = r.given, taken[r.member_id]  # type: ignore[index]
            if any(s < g.ended_at and g.started_at < e for s, e in mine):
                r.reason = "overlaps another record of this volunteer"
                continue
            per_day: dict[date, float] = defaultdict(float)
            for s, e in mine:
                for d, secs in _day_seconds(s, e, tz).items():
                    per_day[d] += secs
            over = [d for d, secs in _day_seconds(g.started_at, g.ended_at, tz).items() if per_day[d] + secs > cap]
            if over:
                r.reason = f"more than the daily cap of {policy.daily_cap_minutes // 60} h " \
                           f"{policy.daily_cap_minutes % 60} min on {over[0].isoformat()}".replace(" 0 min", "")
                continue
            mine.append((g.started_at, g.ended_at))

    # 5. Write the accepted rows in one statement.
    fresh = [r for r in rows if r.reason is None and r.existing is None]
    for r in fresh:
        r.new_id = uuid.uuid4()
    if fresh:
        raw = await driver(conn)
        await raw.execute(
            "INSERT INTO service_records (id, community_id, member_id, organisation_id, activity, category, place, "
            "started_at, ended_at, minutes, beneficiary, content, external_ref, recorded_by) "
            "SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::text[], "
            "$8::timestamptz[], $9::timestamptz[], $10::int[], $11::text[], $12::text[], $13::text[], $14::uuid[])",
            [r.new_id for r in fresh], [principal.community_id] * len(fresh), [r.member_id for r in fresh],
            [r.organisation_id for r in fresh], [r.given.activity for r in fresh], [r.category for r in fresh],
            [r.given.place for r in fresh], [r.given.started_at for r in fresh], [r.given.ended_at for r in fresh],
            [r.minutes for r in fresh], [r.given.beneficiary for r in fresh], [r.given.content for r in fresh],
            [r.given.external_ref for r in fresh], [principal.key_id] * len(fresh),
        )
        trusted = set(policy.trusted_organisations)
        for r in fresh:
            if r.organisation_id in trusted:  # the policy trusts this organisation's records
                await _approve_locked(conn, principal, await _lock_record(conn, principal, r.new_id), policy, version,
                                      claim=None, system=True)  # type: ignore[arg-type]

    out = Outcome()
    new_ids = [r.new_id for r in fresh]
    written = {x.id: x for x in await conn.execute(
        text("SELECT * FROM service_records WHERE id = ANY(:ids)"), {"ids": new_ids})} if new_ids else {}
    for n, r in enumerate(rows):
        line = r.given.line if r.given.line is not None else n + 1
        if r.reason is not None:
            out.rejected.append({"line": line, "reason": r.reason})
        else:
            rec = r.existing if r.existing is not None else written[r.new_id]
            out.accepted.append({"line": line, **record_view(rec), "duplicate": r.existing is not None})
    return out


def record_view(rec: Any) -> dict[str, Any]:
    return {
        "id": str(rec.id),
        "member_id": str(rec.member_id),
        "organisation_id": str(rec.organisation_id),
        "activity": rec.activity,
        "category": rec.category,
        "place": rec.place,
        "started_at": rfc3339(rec.started_at),
        "ended_at": rfc3339(rec.ended_at),
        "minutes": rec.minutes,
        "beneficiary": rec.beneficiary,
        "content": rec.content,
        "external_ref": rec.external_ref,
        "status": rec.status,
        "recorded_at": rfc3339(rec.recorded_at),
        "points": rec.points,
        "transaction_id": None if rec.transaction_id is None else str(rec.transaction_id),
        "reject_reason": rec.reject_reason,
        "decided_at": None if rec.decided_at is None else rfc3339(rec.decided_at),
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
        await conn.execute(text("SELECT * FROM service_records WHERE id = :id AND community_id = :c"),
                           {"id": record_id, "c": principal.community_id})
    ).first()
    if rec is None or not _may_read(principal, rec):
        raise NotFound(f"service record {record_id} not found")
    return rec


async def records_page(
    conn: AsyncConnection, principal: Principal, *, member_id: uuid.UUID | None = None,
    organisation_id: uuid.UUID | None = None, status: str | None = None, category: str | None = None,
    since: datetime | None = None, until: datetime | None = None, cursor: str | None = None, limit: int = 50,
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
                "AND (CAST(:m AS uuid) IS NULL OR member_id = :m) AND (CAST(:o AS uuid) IS NULL OR organisation_id = :o) "
                "AND (CAST(:s AS text) IS NULL OR status = :s) AND (CAST(:cat AS text) IS NULL OR category = :cat) "
                "AND (CAST(:since AS timestamptz) IS NULL OR started_at >= :since) "
                "AND (CAST(:until AS timestamptz) IS NULL OR started_at < :until) "
                "AND (CAST(:at AS timestamptz) IS NULL OR (started_at, id) < (:at, :aid)) "
                "ORDER BY started_at DESC, id DESC LIMIT :n"
            ),
            {"c": principal.community_id, "m": member_id, "o": organisation_id, "s": status, "cat": category,
             "since": since, "until": until, "at": after_time, "aid": after_id, "n": limit + 1},
        )
    ).all()
    items = [record_view(r) for r in rows[:limit]]
    nxt = f"{rfc3339(rows[limit - 1].started_at)}_{rows[limit - 1].id}" if len(rows) > limit else None
    return items, nxt


async def lifetime_minutes(conn: AsyncConnection, member_id: uuid.UUID) -> int:
    return int((await conn.execute(
        text("SELECT coalesce(sum(minutes), 0) FROM service_records WHERE member_id = :m AND status = 'approved'"),
        {"m": member_id})).scalar_one())


async def standing(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    """Lifetime approved service and the star level it gives (星级志愿者)."""
    _, policy, _ = await current_policy(conn, community_id)
    minutes = await lifetime_minutes(conn, member_id)
    return {"lifetime_minutes": minutes, "star_level": policy.star_level(minutes),
            "minutes_to_next_level": policy.minutes_to_next_level(minutes)}


# --- approval -------------------------------------------------------------------------------


async def _lock_record(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> Any:
    rec = (
        await conn.execute(text("SELECT * FROM service_records WHERE id = :id AND community_id = :c FOR UPDATE"),
                           {"id": record_id, "c": principal.community_id})
    ).first()
    if rec is None:
        raise NotFound(f"service record {record_id} not found")
    return rec


async def _accounts(conn: AsyncConnection, community_id: uuid.UUID, member_id: uuid.UUID) -> dict[str, Any]:
    rows = (
        await conn.execute(
            text("SELECT id, asset, party_id, system_role FROM accounts WHERE community_id = :c "
                 "AND (party_id = :m OR system_role = 'issuance')"),
            {"c": community_id, "m": member_id},
        )
    ).all()
    return {("member" if r.party_id else "issuance", r.asset): r.id for r in rows}


async def _approve_locked(
    conn: AsyncConnection, principal: Principal, rec: Any, policy: Policy, version: int,
    *, claim: ledger.Claim | None, system: bool = False,
) -> dict[str, Any]:
    if rec.status != "submitted":
        raise RecordAlreadyResolved(f"service record {rec.id} is already {rec.status}")
    star = policy.star_level(await lifetime_minutes(conn, rec.member_id))
    points = policy.points_for(rec.minutes, star)
    acc = await _accounts(conn, principal.community_id, rec.member_id)
    moves = [ledger.Movement(acc[("issuance", "HOUR")], acc[("member", "HOUR")], Asset.HOUR, rec.minutes)]
    if points:
        moves.append(ledger.Movement(acc[("issuance", "POINT")], acc[("member", "POINT")], Asset.POINT, points))
    tx = await ledger.post(
        conn, community_id=principal.community_id, kind=Kind.SERVICE_CREDIT, phase=Phase.POSTED,
        legs=ledger.legs_of(moves, Layer.POSTED), principal_id=principal.key_id,
        memo=f"{rec.activity}"[: ledger.MAX_MEMO], claim=claim,
    )
    tx_id = uuid.UUID(tx["id"])
    await conn.execute(
        text("UPDATE service_records SET status = 'approved', decided_by = :by, decided_at = now(), "
             "policy_version = :v, points = :p, transaction_id = :t WHERE id = :id"),
        {"by": principal.key_id, "v": version, "p": points, "t": tx_id, "id": rec.id},
    )
    if points:
        # The credit made its points lot (points_follow_entry, migration 0004); name its record.
        await conn.execute(text("UPDATE points_lots SET record_id = :r WHERE transaction_id = :t AND account_id = :a"),
                           {"r": rec.id, "t": tx_id, "a": acc[("member", "POINT")]})
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
            text("SELECT s.* FROM service_records s LEFT JOIN service_reversals v ON v.record_id = s.id "
                 "WHERE s.community_id = :c AND (s.transaction_id = :t OR v.transaction_id = :t)"),
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


async def reject(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, reason: str) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins reject service records")
    reason = _reason(reason, "a rejection")
    rec = await _lock_record(conn, principal, record_id)
    if rec.status != "submitted":
        raise RecordAlreadyResolved(f"service record {rec.id} is already {rec.status}")
    row = (
        await conn.execute(
            text("UPDATE service_records SET status = 'rejected', reject_reason = :r, decided_by = :by, "
                 "decided_at = now() WHERE id = :id RETURNING *"),
            {"r": reason, "by": principal.key_id, "id": rec.id},
        )
    ).one()
    return record_view(row)


# --- corrections (four eyes) ------------------------------------------------------------------


def reversal_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id), "record_id": str(row.record_id), "reason": row.reason, "status": row.status,
        "requested_by": str(row.requested_by), "requested_at": rfc3339(row.requested_at),
        "decided_by": None if row.decided_by is None else str(row.decided_by),
        "decided_at": None if row.decided_at is None else rfc3339(row.decided_at),
        "transaction_id": None if row.transaction_id is None else str(row.transaction_id),
    }


async def request_reversal(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, reason: str) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins ask for corrections")
    reason = _reason(reason, "a correction")
    rec = await _lock_record(conn, principal, record_id)
    if rec.status != "approved":
        raise Conflict(f"only an approved record is corrected; this one is {rec.status}")
    open_ = (await conn.execute(text("SELECT 1 FROM service_reversals WHERE record_id = :r AND status = 'requested'"),
                                {"r": rec.id})).first()
    if open_ is not None:
        raise Conflict("a correction of this record is already waiting for a second admin")
    row = (
        await conn.execute(
            text("INSERT INTO service_reversals (community_id, record_id, reason, requested_by) "
                 "VALUES (:c, :r, :reason, :by) RETURNING *"),
            {"c": principal.community_id, "r": rec.id, "reason": reason, "by": principal.key_id},
        )
    ).one()
    return reversal_view(row)


async def _lock_open_reversal(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> tuple[Any, Any]:
    rec = await _lock_record(conn, principal, record_id)
    rev = (await conn.execute(
        text("SELECT * FROM service_reversals WHERE record_id = :r AND status = 'requested' FOR UPDATE"),
        {"r": rec.id})).first()
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
        text("UPDATE service_reversals SET status = 'approved', decided_by = :by, decided_at = now(), "
             "transaction_id = :t WHERE id = :id"), {"by": principal.key_id, "t": tx_id, "id": rev.id})
    await conn.execute(text("UPDATE service_records SET status = 'reversed' WHERE id = :id"), {"id": rec.id})
    return await decision_view(conn, principal.community_id, tx_id)


async def reject_reversal(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins decide corrections")
    _, rev = await _lock_open_reversal(conn, principal, record_id)
    row = (await conn.execute(
        text("UPDATE service_reversals SET status = 'rejected', decided_by = :by, decided_at = now() "
             "WHERE id = :id RETURNING *"), {"by": principal.key_id, "id": rev.id})).one()
    return reversal_view(row)


async def member_exists(conn: AsyncConnection, principal: Principal, member_id: uuid.UUID) -> None:
    found = (await conn.execute(
        text("SELECT 1 FROM parties WHERE id = :m AND community_id = :c AND kind = :k"),
        {"m": member_id, "c": principal.community_id, "k": PartyKind.MEMBER.value})).first()
    if found is None or (principal.role is Role.RESIDENT and principal.subject_id != member_id):
        raise NotFound(f"member {member_id} not found")

"""Recording service: one path for every record, from the form, a CSV import or the CLI.

``record_many`` judges each row by the same rules (``checks.py``) and writes the
accepted ones in a few statements, holding row locks on the volunteers so that the
overlap and daily-cap checks cannot race. Its work grows linearly with the rows (an
import is up to ``MAX_ROWS``, maybe all of one volunteer); the pure-CPU steps of a
large batch run in a worker thread, so that the event loop keeps answering meanwhile.
Records of a trusted organisation are approved as they are written (``approval.py``).
``preview_many`` is the dry run of the import page: the same judging (``_judge``), no write.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as parties
from timebank.core.access import Principal
from timebank.core.communities import community_zone
from timebank.core.policy import Policy, current_policy
from timebank.core.problems import Forbidden
from timebank.core.roles import PartyKind, Role
from timebank.volunteer import queries
from timebank.volunteer.approval import approve_new
from timebank.volunteer.checks import RecordRow, check_each, check_times
from timebank.volunteer.records import ImportTooLarge, RecordIn, record_view

MAX_ROWS = 20_000  # one import (Settings.import_max_rows); bounded like everything else
# Batches at least this large do their CPU-bound steps in a worker thread (a thread hop
# costs more than checking a handful of rows on the event loop).
THREAD_ROWS = 200
# Rows per INSERT: each statement's parameters are encoded on the event loop.
INSERT_CHUNK = 2_000

T = TypeVar("T")


@dataclass
class Outcome:
    accepted: list[dict[str, Any]] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)


async def _cpu(n: int, fn: Callable[..., T], *args: Any) -> T:
    """Run a CPU-bound step over ``n`` rows: in a worker thread when it is large."""
    if n >= THREAD_ROWS:
        return await asyncio.to_thread(fn, *args)
    return fn(*args)


def _live(rows: list[RecordRow]) -> list[RecordRow]:
    return [r for r in rows if r.reason is None]


def _fresh(rows: list[RecordRow]) -> list[RecordRow]:
    return [r for r in rows if r.reason is None and r.existing is None]


async def _judge(
    conn: AsyncConnection,
    principal: Principal,
    items: Sequence[RecordIn],
    *,
    now: datetime,
    derive_refs: bool,
    max_rows: int,
    lock: bool,
) -> tuple[list[RecordRow], Policy, int]:
    """Every row's verdict by every rule, nothing written: the rows (a ``reason`` for each
    rejected one, ``existing`` for one recorded before), the policy and its version.

    ``record_many`` writes what passes; ``preview_many`` only shows it. With ``lock``,
    the volunteers' rows stay locked until the transaction ends, so that the overlap and
    daily-cap checks cannot race with another writer.
    """
    assert conn.in_transaction()
    principal.require_writer()
    if principal.role not in (Role.ADMIN, Role.RECORDER):
        raise Forbidden("only admins and recorders record service")
    if len(items) > max_rows:
        raise ImportTooLarge(f"at most {max_rows} records at once")
    version, policy, _ = await current_policy(conn, principal.community_id)
    tz = await community_zone(conn, principal.community_id)
    rows = [RecordRow(item) for item in items]
    await _cpu(len(rows), check_each, rows, policy, principal, now, derive_refs)
    await _find_parties(conn, principal.community_id, _live(rows))
    await _find_duplicates(conn, _live(rows))
    fresh = _fresh(rows)
    if fresh:
        member_ids = sorted({r.member_id for r in fresh})  # type: ignore[type-var]
        if lock:
            await parties.lock_parties(conn, member_ids)  # overlap and cap checks must not race
        # Two days either side: a record that touches a local day of a new row is in.
        lo = min(r.given.started_at for r in fresh) - timedelta(days=2)
        hi = max(r.given.ended_at for r in fresh) + timedelta(days=2)
        stored = await queries.busy_times(conn, member_ids, lo, hi)
        await _cpu(len(fresh) + len(stored), check_times, fresh, stored, tz, policy.daily_cap_minutes)
    return rows, policy, version


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
    rows, policy, version = await _judge(
        conn, principal, items, now=now, derive_refs=derive_refs, max_rows=max_rows, lock=True
    )
    written = await _write(conn, principal, _fresh(rows))
    trusted = set(policy.trusted_organisations)
    approved = [r for r in _fresh(rows) if r.organisation_id in trusted]  # the policy trusts their records
    if approved:
        await approve_new(conn, principal, approved, policy, version)
        for x in await queries.records_by_ids(conn, [r.new_id for r in approved]):  # type: ignore[misc]
            written[x["id"]] = x  # as they are now
    return await _cpu(len(rows), _outcome, rows, written)


async def preview_many(
    conn: AsyncConnection,
    principal: Principal,
    items: Sequence[RecordIn],
    *,
    now: datetime,
    derive_refs: bool = False,
    max_rows: int = MAX_ROWS,
) -> Outcome:
    """What ``record_many`` would answer for these rows, by the same steps, writing nothing
    (a dry run: the import page shows it before anything is stored).

    Each accepted row: its ``line``, ``member_id``, ``minutes``, ``category``, whether it
    was recorded before (``duplicate``: importing it stores nothing) and whether the
    policy would approve it as it is written (``approved``). Rejected rows as in
    ``record_many``. Nothing is locked, so a row may still be refused when it is
    recorded if someone records the same volunteer meanwhile.
    """
    rows, policy, _ = await _judge(
        conn, principal, items, now=now, derive_refs=derive_refs, max_rows=max_rows, lock=False
    )
    return await _cpu(len(rows), _verdicts, rows, set(policy.trusted_organisations))


async def _find_parties(conn: AsyncConnection, community_id: uuid.UUID, live: list[RecordRow]) -> None:
    """Each row's organisation and volunteer, among the community's parties (a query each)."""
    orgs = {r.organisation_id for r in live}
    known_orgs = (
        {r.id for r in await parties.parties_of_kind(conn, community_id, PartyKind.ORGANISATION, orgs)}
        if orgs
        else set()
    )  # type: ignore[arg-type]
    ids = {r.given.member_id for r in live if r.given.member_id}
    refs = {r.given.member_ref for r in live if r.given.member_id is None and r.given.member_ref}
    members = (
        await parties.parties_of_kind(conn, community_id, PartyKind.MEMBER, ids, refs) if ids or refs else []
    )  # type: ignore[arg-type]
    by_id = {m.id for m in members}
    by_ref = {m.external_ref: m.id for m in members if m.external_ref}
    for r in live:
        if r.organisation_id not in known_orgs:
            r.reason = f"organisation {r.organisation_id} is not an organisation of this community"
            continue
        g = r.given
        if g.member_id is not None:
            r.member_id = g.member_id if g.member_id in by_id else None
        else:
            r.member_id = by_ref.get(g.member_ref or "")
        if r.member_id is None:
            r.reason = f"member {g.member_id or g.member_ref} is not a member of this community"


async def _find_duplicates(conn: AsyncConnection, live: list[RecordRow]) -> None:
    """The same external_ref of the same organisation is the same record: a stored one is
    the row's answer, a second one in the request is rejected."""
    keyed = [(r.organisation_id, r.given.external_ref) for r in live if r.given.external_ref]
    if not keyed:
        return
    # asyncpg records straight from the driver: an import may find thousands.
    existing = {
        (x["organisation_id"], x["external_ref"]): x for x in await queries.records_by_refs(conn, keyed)
    }  # type: ignore[arg-type]
    seen: dict[tuple[Any, str], RecordRow] = {}
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


def _new_records(rows: list[RecordRow]) -> list[queries.NewRecord]:
    """Each accepted row's columns, with a new random id (by the thousand, that takes a while)."""
    out = []
    for r in rows:
        r.new_id = uuid.uuid4()
        g = r.given
        out.append(
            queries.NewRecord(
                r.new_id,
                r.member_id,  # type: ignore[arg-type]
                r.organisation_id,  # type: ignore[arg-type]
                g.activity,
                r.category,
                g.place,
                g.started_at,
                g.ended_at,
                r.minutes,
                g.beneficiary,
                g.content,
                g.external_ref,
                g.source,
            )
        )
    return out


async def _write(conn: AsyncConnection, principal: Principal, fresh: list[RecordRow]) -> dict[uuid.UUID, Any]:
    """Write the accepted rows, a few thousand per statement; the stored rows by id."""
    new = await _cpu(len(fresh), _new_records, fresh)
    written: dict[uuid.UUID, Any] = {}
    for start in range(0, len(new), INSERT_CHUNK):
        part = new[start : start + INSERT_CHUNK]
        for x in await queries.insert_records(conn, principal.community_id, principal.key_id, part):
            written[x["id"]] = x
    return written


def _outcome(rows: list[RecordRow], by_id: dict[uuid.UUID, Any]) -> Outcome:
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
            rec = r.existing if duplicate else by_id.pop(r.new_id)  # type: ignore[arg-type]
            r.existing = None
            out.accepted.append({"line": line, **record_view(rec), "duplicate": duplicate})
    return out


def _verdicts(rows: list[RecordRow], trusted: set[uuid.UUID]) -> Outcome:
    """The answer of ``preview_many`` (CPU only)."""
    out = Outcome()
    for n, r in enumerate(rows):
        line = r.given.line if r.given.line is not None else n + 1
        if r.reason is not None:
            out.rejected.append({"line": line, "reason": r.reason})
            continue
        duplicate = r.existing is not None
        out.accepted.append(
            {
                "line": line,
                "member_id": str(r.existing["member_id"] if duplicate else r.member_id),
                "minutes": r.existing["minutes"] if duplicate else r.minutes,
                "category": r.existing["category"] if duplicate else r.category,
                "duplicate": duplicate,
                "approved": (r.existing["status"] == "approved")
                if duplicate
                else r.organisation_id in trusted,
            }
        )
        r.existing = None
    return out

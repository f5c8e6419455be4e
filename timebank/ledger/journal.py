"""The journal: a community's transactions, newest first, as its staff and board read them.

Filters: the kind, a date range (days in the community's time zone), an account or a
party (all its accounts), and "an amount over N" (N hours on HOUR legs, N points on
POINT legs). A page is read from a cursor, the (time, seq) of the last row shown.

How a page stays fast on millions of transactions (``queries.journal_rows``):

* kind, dates and cursor are answered by the index ``transactions_journal``
  (community, kind, created_at, seq), read backwards; all kinds: the seven reads merged;
* an account with few entries (a member's): its transactions are looked up by id;
* a filter that needs each transaction's entries (an amount, or a busy account such as
  the community fund's) looks at the newest ``WINDOW`` transactions a page at most. When
  fewer than a page matched there, the page says how far back it looked
  (``searched_to``) and its cursor continues from there.

Only the community's staff and board read the journal (``Forbidden`` for anyone else).
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, Forbidden, NotFound
from timebank.core.roles import Role
from timebank.ledger import queries
from timebank.ledger.queries import JOURNAL_KINDS, JournalScan
from timebank.ledger.transactions import get_transaction

PAGE = 50
FEW_ENTRIES = 2000  # an account with at most this many entries: its transactions by id
WINDOW = 5000  # transactions a page with a filter on entries looks at, at most
MAX_OVER = Decimal(10**9)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_CURSOR = re.compile(r"^(\d{1,17})\.(\d{1,19})$")


@dataclass(frozen=True)
class JournalQuery:
    kind: str | None = None
    first_day: date | None = None
    last_day: date | None = None  # inclusive
    holder: uuid.UUID | None = None  # an account, or a party (all its accounts)
    over: Decimal | None = None  # hours on HOUR legs, points on POINT legs
    cursor: str | None = None


def _staff_only(principal: Principal) -> None:
    if principal.role not in (Role.ADMIN, Role.AUDITOR):
        raise Forbidden("the journal is for the community's staff and board")


def encode_cursor(created_at: datetime, seq: int) -> str:
    return f"{(created_at - _EPOCH) // timedelta(microseconds=1)}.{seq}"


def decode_cursor(cursor: str | None) -> tuple[datetime, int] | None:
    if cursor is None:
        return None
    found = _CURSOR.match(cursor)
    if found is None:
        raise BadRequest("cursor is not a journal cursor")
    return _EPOCH + timedelta(microseconds=int(found.group(1))), int(found.group(2))


def _day_start(day: date, zone: ZoneInfo) -> datetime:
    return datetime.combine(day, time(0), zone).astimezone(UTC)


def _over(value: Decimal | None) -> tuple[int, int] | None:
    """(minutes, points) an entry must exceed: over N hours is over 60 N minutes."""
    if value is None:
        return None
    if not 0 <= value <= MAX_OVER:
        raise BadRequest(f"over is a number from 0 to {MAX_OVER}")
    return math.floor(value * 60), math.floor(value)


def legs(entries: Iterable[Any]) -> list[dict[str, Any]]:
    """A transaction's entries as movements from the debited account to the credited one.

    Per layer and asset, in written order: equal numbers of debits and credits of the
    same amounts pair up in order (the ledger writes each leg as one debit and one
    credit); one debit against several credits (or the reverse) spreads; anything else
    is shown entry by entry (the other side ``None``).
    """
    groups: dict[tuple[str, str], dict[str, list[Any]]] = {}
    for e in entries:
        groups.setdefault((e.layer, e.asset), {"debit": [], "credit": []})[e.direction].append(e)
    out: list[dict[str, Any]] = []

    def leg(debit: Any, credit: Any, amount: int, layer: str, asset: str) -> None:
        out.append(
            {
                "from": None if debit is None else str(debit.account_id),
                "to": None if credit is None else str(credit.account_id),
                "asset": asset,
                "amount": int(amount),
                "layer": layer,
            }
        )

    for (layer, asset), g in groups.items():
        debits, credits = g["debit"], g["credit"]
        if len(debits) == len(credits) and all(
            d.amount == c.amount for d, c in zip(debits, credits, strict=True)
        ):
            for d, c in zip(debits, credits, strict=True):
                leg(d, c, d.amount, layer, asset)
        elif len(debits) == 1:
            for c in credits:
                leg(debits[0], c, c.amount, layer, asset)
        elif len(credits) == 1:
            for d in debits:
                leg(d, credits[0], d.amount, layer, asset)
        else:
            for d in debits:
                leg(d, None, d.amount, layer, asset)
            for c in credits:
                leg(None, c, c.amount, layer, asset)
    return out


def _holders(entries: Iterable[Any]) -> dict[str, dict[str, str | None]]:
    return {
        str(e.account_id): {
            "party_id": None if e.party_id is None else str(e.party_id),
            "system_role": e.system_role,
        }
        for e in entries
    }


def _item(row: Any, entries: Sequence[Any]) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "kind": row.kind,
        "phase": row.phase,
        "memo": row.memo,
        "reason": row.reason,
        "created_at": rfc3339(row.created_at),
        "seq": row.seq,
        "pending_id": None if row.pending_id is None else str(row.pending_id),
        "reverses_id": None if row.reverses_id is None else str(row.reverses_id),
        "legs": legs(entries),
    }


async def journal_page(
    conn: AsyncConnection, principal: Principal, query: JournalQuery, zone: ZoneInfo, limit: int = PAGE
) -> dict[str, Any]:
    """A page of the community's transactions, newest first, with their legs.

    Answers ``items``, ``next_cursor``, ``searched_to`` (set when a filter on entries
    looked at its whole window without filling the page: the time it looked back to;
    ``next_cursor`` goes on from there), ``accounts`` (the holder of every account
    named in the legs: party or system role) and ``holder`` (the filter's accounts).
    """
    _staff_only(principal)
    if query.kind is not None and query.kind not in JOURNAL_KINDS:
        raise BadRequest(f"kind is one of {', '.join(JOURNAL_KINDS)}")
    since = None if query.first_day is None else _day_start(query.first_day, zone)
    until = None if query.last_day is None else _day_start(query.last_day + timedelta(days=1), zone)
    if since is not None and until is not None and since >= until:
        raise BadRequest("the first day is after the last day")
    ids = accounts = None
    holder: list[dict[str, Any]] | None = None
    if query.holder is not None:
        found = await queries.holder_accounts(conn, principal.community_id, query.holder)
        if not found:
            raise NotFound(f"no account or party {query.holder} in this community")
        holder = [
            {
                "account_id": str(a.id),
                "asset": a.asset,
                "party_id": None if a.party_id is None else str(a.party_id),
                "system_role": a.system_role,
            }
            for a in found
        ]
        account_ids = [a.id for a in found]
        if await queries.entries_on(conn, account_ids, FEW_ENTRIES + 1) <= FEW_ENTRIES:
            ids = tuple(await queries.transactions_touching(conn, account_ids))
        else:
            accounts = tuple(account_ids)
    scan = JournalScan(
        community_id=principal.community_id,
        kinds=JOURNAL_KINDS if query.kind is None else (query.kind,),
        since=since,
        until=until,
        before=decode_cursor(query.cursor),
        ids=ids,
        accounts=accounts,
        over=_over(query.over),
    )
    rows = await queries.journal_rows(conn, scan, limit + 1, WINDOW)
    more, rows = len(rows) > limit, rows[:limit]
    next_cursor = encode_cursor(rows[-1].created_at, rows[-1].seq) if more else None
    searched_to = None
    if not more and scan.sifted:
        end = await queries.journal_window_end(conn, scan, WINDOW)
        if end is not None:
            next_cursor, searched_to = encode_cursor(end.created_at, end.seq), rfc3339(end.created_at)
    entries = await queries.journal_entries(conn, [r.id for r in rows]) if rows else []
    by_tx: dict[uuid.UUID, list[Any]] = {}
    for e in entries:
        by_tx.setdefault(e.transaction_id, []).append(e)
    return {
        "items": [_item(r, by_tx.get(r.id, [])) for r in rows],
        "next_cursor": next_cursor,
        "searched_to": searched_to,
        "accounts": _holders(entries),
        "holder": holder,
    }


async def journal_transaction(
    conn: AsyncConnection, principal: Principal, tx_id: uuid.UUID
) -> dict[str, Any]:
    """A transaction as ``GET /v1/transactions/{id}`` shows it (status, entries, what
    resolved or reversed it), with its legs and the holder of each account."""
    _staff_only(principal)
    view = await get_transaction(conn, principal, tx_id)
    entries = await queries.journal_entries(conn, [tx_id])
    return {**view, "legs": legs(entries), "accounts": _holders(entries)}

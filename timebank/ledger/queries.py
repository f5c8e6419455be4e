"""Every read and write of the ledger's tables, for the ledger and for other packages.

The ledger owns ``accounts``, ``transactions``, ``entries`` and ``idempotency_keys``
(and the ``account_balances`` view); no other package queries them directly.

One way of reading throughout: typed SQLAlchemy Core statements on the SQLModel
table classes (``select(Account)``, ``select(Account.id, ...)``, ``insert``,
``update``) executed on an ``AsyncConnection``. They return ``Row`` objects whose
attributes are the model's columns (no ORM session, no identity map: the ledger's
rows are immutable or guarded by triggers, and a request reads each row once).
The hot path (``ledger_post_batch`` through asyncpg) stays in ``posting.py``; the two
statements written for asyncpg (the points expiry's locked balances and the record
of a rejection) are SQL constants here.

Balances: posted, pending and available are defined once, by the ``account_balances``
view (migration 0006); ``balances_of`` and ``lock_available`` read it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg
from sqlalchemy import (
    BigInteger,
    Row,
    and_,
    any_,
    delete,
    exists,
    func,
    insert,
    literal,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.orm import aliased

from timebank.core.terms import Kind
from timebank.db import text_array, uuid_array
from timebank.ledger.models import Account, Entry, IdempotencyRecord, LedgerTransaction, account_balances

_BALANCES = (
    account_balances.c.posted,
    account_balances.c.pending,
    account_balances.c.available,
    account_balances.c.pending_credits,
)
# An account with its balances (the view's formulas) in one row.
_ACCOUNT_WITH_BALANCES = select(Account, *_BALANCES).join(
    account_balances, account_balances.c.account_id == Account.id
)


# --- accounts --------------------------------------------------------------------------


async def accounts_by_id(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, Row[Any]]:
    """The community's accounts among ``ids`` (missing ones are simply absent)."""
    rows = await conn.execute(
        select(Account).where(Account.community_id == community_id, Account.id.in_(list(ids)))
    )
    return {r.id: r for r in rows}


async def account_in_community(
    conn: AsyncConnection, community_id: uuid.UUID, account_id: uuid.UUID
) -> Row[Any] | None:
    """One account of the community with its balances, or None."""
    stmt = _ACCOUNT_WITH_BALANCES.where(Account.id == account_id, Account.community_id == community_id)
    return (await conn.execute(stmt)).first()


async def lock_account(conn: AsyncConnection, account_id: uuid.UUID) -> Row[Any]:
    return (await conn.execute(select(Account).where(Account.id == account_id).with_for_update())).one()


async def lock_transactions(conn: AsyncConnection, ids: Iterable[uuid.UUID]) -> None:
    """Lock transactions (holds about to be resolved) in id order, as ledger_post_batch does first."""
    stmt = (
        select(LedgerTransaction.id)
        .where(LedgerTransaction.id == any_(uuid_array(sorted(set(ids)))))
        .order_by(LedgerTransaction.id)
        .with_for_update()
    )
    await conn.execute(stmt)


async def lock_accounts(conn: AsyncConnection, ids: Iterable[uuid.UUID]) -> dict[uuid.UUID, Row[Any]]:
    """Lock accounts in id order (the one order every posting locks in) and read them.

    For a database transaction that posts several times (a crossing's limits read
    before its parts, a batch's segments): taking every lock first, in this order,
    keeps two of them from deadlocking whatever they touch."""
    stmt = select(Account).where(Account.id == any_(uuid_array(sorted(set(ids))))).order_by(Account.id)
    return {r.id: r for r in (await conn.execute(stmt.with_for_update())).all()}


async def set_credit_limit(conn: AsyncConnection, account_id: uuid.UUID, limit: int) -> None:
    await conn.execute(update(Account).where(Account.id == account_id).values(credit_limit=limit))


async def accounts_of_party(conn: AsyncConnection, party_id: uuid.UUID) -> list[Row[Any]]:
    """A party's accounts with their balances, by asset."""
    stmt = _ACCOUNT_WITH_BALANCES.where(Account.party_id == party_id).order_by(Account.asset)
    return list((await conn.execute(stmt)).all())


async def party_account_ids(
    conn: AsyncConnection, party_ids: Sequence[uuid.UUID]
) -> dict[uuid.UUID, dict[str, str]]:
    """{party: {asset: account id}} for the parties given."""
    rows = await conn.execute(
        select(Account.party_id, Account.asset, Account.id)
        .where(Account.party_id == any_(uuid_array(party_ids)))
        .order_by(Account.party_id, Account.asset)
    )
    out: dict[uuid.UUID, dict[str, str]] = {}
    for r in rows:
        out.setdefault(r.party_id, {})[r.asset] = str(r.id)
    return out


async def party_account(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID, asset: str
) -> Row[Any] | None:
    """A party's account of one asset in the community, with its balances, or None."""
    stmt = _ACCOUNT_WITH_BALANCES.where(
        Account.party_id == party_id, Account.community_id == community_id, Account.asset == asset
    )
    return (await conn.execute(stmt)).first()


async def system_accounts(conn: AsyncConnection, community_id: uuid.UUID) -> list[Row[Any]]:
    stmt = select(Account.id, Account.system_role, Account.asset).where(
        Account.community_id == community_id, Account.system_role.is_not(None)
    )
    return list((await conn.execute(stmt)).all())


async def system_account_id(
    conn: AsyncConnection, community_id: uuid.UUID, role: str, asset: str
) -> uuid.UUID:
    """The id of one of the community's system accounts (``issuance``, ``expired``, ``fund``)."""
    stmt = select(Account.id).where(
        Account.community_id == community_id, Account.system_role == role, Account.asset == asset
    )
    return (await conn.execute(stmt)).scalar_one()


async def open_account(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    asset: str,
    *,
    guarded: bool,
    party_id: uuid.UUID | None = None,
    system_role: str | None = None,
) -> uuid.UUID:
    """A new account (of a party or a system role) with zero balances; its id."""
    stmt = (
        insert(Account)
        .values(
            community_id=community_id,
            asset=asset,
            party_id=party_id,
            system_role=system_role,
            debits_must_not_exceed_credits=guarded,
        )
        .returning(Account.id)
    )
    return (await conn.execute(stmt)).scalar_one()


# --- balances (the account_balances view) ----------------------------------------------


async def balances_of(
    conn: AsyncConnection, community_id: uuid.UUID, party_id: uuid.UUID, asset: str
) -> Row[Any] | None:
    """posted, pending, available, pending_credits and credit_limit of a party's account."""
    stmt = select(account_balances).where(
        account_balances.c.party_id == party_id,
        account_balances.c.community_id == community_id,
        account_balances.c.asset == asset,
    )
    return (await conn.execute(stmt)).first()


LOCK_AVAILABLE_SQL = (
    "SELECT account_id AS id, available FROM account_balances "
    "WHERE account_id = ANY($1::uuid[]) ORDER BY account_id FOR UPDATE"
)


async def lock_available(raw: asyncpg.Connection, account_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, int]:
    """Lock the accounts (in id order) and answer their available balances (asyncpg)."""
    return {r["id"]: int(r["available"]) for r in await raw.fetch(LOCK_AVAILABLE_SQL, list(account_ids))}


# --- transactions and entries ----------------------------------------------------------


async def canonical_rows(raw: asyncpg.Connection, ids: list[str]) -> tuple[list[Any], dict[str, list[Any]]]:
    """The rows of the transactions ``ids`` that their canonical form (the transparency
    log's leaves) is made of: (transactions, entries by transaction id), identifiers as
    text (the canonical form wants text, and asyncpg's UUID objects are slow to hash and
    decode: a third of the log integrator's time otherwise). asyncpg: thousands a pass.
    """
    txs = await raw.fetch(
        "SELECT id::text, community_id::text, kind, phase, memo, reason, pending_id::text, reverses_id::text, "
        "timeout_at, created_at FROM transactions WHERE id = ANY($1::text[]::uuid[])",
        ids,
    )
    legs: dict[str, list[Any]] = {}
    for e in await raw.fetch(
        "SELECT transaction_id::text, account_id::text, asset, direction, layer, amount FROM entries "
        "WHERE transaction_id = ANY($1::text[]::uuid[])",
        ids,
    ):
        legs.setdefault(e[0], []).append(e)
    return list(txs), legs


async def transaction_in_community(
    conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID
) -> Row[Any] | None:
    stmt = select(LedgerTransaction).where(
        LedgerTransaction.id == tx_id, LedgerTransaction.community_id == community_id
    )
    return (await conn.execute(stmt)).first()


async def entries_with_owners(conn: AsyncConnection, tx_id: uuid.UUID) -> list[Row[Any]]:
    """A transaction's entries in written order, each with its account's party (or system role)."""
    stmt = (
        select(
            Entry.account_id,
            Entry.asset,
            Entry.direction,
            Entry.layer,
            Entry.amount,
            Account.party_id,
            Account.system_role,
        )
        .join(Account, Account.id == Entry.account_id)
        .where(Entry.transaction_id == tx_id)
        .order_by(Entry.id)
    )
    return list((await conn.execute(stmt)).all())


async def related_transactions(conn: AsyncConnection, tx_id: uuid.UUID) -> list[Row[Any]]:
    """The transactions resolving (hold) or reversing ``tx_id``."""
    stmt = select(LedgerTransaction.id, LedgerTransaction.phase, LedgerTransaction.kind).where(
        or_(LedgerTransaction.pending_id == tx_id, LedgerTransaction.reverses_id == tx_id)
    )
    return list((await conn.execute(stmt)).all())


_ENTRIES_WITH_KIND = select(
    Entry.id,
    Entry.transaction_id,
    Entry.asset,
    Entry.direction,
    Entry.layer,
    Entry.amount,
    Entry.created_at,
    LedgerTransaction.kind,
    LedgerTransaction.phase,
    LedgerTransaction.memo,
).join(LedgerTransaction, LedgerTransaction.id == Entry.transaction_id)


async def entries_after(conn: AsyncConnection, account_id: uuid.UUID, after: int, n: int) -> list[Row[Any]]:
    """An account's entries with id above ``after``, oldest first, with their transaction's kind."""
    stmt = (
        _ENTRIES_WITH_KIND.where(Entry.account_id == account_id, Entry.id > after).order_by(Entry.id).limit(n)
    )
    return list((await conn.execute(stmt)).all())


async def posted_entries_before(
    conn: AsyncConnection, account_id: uuid.UUID, before: int | None, n: int
) -> list[Row[Any]]:
    """An account's entries of the posted layer with id below ``before``, newest first
    (index ``entries_account`` read backwards), with their transaction's kind."""
    stmt = _ENTRIES_WITH_KIND.where(Entry.account_id == account_id, Entry.layer == "posted")
    if before is not None:
        stmt = stmt.where(Entry.id < before)
    return list((await conn.execute(stmt.order_by(Entry.id.desc()).limit(n))).all())


async def timed_out_holds(conn: AsyncConnection, community_id: uuid.UUID, limit: int) -> list[uuid.UUID]:
    """Pending holds past their timeout that nothing resolved yet, oldest timeout first."""
    t, r = LedgerTransaction, aliased(LedgerTransaction)
    stmt = (
        select(t.id)
        .where(
            t.community_id == community_id,
            t.phase == "pending",
            t.timeout_at <= func.now(),
            ~exists().where(r.pending_id == t.id),
        )
        .order_by(t.timeout_at)
        .limit(limit)
    )
    return list((await conn.execute(stmt)).scalars())


async def communities_with_timed_out_holds(conn: AsyncConnection) -> list[uuid.UUID]:
    """The communities that have a pending hold past its timeout that nothing resolved yet."""
    t, r = LedgerTransaction, aliased(LedgerTransaction)
    stmt = (
        select(t.community_id)
        .distinct()
        .where(t.phase == "pending", t.timeout_at <= func.now(), ~exists().where(r.pending_id == t.id))
    )
    return list((await conn.execute(stmt)).scalars())


# --- the journal (staff console) --------------------------------------------------------

JOURNAL_KINDS = tuple(k.value for k in Kind)
_JOURNAL_COLUMNS = (
    LedgerTransaction.id,
    LedgerTransaction.kind,
    LedgerTransaction.phase,
    LedgerTransaction.memo,
    LedgerTransaction.reason,
    LedgerTransaction.created_at,
    LedgerTransaction.seq,
    LedgerTransaction.pending_id,
    LedgerTransaction.reverses_id,
)


@dataclass(frozen=True)
class JournalScan:
    """Which of a community's transactions a journal page reads, newest first.

    ``before``: (created_at, seq) of the last row already shown (exclusive);
    ``since``/``until``: created_at from (inclusive) / until (exclusive);
    ``ids``: only these transactions (an account's, when it has few);
    ``accounts``: only transactions with an entry on one of these (a busy account);
    ``over``: only transactions with an entry over (minutes of HOUR, POINTs).
    """

    community_id: uuid.UUID
    kinds: tuple[str, ...]
    since: datetime | None = None
    until: datetime | None = None
    before: tuple[datetime, int] | None = None
    ids: tuple[uuid.UUID, ...] | None = None
    accounts: tuple[uuid.UUID, ...] | None = None
    over: tuple[int, int] | None = None

    @property
    def sifted(self) -> bool:
        """Does a row need a look at its entries (a filter no index answers)?"""
        return self.accounts is not None or self.over is not None


def _newest_first(columns: Any) -> tuple[Any, ...]:
    return (columns.created_at.desc(), columns.seq.desc())


def _journal_branch(scan: JournalScan, kind: str | None, n: int) -> Any:
    """The newest ``n`` transactions of one kind (index ``transactions_journal`` read
    backwards) or, with ``scan.ids``, of those transactions (primary key lookups)."""
    t = LedgerTransaction
    stmt = select(*_JOURNAL_COLUMNS).where(t.community_id == scan.community_id)
    if scan.ids is not None:
        stmt = stmt.where(t.id == any_(uuid_array(scan.ids)))
        if set(scan.kinds) != set(JOURNAL_KINDS):
            stmt = stmt.where(t.kind.in_(scan.kinds))
    else:
        stmt = stmt.where(t.kind == kind)
    if scan.since is not None:
        stmt = stmt.where(t.created_at >= scan.since)
    if scan.until is not None:
        stmt = stmt.where(t.created_at < scan.until)
    if scan.before is not None:
        at, seq = scan.before
        stmt = stmt.where(tuple_(t.created_at, t.seq) < tuple_(at, literal(seq, BigInteger)))
    return stmt.order_by(*_newest_first(t)).limit(n)


def _journal_window(scan: JournalScan, n: int) -> Any:
    """The newest ``n`` transactions the scan's kinds, dates and cursor admit: per kind
    at most ``n`` from the index, merged (a sort of at most 7 × n rows)."""
    if scan.ids is not None:
        return _journal_branch(scan, None, n).subquery("w")
    if len(scan.kinds) == 1:
        return _journal_branch(scan, scan.kinds[0], n).subquery("w")
    merged = union_all(*(_journal_branch(scan, k, n) for k in scan.kinds)).subquery("u")
    return select(merged).order_by(*_newest_first(merged.c)).limit(n).subquery("w")


def _sift(scan: JournalScan, window: Any) -> Any:
    """Does a row of the window pass the filters on entries? A probe of its entries
    (index ``entries_transaction``) per row, whatever the plan: a scalar subquery is never
    turned into a join, which the generic plan of a busy account made into a hash of
    all its entries (measured: 100 ms a page instead of 4)."""
    e = Entry
    where = [e.transaction_id == window.c.id]
    if scan.accounts is not None:
        where.append(e.account_id == any_(uuid_array(scan.accounts)))
    if scan.over is not None:
        minutes, points = scan.over
        where.append(
            or_(and_(e.asset == "HOUR", e.amount > minutes), and_(e.asset == "POINT", e.amount > points))
        )
    return select(literal(1)).where(*where).limit(1).scalar_subquery().is_not(None)


async def journal_rows(conn: AsyncConnection, scan: JournalScan, n: int, window: int) -> list[Row[Any]]:
    """Up to ``n`` transactions of the scan, newest first. A scan that needs the entries
    (``scan.sifted``) looks only at the newest ``window`` transactions its other
    filters admit (``journal_window_end`` says where that window ended)."""
    if not scan.sifted:
        w = _journal_window(scan, n)
        return list((await conn.execute(select(w).order_by(*_newest_first(w.c)))).all())
    w = _journal_window(scan, window)
    stmt = select(w).where(_sift(scan, w)).order_by(*_newest_first(w.c)).limit(n)
    return list((await conn.execute(stmt)).all())


async def journal_window_end(conn: AsyncConnection, scan: JournalScan, window: int) -> Row[Any] | None:
    """The oldest transaction of a sifted scan's window when the window is full (more
    transactions may match beyond it), else None."""
    w = _journal_window(scan, window)
    stmt = select(w.c.created_at, w.c.seq, func.count().over().label("n")).order_by(w.c.created_at, w.c.seq)
    row = (await conn.execute(stmt.limit(1))).first()
    return row if row is not None and row.n >= window else None


async def holder_accounts(
    conn: AsyncConnection, community_id: uuid.UUID, holder_id: uuid.UUID
) -> list[Row[Any]]:
    """The community's account ``holder_id``, or the accounts of its party ``holder_id``."""
    stmt = select(Account.id, Account.asset, Account.party_id, Account.system_role).where(
        Account.community_id == community_id, or_(Account.id == holder_id, Account.party_id == holder_id)
    )
    return list((await conn.execute(stmt.order_by(Account.asset))).all())


async def entries_on(conn: AsyncConnection, account_ids: Sequence[uuid.UUID], limit: int) -> int:
    """How many entries the accounts have, counted up to ``limit`` (index ``entries_account`` only)."""
    some = select(Entry.id).where(Entry.account_id == any_(uuid_array(account_ids))).limit(limit).subquery()
    return (await conn.execute(select(func.count()).select_from(some))).scalar_one()


async def transactions_touching(conn: AsyncConnection, account_ids: Sequence[uuid.UUID]) -> list[uuid.UUID]:
    """The transactions with an entry on one of the accounts (each once)."""
    stmt = select(Entry.transaction_id).where(Entry.account_id == any_(uuid_array(account_ids))).distinct()
    return list((await conn.execute(stmt)).scalars())


async def journal_entries(conn: AsyncConnection, tx_ids: Sequence[uuid.UUID]) -> list[Row[Any]]:
    """The entries of the transactions, in written order, each with its account's holder."""
    stmt = (
        select(
            Entry.transaction_id,
            Entry.account_id,
            Entry.asset,
            Entry.direction,
            Entry.layer,
            Entry.amount,
            Account.party_id,
            Account.system_role,
        )
        .join(Account, Account.id == Entry.account_id)
        .where(Entry.transaction_id == any_(uuid_array(tx_ids)))
        .order_by(Entry.id)
    )
    return list((await conn.execute(stmt)).all())


# --- idempotency keys ------------------------------------------------------------------

# asyncpg: record a rejection as the key's answer (unless a concurrent request answered).
RECORD_ANSWER_SQL = (
    "INSERT INTO idempotency_keys (community_id, key, request_hash, principal_id, status_code, response) "
    "VALUES ($1, $2, $3, $4, $5, $6::jsonb) ON CONFLICT DO NOTHING RETURNING 1"
)


async def stored_answer(conn: AsyncConnection, community_id: uuid.UUID, key: str) -> Row[Any] | None:
    k = IdempotencyRecord
    stmt = select(k.request_hash, k.status_code, k.response, k.transaction_id).where(
        k.community_id == community_id, k.key == key
    )
    return (await conn.execute(stmt)).first()


async def stored_answers(
    conn: AsyncConnection, community_id: uuid.UUID, keys: Sequence[str]
) -> dict[str, Row[Any]]:
    """The answers already given to any of ``keys`` (a batch looks its keys up at once)."""
    k = IdempotencyRecord
    stmt = select(k.key, k.request_hash, k.status_code, k.response, k.transaction_id).where(
        k.community_id == community_id, k.key == any_(text_array(keys))
    )
    return {r.key: r for r in (await conn.execute(stmt)).all()}


async def remove_answers_before(conn: AsyncConnection, cutoff: datetime, n: int) -> int:
    """Remove at most ``n`` answers created before ``cutoff``; how many went."""
    k = IdempotencyRecord
    some = select(k.community_id, k.key).where(k.created_at < cutoff).limit(n)
    stmt = delete(k).where(k.created_at < cutoff, tuple_(k.community_id, k.key).in_(some))
    return (await conn.execute(stmt)).rowcount

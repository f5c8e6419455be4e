"""Batched posting: movements that arrive together are committed together.

TigerBeetle's lesson: batch instead of reacting to each event. Requests that arrive
while a batch is in flight wait for the next one, which takes them all (up to
``max_batch``) in one ``ledger_post_batch`` call: one round trip, one lock per
account, one commit. Under light load a batch is a single request and adds no delay;
under heavy load a hot account is locked once per batch instead of once per transfer.

A poster belongs to one engine (one database) and one event loop, and uses its own
connections (``lanes`` batches in flight at most), so request handlers waiting for a
batch never starve it of pooled connections.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Sequence
from typing import Any

import asyncpg
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.core.settings import get_settings
from timebank.counters import count_posted
from timebank.db import to_asyncpg_dsn
from timebank.outage import database_unavailable

BATCH_SQL = "SELECT n, code, detail, created_at, seq, timeout_at FROM ledger_post_batch($1::ledger_request[])"

Request = tuple[Any, ...]  # a ledger_request row, see migration 0001


async def post_batch(conn: asyncpg.Connection, requests: Sequence[Request]) -> list[asyncpg.Record]:
    rows = await conn.fetch(BATCH_SQL, list(requests))
    assert [r["n"] for r in rows] == list(range(1, len(requests) + 1)), (
        "ledger_post_batch answered out of order"
    )
    count_posted(requests, rows)
    return rows


class Poster:
    def __init__(self, dsn: str, *, lanes: int = 3, max_batch: int = 64) -> None:
        assert lanes >= 1 and 1 <= max_batch <= 1000
        self.dsn = dsn
        self.lanes = lanes
        self.max_batch = max_batch
        self._queue: list[tuple[Request, asyncio.Future[asyncpg.Record]]] = []
        self._idle: list[asyncpg.Connection] = []
        self._running = 0
        self._closed = False

    async def submit(self, request: Request) -> asyncpg.Record:
        if self._closed:
            raise RuntimeError("the poster is closed")
        future: asyncio.Future[asyncpg.Record] = asyncio.get_running_loop().create_future()
        self._queue.append((request, future))
        if self._running < self.lanes:
            self._running += 1
            asyncio.get_running_loop().create_task(self._lane())
        return await future

    async def _lane(self) -> None:
        try:
            while self._queue:
                batch, self._queue = self._queue[: self.max_batch], self._queue[self.max_batch :]
                await self._run(batch)
        finally:
            self._running -= 1

    async def _run(
        self, batch: list[tuple[Request, asyncio.Future[asyncpg.Record]]], fresh: bool = False
    ) -> None:
        conn = self._idle.pop() if self._idle and not fresh else None
        reused = conn is not None and not conn.is_closed()
        try:
            if conn is None or conn.is_closed():
                conn = await asyncpg.connect(
                    self.dsn, server_settings={"application_name": "timebank-poster"}
                )
            rows = await post_batch(conn, [request for request, _ in batch])
        except Exception as exc:
            broken = database_unavailable(exc) or not isinstance(exc, asyncpg.PostgresError)
            if conn is not None and not conn.is_closed():
                # Reuse it only after an error the server answered (its protocol cycle is
                # complete); a connection that failed otherwise (the server going away,
                # a client-side error) may be half-way through an operation: drop it.
                if broken:
                    conn.terminate()
                else:
                    self._idle.append(conn)
            if reused and broken:
                # An idle connection the server dropped (a restart) before asyncpg saw it
                # close: once more on a new one. Safe: every request here carries an
                # idempotency claim, so one that did commit comes back as a replay.
                await self._run(batch, fresh=True)
                return
            if len(batch) == 1:
                if not batch[0][1].done():
                    batch[0][1].set_exception(exc)
                return
            # One bad request (or a lost connection) must not fail its neighbours:
            # nothing of the failed batch was committed, so post each on its own.
            for item in batch:
                await self._run([item])
            return
        self._idle.append(conn)
        for (_, future), row in zip(batch, rows, strict=True):
            if not future.done():  # a cancelled request's movement still happened; its key replays it
                future.set_result(row)

    async def close(self) -> None:
        self._closed = True
        while self._running:  # noqa: ASYNC110 - once, at shutdown: a poll costs nothing here
            await asyncio.sleep(0.01)
        idle, self._idle = self._idle, []
        for conn in idle:
            await conn.close()


_posters: weakref.WeakKeyDictionary[Any, Poster] = weakref.WeakKeyDictionary()


def poster_for(engine: AsyncEngine) -> Poster:
    """The engine's poster, made on first use."""
    poster = _posters.get(engine.sync_engine)
    if poster is None or poster._closed:
        settings = get_settings()
        poster = Poster(
            to_asyncpg_dsn(engine.url.render_as_string(hide_password=False)),
            lanes=settings.post_lanes,
            max_batch=settings.post_max_batch,
        )
        _posters[engine.sync_engine] = poster
    return poster


async def close_poster(engine: AsyncEngine) -> None:
    poster = _posters.pop(engine.sync_engine, None)
    if poster is not None:
        await poster.close()

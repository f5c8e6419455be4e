"""What every command shares: the group, the database, one engine, JSON out, stopping.

Every command resolves the database the same way: ``TIMEBANK_DATABASE_URL`` if set,
else the embedded server in ``TIMEBANK_DATA_DIR`` (shared with a running ``serve``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import click
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank import db
from timebank.core.settings import Settings, get_settings


def database() -> str:
    return db.resolve_database_url(get_settings())


def emit(data: Any) -> None:
    click.echo(json.dumps(data, ensure_ascii=False, indent=2))


@asynccontextmanager
async def open_engine(
    url: str, settings: Settings | None = None, pool_size: int | None = None
) -> AsyncIterator[AsyncEngine]:
    """The one way a command opens (and always closes) its engine."""
    settings = settings or get_settings()
    made = db.create_engine(url, settings if pool_size is None else settings.with_(db_pool_size=pool_size))
    try:
        yield made
    finally:
        await made.dispose()


async def until_stopped(parent: int | None) -> None:
    """Until SIGTERM or SIGINT, or until the parent process (serve) is gone."""
    stopping = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stopping.set)
    while not stopping.is_set():
        if parent is not None and os.getppid() != parent:
            break  # serve is gone
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stopping.wait(), 1.0)


@click.group()
@click.version_option(package_name="timebank")
def main() -> None:
    """timebank: community public-welfare bank."""

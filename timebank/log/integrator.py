"""The background integrator: every interval, append what is queued and sign checkpoints.

It runs in every service process (unless ``TIMEBANK_LOG_INTEGRATOR=false``); per
community only one integrator works at a time (advisory lock), so replicas share the
work and never duplicate it. A failed pass is logged and retried on the next tick:
the queue keeps everything until it is integrated.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from sqlalchemy.ext.asyncio import AsyncEngine

from timebank import logs, outage
from timebank.log.integration import integrate_all
from timebank.log.keys import Signer
from timebank.log.timestamps import MAXIMUM_MERGE_DELAY_SECONDS


class Integrator:
    def __init__(
        self, engine: AsyncEngine, signer: Signer, origin_prefix: str, interval_seconds: float
    ) -> None:
        assert 0 < interval_seconds <= MAXIMUM_MERGE_DELAY_SECONDS
        self.engine = engine
        self.signer = signer
        self.origin_prefix = origin_prefix
        self.interval = interval_seconds
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()

    def start(self) -> None:
        assert self._task is None
        self._task = asyncio.get_running_loop().create_task(self._run(), name="log-integrator")

    async def _run(self) -> None:
        while not self._stopping.is_set():
            started = time.monotonic()
            try:
                await integrate_all(self.engine, self.signer, self.origin_prefix)
            except Exception as exc:
                if not outage.report(exc):  # a database outage is logged once, not every pass
                    logs.log.error("log integration failed", error=type(exc).__name__, exc_info=exc)
            delay = max(0.0, self.interval - (time.monotonic() - started))
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)

    async def stop(self) -> None:
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

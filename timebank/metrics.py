"""Prometheus metrics at GET /metrics.

* Requests: Litestar's Prometheus middleware (``timebank_requests_total``,
  ``timebank_request_duration_seconds`` by method, route template and status).
* The ledger: ``timebank_transactions_posted_total{kind}`` and
  ``timebank_ledger_rejections_total{reason}``, counted where every movement is posted
  (``ledger.posting.post_batch``; the counters live in ``counters.py``, low in the
  import order, because the ledger imports them).
* State read from the database at each scrape, so any replica answers the same and
  a worker without HTTP needs no endpoint of its own: the logs' size, checkpoint age
  and lag (the oldest transaction not yet in a checkpoint), the scheduled jobs' last
  success, duration and runs of the last 24 hours, and the last nightly audit (read
  through ``log.queries`` and ``jobs.queries``).

Several service processes (``serve --workers N``) share counters through
prometheus_client's multiprocess mode: ``serve`` sets ``PROMETHEUS_MULTIPROC_DIR``.

Access: the route is outside the API-key middleware (Prometheus holds no API key),
so the controller's own guard decides, for whatever path reaches it (``/metrics``,
``/metrics/``): with ``TIMEBANK_METRICS_TOKEN`` set, only ``Authorization: Bearer
<token>`` (Prometheus' ``authorization`` scrape setting) gets the metrics, anything
else a 401; without a token the route answers 404, as if it did not exist.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any, ClassVar

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig, PrometheusMiddleware
from litestar.status_codes import HTTP_500_INTERNAL_SERVER_ERROR
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from timebank.core.access import PUBLIC
from timebank.jobs import queries as job_queries
from timebank.log import queries as log_queries


class RequestMetrics(PrometheusMiddleware):
    """Litestar's Prometheus middleware, the same metrics, names and labels, cheaper per
    request: each label set's children (in-progress gauge, count, duration) are looked up
    once and kept, and the response is watched by a plain closure. Litestar's looks them
    up again on every request (four ``labels()`` calls, a ``Request`` and ``functools.wraps``):
    22 us a request in multiprocess mode against about 9 here, on a 0.6 ms transfer."""

    _children: ClassVar[dict[tuple[str, str, int], tuple[Any, Any]]] = {}
    _in_progress: ClassVar[dict[tuple[str, str], Any]] = {}

    def __init__(self, app: Any, config: PrometheusConfig) -> None:
        # what __call__ below does not do: extra labels, exemplars, ungrouped paths, skipped methods
        assert config.group_path and not config.labels and not config.exemplars
        assert not config.excluded_http_methods
        super().__init__(app, config)

    def _labels(self, method: str, path: str, status: int) -> dict[str, str | int | float]:
        return {"method": method, "path": path, "status_code": status, "app_name": self._config.app_name}

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        method = scope["method"] if scope["type"] == ScopeType.HTTP else scope["type"]
        path = scope["path_template"]
        in_progress = self._in_progress.get((method, path))
        if in_progress is None:
            labels = self._labels(method, path, 200)
            in_progress = self.requests_in_progress(labels).labels(*labels.values())
            self._in_progress[(method, path)] = in_progress
        started = time.perf_counter()
        status, duration = 200, 0.0

        async def watched_send(message: Any) -> None:
            nonlocal status, duration
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                duration = time.perf_counter() - started
            await send(message)

        in_progress.inc()
        try:
            await self.app(scope, receive, watched_send)
        finally:
            in_progress.dec()
            children = self._children.get((method, path, status))
            if children is None:
                labels = self._labels(method, path, status)
                values = [*labels.values()]
                children = (
                    self.request_count(labels).labels(*values),
                    self.request_time(labels).labels(*values),
                )
                self._children[(method, path, status)] = children
            if status >= HTTP_500_INTERNAL_SERVER_ERROR:  # made on the first error, as Litestar's
                labels = self._labels(method, path, status)
                self.requests_error_count(labels).labels(*labels.values()).inc()
            children[0].inc()
            children[1].observe(duration)


PROMETHEUS = PrometheusConfig(
    app_name="timebank",
    prefix="timebank",
    group_path=True,
    exclude=["^/metrics", "^/health"],
    middleware_class=RequestMetrics,
)

EXPOSITION_TYPE = "text/plain; version=0.0.4"


class _Snapshot:
    """A collector of gauges already read from the database."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families


def _gauge(name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, doc, labels=list(labels))


async def _log_gauges(conn: Any) -> list[GaugeMetricFamily]:
    size = _gauge("timebank_log_tree_size", "Leaves in the community's latest checkpoint", "community_id")
    age = _gauge(
        "timebank_log_checkpoint_age_seconds", "Age of the community's latest checkpoint", "community_id"
    )
    lag = _gauge(
        "timebank_log_lag_seconds",
        "Age of the oldest transaction not yet in a signed checkpoint (0: none waits)",
        "community_id",
    )
    for r in await log_queries.log_freshness(conn):
        if r.tree_size is not None:
            size.add_metric([str(r.id)], r.tree_size)
            age.add_metric([str(r.id)], float(r.age))
        lag.add_metric([str(r.id)], float(r.lag))
    return [size, age, lag]


async def _job_gauges(conn: Any) -> list[GaugeMetricFamily]:
    last = _gauge(
        "timebank_job_last_success_timestamp_seconds", "When the job last finished a run", "job", "scope"
    )
    took = _gauge(
        "timebank_job_last_duration_seconds", "How long the job's last finished run took", "job", "scope"
    )
    for r in await job_queries.last_successes(conn):
        last.add_metric([r.job, r.scope], r.finished_at.timestamp())
        if r.counts.get("seconds") is not None:
            took.add_metric([r.job, r.scope], float(r.counts["seconds"]))
    runs = _gauge(
        "timebank_job_runs_24h", "Job runs started in the last 24 hours, by outcome", "job", "status"
    )
    for r in await job_queries.runs_started_within(conn, timedelta(hours=24)):
        runs.add_metric([r.job, r.status], r.n)
    audit = _gauge("timebank_audit_ok", "1 if the last nightly audit found no difference, 0 if it did")
    row = await job_queries.last_finished(conn, "audit")
    if row is not None:
        audit.add_metric([], 1.0 if row.status == "done" and row.counts.get("ok") is True else 0.0)
    return [last, took, runs, audit]


async def _database_gauges(conn: Any) -> list[GaugeMetricFamily]:
    return [*await _log_gauges(conn), *await _job_gauges(conn)]


def _digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


def require_metrics_token(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
    """The metrics token, compared in constant time (of equal-length digests), or no metrics."""
    expected = connection.app.state.settings.metrics_token
    if not expected:  # metrics are off: the same 404 as a path that does not exist
        raise NotFoundException()
    scheme, _sep, given = connection.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(_digest(given.strip()), _digest(expected)):
        raise NotAuthorizedException(
            "send the metrics token as 'Authorization: Bearer <TIMEBANK_METRICS_TOKEN>'"
        )


class MetricsController(Controller):
    path = "/metrics"
    tags = ["operations"]
    # Public to the API-key middleware (Prometheus has no API key); this guard is the rule.
    guards = [require_metrics_token]

    @get(
        "/", opt=PUBLIC, include_in_schema=False, summary="Prometheus metrics (Bearer TIMEBANK_METRICS_TOKEN)"
    )
    async def metrics(self, request: Request) -> Response[bytes]:
        registry: Any = REGISTRY
        if "PROMETHEUS_MULTIPROC_DIR" in os.environ:
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        snapshot = CollectorRegistry(auto_describe=False)
        async with (
            request.app.state.engine.connect() as conn
        ):  # (not web.engine: posting imports this module)
            snapshot.register(_Snapshot(await _database_gauges(conn)))  # type: ignore[arg-type]
        body = generate_latest(registry) + generate_latest(snapshot)
        # Prometheus' text format; Litestar adds "; charset=utf-8" to a text type (once).
        return Response(body, media_type=EXPOSITION_TYPE)

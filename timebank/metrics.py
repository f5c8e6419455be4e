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
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily

from timebank.core.access import PUBLIC
from timebank.jobs import queries as job_queries
from timebank.log import queries as log_queries

PROMETHEUS = PrometheusConfig(
    app_name="timebank", prefix="timebank", group_path=True, exclude=["^/metrics", "^/health"]
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

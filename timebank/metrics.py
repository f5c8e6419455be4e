"""Prometheus metrics at GET /metrics.

* Requests: Litestar's Prometheus middleware (``timebank_requests_total``,
  ``timebank_request_duration_seconds`` by method, route template and status).
* The ledger: ``timebank_transactions_posted_total{kind}`` and
  ``timebank_ledger_rejections_total{reason}``, counted where every movement is posted
  (``ledger.posting.post_batch``).
* State read from the database at each scrape, so any replica answers the same and
  a worker without HTTP needs no endpoint of its own: the logs' size, checkpoint age
  and lag (the oldest transaction not yet in a checkpoint), the scheduled jobs' last
  success, duration and runs of the last 24 hours, and the last nightly audit.

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
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, NotFoundException
from litestar.handlers.base import BaseRouteHandler
from litestar.plugins.prometheus import PrometheusConfig
from prometheus_client import REGISTRY, CollectorRegistry, Counter, generate_latest, multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from sqlalchemy import text

from timebank.security import PUBLIC

PROMETHEUS = PrometheusConfig(
    app_name="timebank", prefix="timebank", group_path=True, exclude=["^/metrics", "^/health"]
)

TRANSACTIONS_POSTED = Counter("timebank_transactions_posted", "Ledger transactions posted, by kind", ["kind"])
LEDGER_REJECTIONS = Counter(
    "timebank_ledger_rejections", "Movements the ledger refused, by reason", ["reason"]
)


def count_posted(requests: Any, answers: Any) -> None:
    for request, answer in zip(requests, answers, strict=True):
        code = answer["code"]
        if code == "ok":
            TRANSACTIONS_POSTED.labels(kind=request[2]).inc()
        elif code != "replay":  # a replay is an idempotent answer, not a refusal
            LEDGER_REJECTIONS.labels(reason=code).inc()


class _Snapshot:
    """A collector of gauges already read from the database."""

    def __init__(self, families: list[GaugeMetricFamily]) -> None:
        self.families = families

    def collect(self) -> Iterator[GaugeMetricFamily]:
        yield from self.families


async def _database_gauges(conn: Any) -> list[GaugeMetricFamily]:
    size = GaugeMetricFamily(
        "timebank_log_tree_size", "Leaves in the community's latest checkpoint", labels=["community_id"]
    )
    age = GaugeMetricFamily(
        "timebank_log_checkpoint_age_seconds",
        "Age of the community's latest checkpoint",
        labels=["community_id"],
    )
    lag = GaugeMetricFamily(
        "timebank_log_lag_seconds",
        "Age of the oldest transaction not yet in a signed checkpoint (0: none waits)",
        labels=["community_id"],
    )
    for r in await conn.execute(
        text(
            "SELECT c.id, k.tree_size, extract(epoch FROM now() - k.created_at) AS age, "
            "       coalesce(extract(epoch FROM now() - (SELECT min(t.created_at) FROM log_queue q "
            "           JOIN transactions t ON t.id = q.transaction_id WHERE q.community_id = c.id)), 0) AS lag "
            "FROM communities c LEFT JOIN LATERAL (SELECT tree_size, created_at FROM log_checkpoints "
            "   WHERE community_id = c.id ORDER BY tree_size DESC LIMIT 1) k ON true"
        )
    ):
        if r.tree_size is not None:
            size.add_metric([str(r.id)], r.tree_size)
            age.add_metric([str(r.id)], float(r.age))
        lag.add_metric([str(r.id)], float(r.lag))
    last = GaugeMetricFamily(
        "timebank_job_last_success_timestamp_seconds",
        "When the job last finished a run",
        labels=["job", "scope"],
    )
    took = GaugeMetricFamily(
        "timebank_job_last_duration_seconds",
        "How long the job's last finished run took",
        labels=["job", "scope"],
    )
    for r in await conn.execute(
        text(
            "SELECT DISTINCT ON (job, scope) job, scope, extract(epoch FROM finished_at) AS at, "
            "counts->>'seconds' AS s "
            "FROM job_runs WHERE status = 'done' ORDER BY job, scope, finished_at DESC"
        )
    ):
        last.add_metric([r.job, r.scope], float(r.at))
        if r.s is not None:
            took.add_metric([r.job, r.scope], float(r.s))
    runs = GaugeMetricFamily(
        "timebank_job_runs_24h", "Job runs started in the last 24 hours, by outcome", labels=["job", "status"]
    )
    for r in await conn.execute(
        text(
            "SELECT job, status, count(*) AS n FROM job_runs WHERE started_at > now() - interval '24 hours' "
            "GROUP BY job, status"
        )
    ):
        runs.add_metric([r.job, r.status], r.n)
    audit = GaugeMetricFamily(
        "timebank_audit_ok", "1 if the last nightly audit found no difference, 0 if it did"
    )
    row = (
        await conn.execute(
            text(
                "SELECT status, counts->>'ok' AS ok FROM job_runs WHERE job = 'audit' AND status <> 'running' "
                "ORDER BY started_at DESC LIMIT 1"
            )
        )
    ).first()
    if row is not None:
        audit.add_metric([], 1.0 if row.status == "done" and row.ok == "true" else 0.0)
    return [size, age, lag, last, took, runs, audit]


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
        return Response(body, media_type=CONTENT_TYPE_LATEST)

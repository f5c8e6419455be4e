"""The ledger's Prometheus counters, counted where every movement is posted
(``ledger.posting.post_batch``).

Apart from ``metrics.py`` (the /metrics route and the gauges it reads from the
database through the packages' queries) so the ledger, low in the import order,
imports only these counters and nothing above it. They register with
prometheus_client's default registry, which the /metrics route exposes.
"""

from __future__ import annotations

from typing import Any

from prometheus_client import Counter

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

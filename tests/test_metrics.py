"""GET /metrics: Prometheus text with request latency by route and status, ledger
postings by kind and rejections by reason, job runs, log size and checkpoint age."""

from __future__ import annotations

import re

from prometheus_client.parser import text_string_to_metric_families


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(scraped: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in scraped.items() if n == name and set(labels.items()) <= set(ls))


async def test_metrics_count_requests_postings_rejections_and_read_the_log_and_jobs(client, tenant, engine):
    from timebank.jobs.runner import run_once

    before = samples((await client.get("/metrics")).text)
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 10)
    ok = await tenant.transfer({"from_account": a["accounts"]["HOUR"], "to_account": b["accounts"]["HOUR"],
                                "asset": "HOUR", "amount": 3})
    assert ok.status_code == 201
    refused = await tenant.transfer({"from_account": a["accounts"]["HOUR"], "to_account": b["accounts"]["HOUR"],
                                     "asset": "HOUR", "amount": 1000})
    assert refused.status_code == 422
    await tenant.integrate()

    async def work() -> dict:
        return {"things": 1}

    await run_once(engine, "log-checkpoints", "all", "2000-01-01T00:00Z", work)
    r = await client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    after = samples(r.text)
    assert value(after, "timebank_transactions_posted_total", kind="transfer") - value(
        before, "timebank_transactions_posted_total", kind="transfer") == 1
    assert value(after, "timebank_transactions_posted_total", kind="adjustment") - value(
        before, "timebank_transactions_posted_total", kind="adjustment") == 1
    assert value(after, "timebank_ledger_rejections_total", reason="insufficient_funds") - value(
        before, "timebank_ledger_rejections_total", reason="insufficient_funds") == 1
    # request latency by route template and status
    assert value(after, "timebank_request_duration_seconds_count", path="/v1/transfers", status_code="201") >= 1
    assert value(after, "timebank_request_duration_seconds_count", path="/v1/transfers", status_code="422") >= 1
    assert not any("/v1/members/" in dict(ls).get("path", "") and re.search(r"[0-9a-f]{8}-", dict(ls)["path"])
                   for (_, ls) in after)  # templates, not ids
    # the database's view: log size, checkpoint age and lag, job runs
    assert value(after, "timebank_log_tree_size", community_id=tenant.id) == 2  # the refusal is no transaction
    assert 0 <= value(after, "timebank_log_checkpoint_age_seconds", community_id=tenant.id) < 60
    assert value(after, "timebank_log_lag_seconds", community_id=tenant.id) == 0
    assert value(after, "timebank_job_last_success_timestamp_seconds", job="log-checkpoints", scope="all") > 0
    assert ("timebank_job_runs_24h", (("job", "log-checkpoints"), ("status", "done"))) in after

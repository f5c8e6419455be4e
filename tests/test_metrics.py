"""GET /metrics: Prometheus text with request latency by route and status, ledger
postings by kind and rejections by reason, job runs, log size and checkpoint age;
only for the metrics token (TIMEBANK_METRICS_TOKEN), on every spelling of the path."""

from __future__ import annotations

import re

import pytest
from prometheus_client.parser import text_string_to_metric_families
from support import problem

from timebank.core.settings import Settings

TOKEN = "metrics-token-for-tests-0123456789"
SCRAPE = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def metrics_token(client, monkeypatch):
    """The app's settings with a metrics token, for this test only."""
    state = client.app.state
    monkeypatch.setattr(state, "settings", state.settings.with_(metrics_token=TOKEN))
    return TOKEN


async def get_raw(client, raw_path: bytes, headers: dict[str, str] | None = None):
    """GET with the path exactly as given (httpx would read '//metrics' as a host)."""
    request = client.build_request("GET", "/", headers=headers)
    request.url = request.url.copy_with(raw_path=raw_path)
    return await client.send(request)


# Every spelling the router takes for the metrics route, and some it does not.
SAME_ROUTE = [
    b"/metrics",
    b"/metrics/",
    b"//metrics",
    b"///metrics/",
    b"/metrics//",
    b"/metrics/.",
    b"/%6detrics",
    b"/metrics?format=text",
]
NOT_THE_ROUTE = [b"/METRICS", b"/Metrics/", b"/metrics/x", b"/metrics.txt"]


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(scraped: dict, name: str, **labels: str) -> float:
    return sum(v for (n, ls), v in scraped.items() if n == name and set(labels.items()) <= set(ls))


async def test_metrics_count_requests_postings_rejections_and_read_the_log_and_jobs(
    client, tenant, engine, metrics_token
):
    from timebank.jobs.runner import run_once

    before = samples((await client.get("/metrics", headers=SCRAPE)).text)
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 10)
    ok = await tenant.transfer(
        {
            "from_account": a["accounts"]["HOUR"],
            "to_account": b["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 3,
        }
    )
    assert ok.status_code == 201
    refused = await tenant.transfer(
        {
            "from_account": a["accounts"]["HOUR"],
            "to_account": b["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 1000,
        }
    )
    assert refused.status_code == 422
    await tenant.integrate()

    async def work() -> dict:
        return {"things": 1}

    await run_once(engine, "log-checkpoints", "all", "2000-01-01T00:00Z", work)
    r = await client.get("/metrics", headers=SCRAPE)
    assert r.status_code == 200 and r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    after = samples(r.text)
    assert (
        value(after, "timebank_transactions_posted_total", kind="transfer")
        - value(before, "timebank_transactions_posted_total", kind="transfer")
        == 1
    )
    assert (
        value(after, "timebank_transactions_posted_total", kind="adjustment")
        - value(before, "timebank_transactions_posted_total", kind="adjustment")
        == 1
    )
    assert (
        value(after, "timebank_ledger_rejections_total", reason="insufficient_funds")
        - value(before, "timebank_ledger_rejections_total", reason="insufficient_funds")
        == 1
    )
    # request latency by route template and status
    assert (
        value(after, "timebank_request_duration_seconds_count", path="/v1/transfers", status_code="201") >= 1
    )
    assert (
        value(after, "timebank_request_duration_seconds_count", path="/v1/transfers", status_code="422") >= 1
    )
    assert not any(
        "/v1/members/" in dict(ls).get("path", "") and re.search(r"[0-9a-f]{8}-", dict(ls)["path"])
        for (_, ls) in after
    )  # templates, not ids
    # the database's view: log size, checkpoint age and lag, job runs
    assert (
        value(after, "timebank_log_tree_size", community_id=tenant.id) == 2
    )  # the refusal is no transaction
    assert 0 <= value(after, "timebank_log_checkpoint_age_seconds", community_id=tenant.id) < 60
    assert value(after, "timebank_log_lag_seconds", community_id=tenant.id) == 0
    assert value(after, "timebank_job_last_success_timestamp_seconds", job="log-checkpoints", scope="all") > 0
    assert ("timebank_job_runs_24h", (("job", "log-checkpoints"), ("status", "done"))) in after


async def test_metrics_answer_only_the_metrics_token_on_every_spelling_of_the_path(
    client, tenant, metrics_token
):
    for raw in SAME_ROUTE:
        ok = await get_raw(client, raw, SCRAPE)
        assert ok.status_code == 200, (raw, ok.text)
        assert "timebank_transactions_posted_total" in ok.text or "# TYPE" in ok.text
        for headers in (
            None,
            {"Authorization": "Bearer wrong-token-wrong-token-wrong"},
            {"Authorization": f"Bearer {TOKEN}x"},
            {"Authorization": f"Bearer {TOKEN[:-1]}"},
            {"Authorization": f"Basic {TOKEN}"},
            {"Authorization": TOKEN},
            tenant.auth(),  # an API key, even an admin's, is not the metrics token
            {"X-Metrics-Token": TOKEN},
        ):
            r = await get_raw(client, raw, headers)
            body = problem(r, 401, "unauthorized")
            assert r.headers["www-authenticate"] == "Bearer" and "timebank_" not in r.text, (raw, headers)
            assert "TIMEBANK_METRICS_TOKEN" in body["detail"] and TOKEN not in r.text
    # the scheme is case-insensitive (RFC 9110), the token is not
    assert (await client.get("/metrics", headers={"Authorization": f"bearer {TOKEN}"})).status_code == 200
    assert (
        await client.get("/metrics", headers={"Authorization": f"Bearer {TOKEN.upper()}"})
    ).status_code == 401
    for raw in NOT_THE_ROUTE:  # other paths are not the metrics route: nothing there, token or not
        r = await get_raw(client, raw, SCRAPE)
        assert r.status_code in (404, 405) and "timebank_" not in r.text, raw
    # other methods get nothing either
    for method in ("POST", "PUT", "DELETE"):
        r = await client.request(method, "/metrics", headers=SCRAPE)
        assert r.status_code == 405 and "timebank_" not in r.text


async def test_without_a_metrics_token_the_route_does_not_exist(client, tenant):
    assert client.app.state.settings.metrics_token is None
    unknown = await client.get("/no-such-route")
    for raw in SAME_ROUTE:
        for headers in (None, SCRAPE, {"Authorization": "Bearer "}, tenant.auth()):
            r = await get_raw(client, raw, headers)
            body = problem(r, 404, "not-found")
            assert {k: v for k, v in body.items() if k != "instance"} == {
                k: v for k, v in unknown.json().items() if k != "instance"
            }, raw  # the same as no route at all


@pytest.mark.parametrize("token", ["short", "x" * 15, "tab\tinside-a-token-0123"])
def test_a_weak_metrics_token_stops_the_service_at_start(monkeypatch, token):
    monkeypatch.setenv("TIMEBANK_METRICS_TOKEN", token)
    with pytest.raises(SystemExit, match="TIMEBANK_METRICS_TOKEN"):
        Settings.from_env()


def test_the_metrics_token_is_read_from_the_environment(monkeypatch):
    monkeypatch.setenv("TIMEBANK_METRICS_TOKEN", f" {TOKEN}\n")  # a file's trailing newline is no part of it
    assert Settings.from_env().metrics_token == TOKEN
    monkeypatch.setenv("TIMEBANK_METRICS_TOKEN", "")
    assert Settings.from_env().metrics_token is None

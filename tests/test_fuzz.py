"""An API fuzzer (Schemathesis) over the whole OpenAPI schema, with an admin and a resident key.

Every operation of GET /schema/openapi.json gets generated requests, valid and invalid
(Hypothesis' fuzzing in positive and negative mode, half of the ids swapped for real
objects of a seeded community; then Schemathesis' boundary values and unsupported
methods). No answer may be a 5xx, and every answer must be documented: its status code,
its content type, its body against the schema of that status. The boundary run also
asks that what the schema calls invalid is refused, and that a method a path does not
have is a 405 with ``Allow``. So the schema's limits and answers (timebank/schemas.py)
cannot drift from what the service does.

Bounded for the test suite (15 examples per operation and mode, a fixed seed, about a
minute on two cores); explore with TIMEBANK_FUZZ_EXAMPLES=200 TIMEBANK_FUZZ_RANDOM=1 (a
new seed each run). Select it with ``-m fuzz``, leave it out with ``-m "not fuzz"``.
"""

from __future__ import annotations

import os
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import hypothesis
import pytest
import pytest_asyncio
import schemathesis
from conftest import Tenant
from hypothesis import HealthCheck
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis import checks as builtin_checks
from schemathesis.engine import events as engine_events
from schemathesis.engine import from_schema as engine_for
from schemathesis.python import asgi

from timebank.app import create_app
from timebank.community.service import create_community

pytestmark = pytest.mark.fuzz

EXAMPLES = int(os.environ.get("TIMEBANK_FUZZ_EXAMPLES", "15"))
RANDOM = os.environ.get("TIMEBANK_FUZZ_RANDOM", "") not in ("", "0")
# Schemathesis' in-process client names this host; the fuzzed app is told to answer for it.
HOST = asgi.HOST
ANSWERS: Counter[tuple[str, int]] = Counter()  # (operation, status) -> answers, shown with -s


@dataclass
class Seed:
    """A community with one of everything, for requests that name real objects."""

    keys: dict[str, str] = field(default_factory=dict)  # role -> API key
    ids: dict[str, list[str]] = field(default_factory=dict)  # parameter or field name -> real ids

    def add(self, names: tuple[str, ...], *values: str) -> None:
        for name in names:
            self.ids.setdefault(name, []).extend(values)


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def seed(client: Any, engine: Any) -> Seed:
    async with engine.begin() as conn:
        created = await create_community(conn, f"模糊测试社区 {uuid.uuid4().hex[:6]}")
    t = Tenant(client, created["community_id"], created["admin_key"])
    t.accounts = (await client.get("/v1/community", headers=t.auth())).json()["accounts"]
    s = Seed()
    a, b = await t.member("甲"), await t.member("乙")
    org, shop = await t.party("organisations", "志愿队"), await t.party("merchants", "爱心超市")
    s.keys = {"admin": t.admin_key, "resident": await t.key("resident", a["id"])}
    spare = await t.client.post(
        "/v1/api-keys", json={"role": "recorder", "subject_id": org["id"]}, headers=t.auth()
    )
    s.add(("key_id",), spare.json()["id"])  # never the fuzzing keys themselves
    s.add(("member_id", "subject_id"), a["id"], b["id"])
    s.add(("party_id", "organisation_id", "subject_id"), org["id"])
    s.add(("party_id", "merchant_id", "subject_id"), shop["id"])
    s.add(("community_id",), t.id)
    accounts = [
        a["accounts"]["HOUR"],
        a["accounts"]["POINT"],
        b["accounts"]["HOUR"],
        t.accounts["fund"]["HOUR"],
    ]
    s.add(("account_id", "from_account", "to_account", "debit", "credit"), *accounts)
    await t.fund(a["accounts"]["HOUR"], "HOUR", 600)
    await t.fund(a["accounts"]["POINT"], "POINT", 500)
    moved = await t.transfer(
        {
            "from_account": a["accounts"]["HOUR"],
            "to_account": b["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 5,
        }
    )
    hold = await t.transfer(
        {
            "from_account": a["accounts"]["HOUR"],
            "to_account": b["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 7,
            "pending": {"timeout_seconds": 3600},
        }
    )
    s.add(("tx_id", "transaction_id"), moved.json()["id"], hold.json()["id"])

    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=3)
    records = []
    for hours in (0, 4):
        r = await client.post(
            "/v1/service-records",
            headers=t.auth(),
            json={
                "member_id": a["id"],
                "organisation_id": org["id"],
                "activity": "陪老人聊天",
                "category": "volunteer_service",
                "place": "日间照料中心",
                "started_at": (start + timedelta(hours=hours)).isoformat(),
                "ended_at": (start + timedelta(hours=hours + 2)).isoformat(),
            },
        )
        assert r.status_code == 201, r.text
        records.append(r.json()["id"])
    r = await client.post(
        f"/v1/service-records/{records[1]}/approve",
        headers={**t.auth(), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    s.add(("record_id",), *records)

    r = await client.post(
        "/v1/rewards",
        headers=t.auth(),
        json={"merchant_id": shop["id"], "title": "大米一袋", "price_points": 10, "stock": 5},
    )
    assert r.status_code == 201, r.text
    s.add(("reward_id",), r.json()["id"])
    r = await client.post(
        "/v1/redemptions",
        json={"reward_id": r.json()["id"], "member_id": a["id"]},
        headers={**t.auth(s.keys["resident"]), "Idempotency-Key": str(uuid.uuid4())},
    )
    assert r.status_code == 201, r.text
    s.add(("redemption_id",), r.json()["id"])
    s.add(("code",), r.json()["code"])
    year = start.year
    r = await client.get(
        f"/v1/members/{a['id']}/certificate?from={year}-01-01&to={year}-12-31", headers=t.auth()
    )
    assert r.status_code == 200, r.text
    s.add(("number",), r.json()["certificate"]["number"])
    await t.integrate()  # the community's log has a checkpoint: the proofs have something to prove
    return s


@pytest.fixture(scope="module")
def fuzz_app(settings: Any, database_url: str, seed: Seed) -> Any:
    """The app, run by Schemathesis in-process: its own lifespan and engine on Schemathesis'
    event loop (not the suite's), the same database as the seeded community."""
    fuzz_settings = settings.with_(
        extra_allowed_hosts=(*settings.extra_allowed_hosts, HOST), log_integrator=False, scheduler=False
    )
    yield create_app(fuzz_settings, database_url)
    asgi.shutdown_lifespans()  # the app's engine, before the session's database stops


def load(app: Any) -> Any:
    return schemathesis.openapi.from_asgi("/schema/openapi.json", app)


def _real(data: st.DataObject, seed: Seed, name: str, value: Any) -> Any:
    """Half the time, a generated id becomes a real one of the seeded community."""
    real = seed.ids.get(name)
    if (
        not real
        or not isinstance(value, (str, type(None)))
        or not data.draw(st.booleans(), label=f"real {name}")
    ):
        return value
    return data.draw(st.sampled_from(real), label=name)


def _real_body(data: st.DataObject, seed: Seed, body: Any) -> Any:
    if isinstance(body, dict):
        return {
            k: _real(data, seed, k, v) if k in seed.ids else _real_body(data, seed, v)
            for k, v in body.items()
        }
    if isinstance(body, list):
        return [_real_body(data, seed, v) for v in body]
    return body


def fuzz(operation: Any, mode: GenerationMode, seed: Seed) -> None:
    """Hypothesis over one operation in one mode: every case with an admin or a resident key."""

    @hypothesis.given(case=operation.as_strategy(mode), data=st.data())
    @hypothesis.settings(
        max_examples=EXAMPLES,
        deadline=None,
        database=None,
        derandomize=not RANDOM,
        suppress_health_check=list(HealthCheck),
        print_blob=True,
    )
    def run(case: Any, data: st.DataObject) -> None:
        role = data.draw(st.sampled_from(sorted(seed.keys)), label="role")
        for location in (case.path_parameters, case.query):
            for name in list(location or {}):
                location[name] = _real(data, seed, name, location[name])
        if isinstance(case.body, (dict, list)):
            case.body = _real_body(data, seed, case.body)
        case.headers = {**(case.headers or {}), "Authorization": f"Bearer {seed.keys[role]}"}
        response = case.call_and_validate(checks=[getattr(builtin_checks, name) for name in CHECK_NAMES])
        ANSWERS[(operation.label, response.status_code)] += 1

    try:
        run()
    except hypothesis.errors.Unsatisfiable:  # nothing to negate (an operation without inputs)
        assert mode is GenerationMode.NEGATIVE, operation.label


def test_every_answer_is_documented_and_no_input_is_a_server_error(fuzz_app: Any, seed: Seed) -> None:
    failures: list[str] = []
    operations = 0
    for result in load(fuzz_app).get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            try:
                fuzz(operation, mode, seed)
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"### {operation.label} ({mode.value})\n{exc}")
    print("\n".join(f"{n:5} {status} {label}" for (label, status), n in sorted(ANSWERS.items())))
    assert operations > 50, operations
    assert not failures, f"{len(failures)} failing operation(s):\n\n" + "\n\n".join(failures)


# Boundary values (a string one longer than maxLength, an integer one past maximum, each
# enum value, a missing required field ...) and methods a path does not have (405 with
# Allow), from Schemathesis' coverage phase; its invalid requests must also be refused.
CHECK_NAMES = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_schema_conformance",
    "response_headers_conformance",
)
BOUNDARY_CHECKS = [*CHECK_NAMES, "negative_data_rejection", "unsupported_method"]


def _known_leniency(check: str, message: str) -> bool:
    """Litestar converts query parameters leniently: a number is a Unix time to a date-time
    parameter (since=0.5; from and to of activities). Nothing to refuse there: the value is a valid instant."""
    return (
        check == "negative_data_rejection"
        and "Incorrect type" in message
        and any(f"parameter `{name}`" in message for name in ("since", "until", "from", "to"))
    )


def test_boundary_values_and_unsupported_methods(fuzz_app: Any, seed: Seed) -> None:
    failures: list[str] = []
    for role in sorted(seed.keys):
        schema = load(fuzz_app)
        schema.config.update(headers={"Authorization": f"Bearer {seed.keys[role]}"})
        schema.config.phases.update(phases=["coverage"])
        schema.config.checks.update(included_check_names=BOUNDARY_CHECKS)
        for event in engine_for(schema).execute():
            if isinstance(event, engine_events.ScenarioFinished):
                for checks in event.recorder.checks.values():
                    for check in checks:
                        info = check.failure_info
                        if info is not None and not _known_leniency(check.name, info.failure.message):
                            failures.append(
                                f"### {event.recorder.label} as {role}: {check.name}\n"
                                f"{info.failure.title}\n{info.failure.message}\n{info.code_sample}"
                            )
            elif isinstance(event, (engine_events.NonFatalError, engine_events.FatalError)):
                failures.append(f"### {role}: {event}")
    assert not failures, f"{len(failures)} failure(s):\n\n" + "\n\n".join(sorted(set(failures)))

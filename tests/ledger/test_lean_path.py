"""The single-transfer hot path (issue 19): an admin's transfer reads nothing before it
posts, so it checks no pooled connection out (its movement rides the poster's batch on the
poster's own connections); a replay, a conflict or a rejection still answer as ever."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import event


@pytest.fixture
def checkouts(engine: Any) -> Iterator[list[int]]:
    seen: list[int] = []

    def count(*_: Any) -> None:
        seen.append(1)

    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", count)
    yield seen
    event.remove(pool, "checkout", count)


async def _five_minutes(tenant: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new member, and the body of a 5-minute transfer from them to another."""
    a = await tenant.member("甲")
    b = await tenant.member("乙")
    return a, {
        "from_account": a["accounts"]["HOUR"],
        "to_account": b["accounts"]["HOUR"],
        "asset": "HOUR",
        "amount": 5,
    }


async def test_an_admin_transfer_takes_no_pooled_connection_and_replays_as_ever(tenant, checkouts) -> None:
    a, body = await _five_minutes(tenant)
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 60)
    key = str(uuid.uuid4())
    checkouts.clear()
    first = await tenant.transfer(body, idem=key)
    assert first.status_code == 201, first.text
    # one checkout: authentication's key lookup (the tests keep no key cache); none for the transfer
    assert len(checkouts) == 1
    replay = await tenant.transfer(body, idem=key)
    assert replay.status_code == 201 and replay.headers.get("Idempotent-Replayed") == "true"
    assert replay.json()["id"] == first.json()["id"]
    conflict = await tenant.transfer({**body, "amount": 6}, idem=key)
    assert conflict.status_code == 409, conflict.text


async def test_an_admin_rejection_is_recorded_under_its_key(tenant) -> None:
    a, body = await _five_minutes(tenant)
    key = str(uuid.uuid4())
    refused = await tenant.transfer(body, idem=key)
    assert refused.status_code == 422, refused.text
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 60)
    again = await tenant.transfer(body, idem=key)  # the key stays rejected, funds or not
    assert again.status_code == 422 and again.json() == refused.json()

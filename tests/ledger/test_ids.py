"""Transaction ids are UUID version 7 (timebank/core/ids.py): time-ordered, so the
ledger's busiest indexes grow at their right edge, and still unguessable."""

from __future__ import annotations

import time
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from timebank.core.ids import uuid7


def test_a_uuid7_has_its_version_variant_and_the_time() -> None:
    before = time.time_ns() // 1_000_000
    made = uuid7()
    after = time.time_ns() // 1_000_000
    assert made.version == 7 and made.variant == uuid.RFC_4122
    assert before <= int.from_bytes(made.bytes[:6], "big") <= after
    # the text form a client sees round-trips
    assert uuid.UUID(str(made)) == made


def test_ids_made_later_sort_later_and_never_repeat() -> None:
    first = [uuid7() for _ in range(50_000)]
    time.sleep(0.002)
    second = [uuid7() for _ in range(50_000)]
    assert len(set(first + second)) == 100_000
    assert max(first) < min(second)  # a later millisecond sorts after (what the index sees)


@settings(max_examples=50, deadline=None)
@given(st.integers(min_value=0, max_value=2**48 - 1))
def test_the_time_field_holds_any_48_bit_millisecond(ms: int) -> None:
    from unittest import mock

    with mock.patch("timebank.core.ids.time.time_ns", return_value=ms * 1_000_000):
        made = uuid7()
    assert int.from_bytes(made.bytes[:6], "big") == ms and made.version == 7


async def test_a_posted_transfer_has_a_version_7_id(tenant) -> None:
    a, b = await tenant.member("甲"), await tenant.member("乙")
    await tenant.fund(a["accounts"]["HOUR"], "HOUR", 60)
    r = await tenant.transfer(
        {
            "from_account": a["accounts"]["HOUR"],
            "to_account": b["accounts"]["HOUR"],
            "asset": "HOUR",
            "amount": 5,
        }
    )
    assert r.status_code == 201, r.text
    assert uuid.UUID(r.json()["id"]).version == 7

"""How a crossing's parts name each other: the ``reason`` of each of its transactions.

``reason`` is part of what a transaction's log leaf commits to (docs/receipts.md), so
a receipt of any one part, verified offline, shows the crossing's id, all three
parts (ledger and transaction), and what crossed at which rate, e.g.::

    crossing 5b0e…: POINT 2f1c…/9d3a… -> 77e0…/c2b1… -> 0a9f…/41d7…; rate 3:2; requested 10, sent 9, received 6, kept 1

(ledger ids are communities' and the district's; each pair is ledger/transaction).
``timebank audit`` parses it back and checks it against the ``crossings`` row and
the parts' entries. One home for the format: written and read only here.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

_UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_PATTERN = re.compile(
    rf"crossing (?P<id>{_UUID}): (?P<asset>HOUR|POINT) "
    rf"(?P<a>{_UUID})/(?P<a_tx>{_UUID}) -> (?P<d>{_UUID})/(?P<d_tx>{_UUID}) -> (?P<b>{_UUID})/(?P<b_tx>{_UUID}); "
    r"rate (?P<rf>\d+):(?P<rt>\d+); "
    r"requested (?P<req>\d+), sent (?P<sent>\d+), received (?P<recv>\d+), kept (?P<kept>\d+)"
)


@dataclass(frozen=True, slots=True)
class CrossingRef:
    crossing_id: uuid.UUID
    asset: str
    from_community: uuid.UUID
    from_transaction: uuid.UUID
    district: uuid.UUID
    district_transaction: uuid.UUID
    to_community: uuid.UUID
    to_transaction: uuid.UUID
    rate_from: int
    rate_to: int
    requested: int
    sent: int
    received: int


def crossing_reason(ref: CrossingRef) -> str:
    text = (
        f"crossing {ref.crossing_id}: {ref.asset} {ref.from_community}/{ref.from_transaction} -> "
        f"{ref.district}/{ref.district_transaction} -> {ref.to_community}/{ref.to_transaction}; "
        f"rate {ref.rate_from}:{ref.rate_to}; requested {ref.requested}, sent {ref.sent}, "
        f"received {ref.received}, kept {ref.requested - ref.sent}"
    )
    assert len(text) <= 500 and parse(text) == ref  # transactions.reason holds 500 characters
    return text


def parse(reason: str | None) -> CrossingRef | None:
    """The reference a crossing part's reason states, or None if it states none."""
    m = _PATTERN.fullmatch(reason or "")
    if m is None:
        return None
    u = {k: uuid.UUID(m[k]) for k in ("id", "a", "a_tx", "d", "d_tx", "b", "b_tx")}
    ref = CrossingRef(
        u["id"],
        m["asset"],
        u["a"],
        u["a_tx"],
        u["d"],
        u["d_tx"],
        u["b"],
        u["b_tx"],
        int(m["rf"]),
        int(m["rt"]),
        int(m["req"]),
        int(m["sent"]),
        int(m["recv"]),
    )
    return ref if int(m["kept"]) == ref.requested - ref.sent else None

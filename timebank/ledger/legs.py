"""The shape of a movement: legs, the limits on them, and the idempotency claim.

Everything that builds a ledger transaction (transfers, service credits,
redemptions, expiry) describes it with these types before ``movement.post`` writes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from timebank.core.problems import BadRequest
from timebank.core.terms import Asset, Direction, Layer

MAX_AMOUNT = 10**12  # far above any real balance; keeps sums far from bigint overflow
MAX_LEGS = 64
MAX_MEMO = 500


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: uuid.UUID
    asset: Asset
    direction: Direction
    layer: Layer
    amount: int


@dataclass(frozen=True, slots=True)
class Movement:
    """One debit/credit pair as a client asks for it."""

    debit: uuid.UUID
    credit: uuid.UUID
    asset: Asset
    amount: int


def legs_of(movements: Sequence[Movement], layer: Layer) -> list[Leg]:
    if not 1 <= len(movements) <= MAX_LEGS:
        raise BadRequest(f"a transaction has 1 to {MAX_LEGS} legs")
    legs: list[Leg] = []
    for m in movements:
        if not 1 <= m.amount <= MAX_AMOUNT:
            raise BadRequest(f"amount must be a whole number from 1 to {MAX_AMOUNT}")
        if m.debit == m.credit:
            raise BadRequest("a leg must move value between two different accounts")
        legs.append(Leg(m.debit, m.asset, Direction.DEBIT, layer, m.amount))
        legs.append(Leg(m.credit, m.asset, Direction.CREDIT, layer, m.amount))
    return legs


@dataclass(slots=True)
class Claim:
    """An idempotency key to claim together with the movement it answers."""

    key: str
    request_hash: bytes
    used: bool = False


class KeyAlreadyUsed(Exception):
    """The claim's key already has an answer (given before, or by a concurrent request that committed)."""

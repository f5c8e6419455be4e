"""How the ledger answers: a transaction, an account and its balances as JSON views.

The views are pure functions of rows; the balances they show come from the
``account_balances`` view (``queries.py``), where the formulas live.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from timebank.core.clock import rfc3339
from timebank.core.terms import Phase


def status_of(phase: str, resolver_phase: str | None) -> str:
    if phase == Phase.PENDING:
        return {None: "pending", "post": "posted", "void": "voided", "expire": "expired"}[resolver_phase]
    return {"posted": "posted", "post": "posted", "void": "voided", "expire": "expired"}[phase]


_LAYER_RANK = {"release": 0, "pending": 1, "posted": 2}


def entry_order(entry: dict[str, Any]) -> tuple[Any, ...]:
    """One canonical order for a transaction's entries, however they were written."""
    return (
        _LAYER_RANK[entry["layer"]],
        entry["asset"],
        entry["direction"] != "debit",
        entry["account_id"],
        entry["amount"],
    )


def transaction_view(
    tx: Any,
    legs: Iterable[Any],
    *,
    resolver: Any = None,
    reversed_by: uuid.UUID | None = None,
) -> dict[str, Any]:
    get = tx.get if isinstance(tx, dict) else lambda k: getattr(tx, k)
    resolver_phase = None if resolver is None else resolver.phase
    entries = sorted(
        (
            {
                "account_id": str(leg.account_id),
                "asset": str(leg.asset),
                "direction": str(leg.direction),
                "layer": str(leg.layer),
                "amount": int(leg.amount),
            }
            for leg in legs
        ),
        key=entry_order,
    )
    view: dict[str, Any] = {
        "id": str(get("id")),
        "community_id": str(get("community_id")),
        "kind": get("kind"),
        "status": status_of(get("phase"), resolver_phase),
        "phase": get("phase"),
        "memo": get("memo"),
        "entries": entries,
        "created_at": rfc3339(get("created_at")),
        "seq": get("seq"),
    }
    optional = {
        "pending_id": get("pending_id"),
        "reverses_id": get("reverses_id"),
        "reason": get("reason"),
        "timeout_at": get("timeout_at"),
        "resolved_by": None if resolver is None else resolver.id,
        "reversed_by": reversed_by,
    }
    for k, v in optional.items():
        if v is not None:
            view[k] = rfc3339(v) if isinstance(v, datetime) else str(v)
    return view


def balance_view(account: Any) -> dict[str, Any]:
    """The balances of a row read with the ``account_balances`` view's columns."""
    return {
        "posted": account.posted,
        "pending": account.pending,
        "available": account.available,
        "pending_credits": account.pending_credits,
        "credit_limit": account.credit_limit,
    }


def account_view(account: Any) -> dict[str, Any]:
    flags = ["debits_must_not_exceed_credits"] if account.debits_must_not_exceed_credits else []
    return {
        "id": str(account.id),
        "community_id": str(account.community_id),
        "asset": account.asset,
        "owner": (
            {"system": account.system_role} if account.system_role else {"party_id": str(account.party_id)}
        ),
        "flags": flags,
        **balance_view(account),
        "debits_posted": account.debits_posted,
        "credits_posted": account.credits_posted,
        "debits_pending": account.debits_pending,
        "credits_pending": account.credits_pending,
        "created_at": rfc3339(account.created_at),
    }

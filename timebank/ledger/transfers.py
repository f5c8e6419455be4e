"""Transfers a client asks for: which kinds a role may make, from and into which accounts.

Admins may move any account of their community (``ledger_post`` checks that the
accounts are the community's); others only from accounts they own, and into a system
account only as a donation to the community fund. ``issuance`` and ``expired`` are
reached by their own flows (service credit, expiry, an admin's adjustment).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.problems import AssetMismatch, BadRequest, Forbidden, a
from timebank.core.roles import Role
from timebank.core.terms import Direction, Kind, Layer, Phase, SystemRole
from timebank.ledger.accounts import load_accounts
from timebank.ledger.legs import Claim, Leg, Movement, legs_of
from timebank.ledger.movement import CLEARING_ONLY, post

# Kinds a caller may choose for a plain transfer; the others belong to their flows
# (service approval, redemption, expiry, reversal).
CLIENT_KINDS = {
    Role.ADMIN: {Kind.TRANSFER, Kind.DONATION, Kind.ADJUSTMENT},
    Role.RESIDENT: {Kind.TRANSFER, Kind.DONATION},
    Role.MERCHANT: {Kind.TRANSFER, Kind.DONATION},
    Role.RECORDER: {Kind.TRANSFER, Kind.DONATION},
}


# The district's accounts in a ledger move only with crossings and settlements.
CROSSING_ROLES = (SystemRole.CLEARING.value, SystemRole.EXCHANGE.value)


async def transfer(
    conn: AsyncConnection,
    principal: Principal,
    movements: Sequence[Movement],
    *,
    kind: Kind = Kind.TRANSFER,
    memo: str | None = None,
    timeout_seconds: int | None = None,
    claim: Claim | None = None,
    hold_max_timeout_seconds: int = 7 * 24 * 3600,
) -> dict[str, Any]:
    allowed = CLIENT_KINDS.get(principal.role, set())
    if kind not in allowed:
        raise Forbidden(f"{a(principal.role.value)} key may not make {kind.value} transactions")
    if timeout_seconds is not None and not 1 <= timeout_seconds <= hold_max_timeout_seconds:
        raise BadRequest(f"pending.timeout_seconds must be from 1 to {hold_max_timeout_seconds}")
    legs = legs_of(movements, Layer.PENDING if timeout_seconds is not None else Layer.POSTED)
    if reads_accounts(principal, kind):
        accounts = await load_accounts(conn, principal.community_id, {leg.account_id for leg in legs})
        for leg in legs:
            check_leg(principal, kind, leg, accounts[leg.account_id])
    # (an admin's legs are checked by ledger_apply: a district clearing account is refused there)
    return await post(
        conn,
        community_id=principal.community_id,
        kind=kind,
        phase=Phase.PENDING if timeout_seconds is not None else Phase.POSTED,
        legs=legs,
        principal_id=principal.key_id,
        memo=memo,
        claim=claim,
        timeout_seconds=timeout_seconds,
    )


def reads_accounts(principal: Principal, kind: Kind) -> bool:
    """Whether ``transfer`` reads the accounts before it posts (a non-admin's move, or a
    donation). When it does not, its movement goes straight to the poster, and its
    caller needs no pooled connection (``run_idempotent(pooled=False)``)."""
    return not principal.is_admin or kind is Kind.DONATION


def check_leg(principal: Principal, kind: Kind, leg: Leg, account: Any) -> None:
    """May this key move this leg of this account (a non-admin's move, or a donation)?"""
    if account.asset != leg.asset:
        raise AssetMismatch(f"account {leg.account_id} holds {account.asset}", account_id=str(leg.account_id))
    if account.system_role in CROSSING_ROLES:
        raise Forbidden(CLEARING_ONLY.format(account=leg.account_id), account_id=str(leg.account_id))
    if (
        leg.direction is Direction.DEBIT
        and not principal.is_admin
        and account.party_id != principal.subject_id
    ):
        raise Forbidden(f"this key may only move value from its own accounts, not {leg.account_id}")
    if kind is Kind.DONATION and leg.direction is Direction.CREDIT and account.system_role != SystemRole.FUND:
        raise BadRequest("a donation goes to the community fund account")
    if (
        leg.direction is Direction.CREDIT
        and not principal.is_admin
        and account.system_role is not None
        and not (kind is Kind.DONATION and account.system_role == SystemRole.FUND)
    ):
        raise Forbidden(
            f"{a(principal.role.value)} key may move value into the community fund only as a donation "
            '("kind": "donation")'
            if account.system_role == SystemRole.FUND
            else f"{a(principal.role.value)} key may not move value into the community's "
            f"{account.system_role} account",
            account_id=str(leg.account_id),
        )

"""Deciding a submitted record: approval (one ledger transaction credits its HOUR minutes
and POINT points), rejection with a reason, and the approval of a trusted organisation's
records as they are written.

The credit of an approval is computed and posted in one place (``_credit``), whether
one record is approved by an admin or many are approved by the policy at once. Which
organisations are trusted is set with the policy (``set_policy``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as parties
from timebank.core import policy as policies
from timebank.core.access import Principal
from timebank.core.policy import Policy, current_policy
from timebank.core.problems import Forbidden, NotFound
from timebank.core.roles import PartyKind
from timebank.core.terms import Asset, Kind, Layer, Phase
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger
from timebank.points import queries as points_queries
from timebank.volunteer import queries
from timebank.volunteer.records import RecordAlreadyResolved, decision_reason, is_back_filled, record_view

Accounts = dict[tuple[Any, str], uuid.UUID]  # (member id or "issuance", asset): account id


class Credited(Protocol):
    """What an approval needs of a record."""

    member_id: Any
    minutes: int


async def set_policy(
    conn: AsyncConnection, community_id: uuid.UUID, policy: Policy, key_id: uuid.UUID
) -> dict[str, Any]:
    """Store a new policy version; its trusted organisations must be the community's."""
    trusted = policy.trusted_organisations
    known = (
        {r.id for r in await parties.parties_of_kind(conn, community_id, PartyKind.ORGANISATION, trusted)}
        if trusted
        else set()
    )
    return await policies.set_policy(conn, community_id, policy, key_id, known)


async def lock_record(conn: AsyncConnection, principal: Principal, record_id: uuid.UUID) -> Any:
    """The community's record, locked (concurrent deciders queue here); else a 404."""
    rec = await queries.find_record(conn, principal.community_id, record_id, lock=True)
    if rec is None:
        raise NotFound(f"service record {record_id} not found")
    return rec


async def credit_accounts(conn: AsyncConnection, community_id: uuid.UUID, members: Iterable[Any]) -> Accounts:
    """The volunteers' HOUR and POINT accounts and the community's issuance accounts."""
    accounts: Accounts = {
        (party, asset): uuid.UUID(str(account))
        for party, by_asset in (await ledger_queries.party_account_ids(conn, list(members))).items()
        for asset, account in by_asset.items()
    }
    for x in await ledger_queries.system_accounts(conn, community_id):
        if x.system_role == "issuance":
            accounts["issuance", x.asset] = x.id
    return accounts


def _credit_part(
    principal: Principal,
    rec: Credited,
    memo: str,
    *,
    lifetime: int,
    policy: Policy,
    accounts: Accounts,
    claim: ledger.Claim | None,
    back_filled: bool,
) -> tuple[int, ledger.Part]:
    """The credit of approved service, to post: (points, its ledger transaction). The points
    follow the star level of the volunteer's ``lifetime`` minutes before this record, and
    the policy's rule for back-filled records (``Policy.record_points``)."""
    points = policy.record_points(rec.minutes, policy.star_level(lifetime), back_filled)
    member = rec.member_id
    moves = [ledger.Movement(accounts["issuance", "HOUR"], accounts[member, "HOUR"], Asset.HOUR, rec.minutes)]
    if points:
        moves.append(
            ledger.Movement(accounts["issuance", "POINT"], accounts[member, "POINT"], Asset.POINT, points)
        )
    part = ledger.Part(
        principal.community_id,
        Kind.SERVICE_CREDIT,
        ledger.legs_of(moves, Layer.POSTED),
        principal.key_id,
        memo[: ledger.MAX_MEMO],
        claim=claim,
    )
    return points, part


async def _post_credit(conn: AsyncConnection, part: ledger.Part) -> uuid.UUID:
    """Post one approved record's credit on its own (its claim, if any, rides with it)."""
    tx = await ledger.post(
        conn,
        community_id=part.community_id,
        kind=part.kind,
        phase=Phase.POSTED,
        legs=part.legs,
        principal_id=part.principal_id,
        memo=part.memo,
        claim=part.claim,
    )
    return uuid.UUID(tx["id"])


async def approve(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, claim: ledger.Claim | None
) -> dict[str, Any]:
    """Approve a submitted record: ONE transaction credits its HOUR minutes and POINT points.

    In the caller's database transaction (begun by the first statement if none is).
    """
    if not principal.is_admin:
        raise Forbidden("only admins approve service records")
    rec = await lock_record(conn, principal, record_id)  # concurrent approvals queue here; one wins
    if rec.status != "submitted":
        raise RecordAlreadyResolved(f"service record {rec.id} is already {rec.status}")
    version, policy, _ = await current_policy(conn, principal.community_id)
    accounts = await credit_accounts(conn, principal.community_id, [rec.member_id])
    lifetime = await queries.lifetime_minutes(conn, rec.member_id)
    points, part = _credit_part(
        principal,
        rec,
        f"{rec.activity}",
        lifetime=lifetime,
        policy=policy,
        accounts=accounts,
        claim=claim,
        back_filled=is_back_filled(rec.source),
    )
    tx_id = await _post_credit(conn, part)
    await queries.mark_approved(
        conn, rec.id, decided_by=principal.key_id, policy_version=version, points=points, transaction_id=tx_id
    )
    if points:
        # The credit made its points lot (points_follow_entry, migration 0004); name its record.
        await points_queries.name_points_lots(conn, [(rec.id, tx_id, accounts[rec.member_id, "POINT"])])
    return await decision_view(conn, principal.community_id, tx_id)


async def approve_new(
    conn: AsyncConnection, principal: Principal, rows: list[Any], policy: Policy, version: int
) -> None:
    """Approve records just written (by a trusted organisation): what ``approve`` does to
    each, in the same order with the same star levels, but all their ledger transactions in
    one ``ledger_post_batch`` call (``ledger.post_together``) and no statement that grows
    with the volunteer's history. Nobody else sees these rows before the commit: no locks
    needed.
    """
    members = list({r.member_id for r in rows})
    lifetime = await queries.lifetime_minutes_of(conn, members)
    accounts = await credit_accounts(conn, principal.community_id, members)
    credits: list[tuple[int, ledger.Part]] = []
    for r in rows:
        before = lifetime.get(r.member_id, 0)
        credits.append(
            _credit_part(
                principal,
                r,
                f"{r.given.activity}",
                lifetime=before,
                policy=policy,
                accounts=accounts,
                claim=None,
                back_filled=is_back_filled(r.given.source),
            )
        )
        lifetime[r.member_id] = before + r.minutes
    # All the credits in one ledger_post_batch call (the batch path: one round trip).
    await ledger.post_together(conn, [part for _, part in credits])
    decided = [(r.new_id, points, part.id) for r, (points, part) in zip(rows, credits, strict=True)]
    await queries.approve_many(conn, principal.key_id, version, decided)
    # Each credit made its points lot (points_follow_entry, migration 0004); name its record.
    lots = [(d[0], d[2], accounts[r.member_id, "POINT"]) for r, d in zip(rows, decided, strict=True) if d[1]]
    if lots:
        await points_queries.name_points_lots(conn, lots)


async def decision_view(conn: AsyncConnection, community_id: uuid.UUID, tx_id: uuid.UUID) -> dict[str, Any]:
    """The answer to an approval (or a correction), also for its idempotent replay."""
    rec = await queries.record_of_transaction(conn, community_id, tx_id)
    assert rec is not None, f"no service record for transaction {tx_id}"
    return {"record": record_view(rec), "transaction": await ledger.created_view(conn, community_id, tx_id)}


async def reject(
    conn: AsyncConnection, principal: Principal, record_id: uuid.UUID, reason: str
) -> dict[str, Any]:
    if not principal.is_admin:
        raise Forbidden("only admins reject service records")
    reason = decision_reason(reason, "a rejection")
    rec = await lock_record(conn, principal, record_id)
    if rec.status != "submitted":
        raise RecordAlreadyResolved(f"service record {rec.id} is already {rec.status}")
    return record_view(await queries.mark_rejected(conn, rec.id, reason, principal.key_id))

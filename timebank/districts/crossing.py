"""A crossing (通存通兑): value from a member (or fund) of community A to an account of B.

Three ordinary balanced transactions, posted together in one database transaction
(``ledger.post_together``), each with its receipt in its own ledger's log:

1. A's ledger: the sender → A's ``clearing`` (``amount_sent``, A's units);
2. the district's ledger: A's position account → B's (through the ``exchange``
   account when the points rate makes the two amounts differ);
3. B's ledger: B's ``clearing`` → the recipient (``amount_received``, B's units).

Every account they move is locked first, in id order (the order every posting
locks in), and the trust lines are checked under those locks, so concurrent
crossings can never together pass a limit. HOUR crosses 1:1; POINT at the pair's
rate, rounding down what the recipient gets and debiting the sender only what that
costs: the rest stays with the sender (``kept``), and every part's ``reason`` says
so. Each part's ``reason`` names the crossing and all three parts
(``reference.crossing_reason``), so a receipt alone shows where it belongs.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.cursors import after_time_id, time_id_cursor
from timebank.core.ids import uuid7
from timebank.core.problems import BadRequest, DomainError, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset, Direction, Kind, Layer, Phase, SystemRole
from timebank.districts import queries, reference
from timebank.districts.service import points_rate_between
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger
from timebank.ledger.legs import MAX_AMOUNT, MAX_MEMO, Claim, Leg

# Who may send across: the same keys that may transfer at home.
SENDERS = (Role.ADMIN, Role.RESIDENT, Role.MERCHANT, Role.RECORDER)


class CrossingLimit(DomainError):
    slug, status, title = "crossing-limit", 422, "The crossing would pass a community's limit in the district"


class NotInDistrict(DomainError):
    slug, status, title = "not-in-district", 422, "The communities are not in one district"


@dataclass(frozen=True, slots=True)
class CrossingRequest:
    to_community_id: uuid.UUID
    asset: Asset
    amount: int
    from_account_id: uuid.UUID | None = None  # default: the sender's own account of the asset
    to_account_id: uuid.UUID | None = None
    to_party_id: uuid.UUID | None = None  # a member, merchant or organisation of B
    memo: str | None = None


@dataclass(frozen=True, slots=True)
class Amounts:
    requested: int
    sent: int
    received: int
    rate_from: int
    rate_to: int

    @property
    def kept(self) -> int:
        return self.requested - self.sent


def amounts(asset: Asset, requested: int, rate_from: int, rate_to: int) -> Amounts:
    """What crosses: ``received = floor(requested × to / from)``, and the sender pays
    only ``sent = ceil(received × from / to)`` ≤ requested. So
    ``received × from ≤ sent × to``: rounding never creates points."""
    if asset is Asset.HOUR:
        return Amounts(requested, requested, requested, 1, 1)
    received = requested * rate_to // rate_from
    if received < 1:
        least = -(-rate_from // rate_to)
        raise BadRequest(
            f"at this rate ({rate_from}:{rate_to}) at least {least} points must be sent for one to arrive",
            rate={"from": rate_from, "to": rate_to},
        )
    sent = -(-received * rate_from // rate_to)
    assert received * rate_from <= sent * rate_to and sent <= requested
    return Amounts(requested, sent, received, rate_from, rate_to)


async def cross(
    conn: AsyncConnection,
    principal: Principal,
    request: CrossingRequest,
    claim: Claim,
    *,
    acted_for: uuid.UUID | None = None,
) -> dict[str, Any]:
    """Post a crossing, or raise and write nothing (the caller's transaction rolls back).

    ``acted_for``: the member whose account is debited when a linked relative or carer
    acts for them (``timebank.families`` decided they may); the principal is then the
    actor, and ``from_account_id`` must be that member's.
    """
    if principal.role not in SENDERS:
        raise Forbidden("this key may not send across communities")
    if not 1 <= request.amount <= MAX_AMOUNT:
        raise BadRequest(f"amount must be a whole number from 1 to {MAX_AMOUNT}")
    if request.memo is not None and len(request.memo) > MAX_MEMO:
        raise BadRequest(f"memo is at most {MAX_MEMO} characters")
    home, there = principal.community_id, request.to_community_id
    route = await route_between(conn, home, there)
    sender = await _sender_account(conn, principal, request, acted_for)
    recipient = await _recipient_account(conn, there, request)
    rate_from, rate_to = await route.rate(conn, request.asset)
    amt = amounts(request.asset, request.amount, rate_from, rate_to)
    row = await post_crossing(
        conn,
        route,
        request.asset,
        amt,
        sender_account=sender.id,
        recipient_account=recipient.id,
        principal_id=principal.key_id,
        memo=request.memo,
        claim=claim,
        acted_for=acted_for,
    )
    return crossing_view(row, request.memo)


@dataclass(frozen=True, slots=True)
class Route:
    """Two communities of one district, with their memberships (limits)."""

    district_id: uuid.UUID
    home: Any  # district_members rows
    there: Any

    async def rate(self, conn: AsyncConnection, asset: Asset) -> tuple[int, int]:
        """(home's units, there's units) worth each other: 1:1 for hours."""
        if asset is Asset.HOUR:
            return 1, 1
        return points_rate_between(self.home, self.there)


async def route_between(conn: AsyncConnection, home: uuid.UUID, there: uuid.UUID) -> Route:
    """The route from ``home`` to ``there``, or NotInDistrict."""
    if home == there:
        raise BadRequest("the recipient is in this community: make a transfer instead")
    members = await queries.memberships(conn, [home, there])
    mine, theirs = members.get(home), members.get(there)
    if mine is None or mine.joined_at is None:
        raise NotInDistrict("this community has not joined a district")
    if theirs is None or theirs.joined_at is None or theirs.district_id != mine.district_id:
        raise NotInDistrict(f"community {there} is not in this community's district")
    return Route(mine.district_id, mine, theirs)


async def post_crossing(
    conn: AsyncConnection,
    route: Route,
    asset: Asset,
    amt: Amounts,
    *,
    sender_account: uuid.UUID,
    recipient_account: uuid.UUID,
    principal_id: uuid.UUID | None,
    memo: str | None,
    claim: Claim | None,
    acted_for: uuid.UUID | None = None,
    kind: Kind = Kind.CROSSING,
    held: uuid.UUID | None = None,
) -> Any:
    """Lock, check the limits, post the three parts together and record the crossing.

    ``held``: the sending part posts this pending hold of the home ledger (which moved
    ``amt.sent`` from the sender to home's clearing account), e.g. a redemption at
    another community's merchant; otherwise it moves the value itself. The crossing
    row is returned; nothing is written if anything is refused.
    """
    home, there, district_id = route.home.community_id, route.there.community_id, route.district_id
    positions = await queries.position_accounts(conn, district_id)
    pos_from = positions[(home, asset.value)]
    pos_to = positions[(there, asset.value)]
    clearing_from = await ledger_system_account(conn, home, SystemRole.CLEARING, asset)
    clearing_to = await ledger_system_account(conn, there, SystemRole.CLEARING, asset)
    exchange = await ledger_system_account(conn, district_id, SystemRole.EXCHANGE, asset)

    if held is not None:
        # ledger_post_batch locks a hold before accounts: so must we (the hold-timeout
        # sweep may resolve the same hold at the same moment).
        await ledger_queries.lock_transactions(conn, [held])
    # Every account of the three parts, locked in id order before anything is read for
    # the limits: the order ledger_post_batch locks in too, so no two postings deadlock.
    locked = await ledger_queries.lock_accounts(
        conn,
        [sender_account, clearing_from, pos_from.id, pos_to.id, exchange, clearing_to, recipient_account],
    )
    _check_limit(locked[pos_from.id], -amt.sent, route.home, asset)
    _check_limit(locked[pos_to.id], amt.received, route.there, asset)

    crossing_id, out_id, district_tx_id, in_id = (uuid7() for _ in range(4))
    reason = reference.crossing_reason(
        reference.CrossingRef(
            crossing_id,
            asset.value,
            home,
            out_id,
            district_id,
            district_tx_id,
            there,
            in_id,
            amt.rate_from,
            amt.rate_to,
            amt.requested,
            amt.sent,
            amt.received,
        )
    )
    legs_out = _move(sender_account, clearing_from, asset, amt.sent)
    if held is not None:  # release what the hold reserved, post it
        legs_out = [
            Leg(leg.account_id, leg.asset, leg.direction, Layer.RELEASE, leg.amount) for leg in legs_out
        ] + legs_out
    out = ledger.Part(home, kind, legs_out, principal_id, memo, reason, claim, id=out_id)
    if held is not None:
        out = ledger.Part(
            home,
            kind,
            legs_out,
            principal_id,
            memo,
            reason,
            claim,
            id=out_id,
            phase=Phase.POST,
            pending_id=held,
        )
    await ledger.post_together(
        conn,
        [
            out,
            ledger.Part(
                district_id,
                Kind.CROSSING,
                _district_legs(pos_from.id, pos_to.id, exchange, asset, amt),
                principal_id,
                None,
                reason,
                id=district_tx_id,
            ),
            ledger.Part(
                there,
                kind,
                _move(clearing_to, recipient_account, asset, amt.received),
                principal_id,
                memo,
                reason,
                id=in_id,
            ),
        ],
    )
    return await queries.insert_crossing(
        conn,
        id=crossing_id,
        district_id=district_id,
        asset=asset.value,
        from_community_id=home,
        from_account_id=sender_account,
        from_transaction_id=out_id,
        district_transaction_id=district_tx_id,
        to_community_id=there,
        to_account_id=recipient_account,
        to_transaction_id=in_id,
        amount_requested=amt.requested,
        amount_sent=amt.sent,
        amount_received=amt.received,
        rate_from=amt.rate_from,
        rate_to=amt.rate_to,
        acted_for=acted_for,
        principal_id=principal_id,
    )


async def precheck_limits(conn: AsyncConnection, route: Route, asset: Asset, amt: Amounts) -> None:
    """The limits as the positions stand now, read without locks: an early refusal (e.g.
    when a redemption at another community's merchant holds the points); only
    ``post_crossing`` decides, under its locks."""
    positions = await queries.position_accounts(conn, route.district_id)
    _check_limit(positions[(route.home.community_id, asset.value)], -amt.sent, route.home, asset)
    _check_limit(positions[(route.there.community_id, asset.value)], amt.received, route.there, asset)


def _check_limit(account: Any, change: int, member: Any, asset: Asset) -> None:
    """A position stays within ±limit; one already beyond it (the limit was lowered) may
    only come back toward zero on its own side, never jump past zero beyond the limit."""
    community = member.community_id
    limit = member.hour_limit if asset is Asset.HOUR else member.point_limit
    now = account.credits_posted - account.debits_posted
    after = now + change
    if abs(after) <= limit or (abs(after) < abs(now) and (after > 0) == (now > 0)):
        return
    raise CrossingLimit(
        f"community {community}'s {asset.value} position in the district would be {after}, "
        f"beyond its limit of ±{limit} (now {now})",
        community_id=str(community),
        asset=asset.value,
        position=now,
        limit=limit,
    )


def _move(debit: uuid.UUID, credit: uuid.UUID, asset: Asset, amount: int) -> list[Leg]:
    return [
        Leg(debit, asset, Direction.DEBIT, Layer.POSTED, amount),
        Leg(credit, asset, Direction.CREDIT, Layer.POSTED, amount),
    ]


def _district_legs(
    pos_from: uuid.UUID, pos_to: uuid.UUID, exchange: uuid.UUID, asset: Asset, amt: Amounts
) -> list[Leg]:
    """A's position goes down by what left A (A's units), B's up by what reached B (B's
    units); when the two differ (a points rate), the exchange account takes one and
    gives the other, so the district's ledger balances per asset."""
    if amt.sent == amt.received:
        return _move(pos_from, pos_to, asset, amt.sent)
    return _move(pos_from, exchange, asset, amt.sent) + _move(exchange, pos_to, asset, amt.received)


async def ledger_system_account(
    conn: AsyncConnection, community_id: uuid.UUID, role: SystemRole, asset: Asset
) -> uuid.UUID:
    from timebank.ledger import queries as ledger_queries

    return await ledger_queries.system_account_id(conn, community_id, role.value, asset.value)


async def _sender_account(
    conn: AsyncConnection, principal: Principal, request: CrossingRequest, acted_for: uuid.UUID | None
) -> Any:
    home = principal.community_id
    owner = acted_for if acted_for is not None else principal.subject_id
    if request.from_account_id is None:
        if owner is None:
            raise BadRequest("from_account_id is required for an admin key")
        row = await queries.party_account(conn, home, owner, request.asset.value)
    else:
        row = await queries.account(conn, home, request.from_account_id)
    if row is None:
        raise NotFound(f"account {request.from_account_id} not found")
    if row.asset != request.asset.value:
        raise BadRequest(f"account {row.id} holds {row.asset}, not {request.asset.value}")
    if principal.role is Role.ADMIN and acted_for is None:
        if row.system_role not in (None, SystemRole.FUND.value):
            raise Forbidden(
                f"value crosses from a party's account or the fund, not the {row.system_role} account"
            )
    elif row.party_id is None or row.party_id != owner:
        raise Forbidden(f"this key may only send from its own accounts, not {row.id}")
    return row


async def _recipient_account(conn: AsyncConnection, there: uuid.UUID, request: CrossingRequest) -> Any:
    if (request.to_account_id is None) == (request.to_party_id is None):
        raise BadRequest("give either to_account_id or to_party_id (a member, merchant or organisation)")
    if request.to_party_id is not None:
        row = await queries.party_account(conn, there, request.to_party_id, request.asset.value)
        missing = f"party {request.to_party_id} not found in community {there}"
    else:
        row = await queries.account(conn, there, request.to_account_id)
        missing = f"account {request.to_account_id} not found in community {there}"
    if row is None or row.party_kind == PartyKind.COMMUNITY.value:
        raise NotFound(missing)
    if row.asset != request.asset.value:
        raise BadRequest(f"account {row.id} holds {row.asset}, not {request.asset.value}")
    if row.party_id is None and row.system_role != SystemRole.FUND.value:
        raise BadRequest("value crosses to a member, merchant or organisation, or to the community fund")
    return row


def crossing_view(row: Any, memo: str | None = None) -> dict[str, Any]:
    view = {
        "id": str(row.id),
        "district_id": str(row.district_id),
        "asset": row.asset,
        "amount_requested": row.amount_requested,
        "amount_sent": row.amount_sent,
        "amount_received": row.amount_received,
        "kept": row.amount_requested - row.amount_sent,
        "rate": {"from": row.rate_from, "to": row.rate_to},
        "from": {
            "community_id": str(row.from_community_id),
            "account_id": str(row.from_account_id),
            "transaction_id": str(row.from_transaction_id),
        },
        "district": {"transaction_id": str(row.district_transaction_id)},
        "to": {
            "community_id": str(row.to_community_id),
            "account_id": str(row.to_account_id),
            "transaction_id": str(row.to_transaction_id),
        },
        "acted_for": None if row.acted_for is None else str(row.acted_for),
        "created_at": rfc3339(row.created_at),
    }
    if memo is not None:
        view["memo"] = memo
    return view


async def view_with_memo(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    from timebank.ledger import queries as ledger_queries

    tx = await ledger_queries.transaction_in_community(conn, row.from_community_id, row.from_transaction_id)
    return crossing_view(row, tx.memo if tx is not None else None)


def may_read(principal: Principal, row: Any) -> bool:
    """The district's admin; the admins and auditors of either community; the owners
    of either end's account (checked by the caller through ``owned``)."""
    if principal.role is Role.DISTRICT_ADMIN:
        return principal.community_id == row.district_id
    return principal.community_id in (row.from_community_id, row.to_community_id)


async def get_crossing(conn: AsyncConnection, principal: Principal, crossing_id: uuid.UUID) -> dict[str, Any]:
    row = await queries.crossing(conn, crossing_id)
    if row is None or not may_read(principal, row):
        raise NotFound(f"crossing {crossing_id} not found")
    if principal.role not in (Role.ADMIN, Role.AUDITOR, Role.DISTRICT_ADMIN):
        mine = await _own_accounts(conn, principal)
        if row.from_account_id not in mine and row.to_account_id not in mine:
            raise NotFound(f"crossing {crossing_id} not found")
    view = await view_with_memo(conn, row)
    if principal.role is Role.DISTRICT_ADMIN:
        # the district sees communities, never a member: no account of either end, no memo
        view["from"]["account_id"] = view["to"]["account_id"] = None
        view.pop("memo", None)
        view["acted_for"] = None
    return view


async def _own_accounts(conn: AsyncConnection, principal: Principal) -> list[uuid.UUID]:
    from timebank.ledger import queries as ledger_queries

    if principal.subject_id is None:
        return []
    return [a.id for a in await ledger_queries.accounts_of_party(conn, principal.subject_id)]


async def crossings_page(
    conn: AsyncConnection, principal: Principal, cursor: str | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """The community's crossings in and out (admins, auditors), or the key's own."""
    accounts = None if principal.role in (Role.ADMIN, Role.AUDITOR) else await _own_accounts(conn, principal)
    rows = await queries.crossings_page(
        conn, principal.community_id, accounts, after_time_id(cursor), limit + 1
    )
    items = [await view_with_memo(conn, r) for r in rows[:limit]]
    last = rows[limit - 1] if len(rows) > limit else None
    return items, None if last is None else time_id_cursor(last.created_at, last.id)

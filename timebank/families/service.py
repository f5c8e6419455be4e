"""Family links (亲情账户): two members linked with both consents and a staff
confirmation; gifts between them; acting for a relative on the actions they granted.

* **Linking.** A member makes an offer with a relation (what the relative is to them)
  and gets a one-time family code (亲情码: 8 characters of an alphabet without look-alikes,
  shown once, only its SHA-256 kept, valid 7 days). The relative, a resident of the same
  community or of another one of the same district, enters it: their consent. Then an
  admin of either member's community confirms, and only then is the link live. Either
  member or an admin of either community may end it (its grants end with it). Wrong
  codes are counted per member (``CODE_TRIES``): a code has ~40 bits, and ten wrong
  ones an hour leave guessing hopeless.
* **Gifts** between the two members of a live link: a ledger transfer within one
  community, a crossing (``districts.crossing.cross``) between two, with no other limits
  than the district's.
* **Acting for a relative.** Each member grants the other a chosen list of actions
  (view, redeem, give) and may revoke them. The other then acts through the same
  services as the relative's own key would (balances, ``redemptions.redeem``,
  ``ledger.transfer`` / ``cross(..., acted_for=...)``) with a principal that speaks for
  the relative (``proxy_principal``: the actor's key id, the relative's community and
  member), and every such action is recorded in ``proxy_actions`` in the same database
  transaction. Without the grant it is refused (403) and nothing is written.

Who sees a link: its two members, and the admins and auditors of either member's
community; nobody else learns that it exists (404). Staff see only their own member's
links, and of the relative only the name and community the link shows.
"""

from __future__ import annotations

import hashlib
import secrets
import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import service as community
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, Conflict, DomainError, Forbidden, NotFound
from timebank.core.roles import PartyKind, Role
from timebank.core.terms import Asset, Kind
from timebank.districts import crossing
from timebank.districts import queries as district_queries
from timebank.districts.crossing import CrossingRequest, NotInDistrict
from timebank.families import queries
from timebank.ledger import queries as ledger_queries
from timebank.ledger import service as ledger
from timebank.log.keys import Signer
from timebank.redemption import redemptions
from timebank.redemption.redemption_views import redemption_answer
from timebank.volunteer.standing import standing

RELATIONS = ("parent", "child", "spouse", "sibling", "grandparent", "grandchild", "relative", "carer")
# What member_a is to member_b, when the relation says what member_b is to member_a.
INVERSE = {
    "parent": "child",
    "child": "parent",
    "grandparent": "grandchild",
    "grandchild": "grandparent",
    "carer": "cared_for",
}
ACTIONS = ("view", "redeem", "give")

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"  # no I, L, O, 0, 1: nothing to mistake when read aloud
CODE_LENGTH = 8  # 31^8 ≈ 8.5 × 10^11
CODE_DAYS = 7
MAX_OPEN_OFFERS = 5  # codes of one member nobody answered yet
CODE_TRIES_LIMIT = 10  # wrong codes per member ...
CODE_TRIES_WINDOW = 3600  # ... per hour
MAX_LISTED = 200


class FamilyCodeNotUsable(DomainError):
    slug, status, title = (
        "family-code-not-usable",
        422,
        "The family code is not right, was used, or has expired",
    )


class OwnFamilyCode(DomainError):
    slug, status, title = "family-code-own", 422, "This is the member's own family code"


class FamilyCodeTries(DomainError):
    slug, status, title = "family-code-tries", 429, "Too many wrong family codes; try again later"


class TooManyOffers(DomainError):
    slug, status, title = "family-codes-open", 409, "Too many family codes nobody used yet"


class AlreadyLinked(DomainError):
    slug, status, title = "family-already-linked", 409, "The two members are already linked"


class FamilyNotInDistrict(DomainError):
    slug, status, title = "family-not-in-district", 422, "The two communities are not in one district"


class LinkNotLive(DomainError):
    slug, status, title = "family-link-not-live", 409, "The family link is not live"


class NotGranted(DomainError):
    slug, status, title = "family-action-not-granted", 403, "The relative has not allowed this action"


# --- the family code ---------------------------------------------------------------------------


def new_code() -> str:
    return "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str | None:
    """A code as typed (spaces, dashes, lower case) in its one form; None if it cannot be one."""
    code = "".join(ch for ch in text.upper() if ch not in " -\u3000")
    if len(code) != CODE_LENGTH or any(ch not in CODE_ALPHABET for ch in code):
        return None
    return code


def hash_code(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def code_groups(code: str) -> str:
    """The code as shown, in two groups of four, easy to read aloud: ``ABCD 2345``."""
    return f"{code[:4]} {code[4:]}"


class Attempts:
    """Wrong family codes per member in fixed windows, in memory (per process: with N
    service processes a member gets N × limit tries, still far from guessing a code)."""

    def __init__(self, limit: int, window: float, max_members: int = 100_000) -> None:
        self.limit, self.window, self.max_members = limit, window, max_members
        self._seen: dict[str, tuple[float, int]] = {}

    def retry_after(self, who: str) -> int | None:
        seen = self._seen.get(who)
        if seen is None:
            return None
        left = seen[0] + self.window - time.monotonic()
        if left <= 0:
            del self._seen[who]
            return None
        return int(left) + 1 if seen[1] >= self.limit else None

    def fail(self, who: str) -> None:
        now = time.monotonic()
        started, failures = self._seen.get(who, (now, 0))
        if started + self.window <= now:
            started, failures = now, 0
        if who not in self._seen and len(self._seen) >= self.max_members:
            self._seen.clear()  # bounded: forgetting is only less strict
        self._seen[who] = (started, failures + 1)


CODE_TRIES = Attempts(CODE_TRIES_LIMIT, CODE_TRIES_WINDOW)


# --- views ---------------------------------------------------------------------------------------


def status_of(row: Any, now: datetime) -> str:
    if row.ended_at is not None:
        return "ended"
    if row.member_b is None:
        return "expired" if row.code_expires_at <= now else "offered"
    if row.confirmed_at is None:
        return "waiting_for_staff"
    return "live"


def side_of(principal: Principal, row: Any) -> str | None:
    """ "a" or "b" when the principal is a member of the link (a resident's key), else None."""
    if principal.role is not Role.RESIDENT or principal.subject_id is None:
        return None
    if principal.subject_id == row.member_a:
        return "a"
    if row.member_b is not None and principal.subject_id == row.member_b:
        return "b"
    return None


def may_read(principal: Principal, row: Any) -> bool:
    """The two members; the admins and auditors of either member's community."""
    if side_of(principal, row) is not None:
        return True
    if principal.role in (Role.ADMIN, Role.AUDITOR):
        return principal.community_id in (row.community_a, row.community_b)
    return False


def _time(moment: datetime | None) -> str | None:
    return None if moment is None else rfc3339(moment)


def person_view(people: dict[uuid.UUID, Any], member_id: uuid.UUID | None) -> dict[str, Any] | None:
    if member_id is None:
        return None
    row = people.get(member_id)
    return {
        "member_id": str(member_id),
        "display_name": row.display_name if row else "",
        "community_id": str(row.community_id) if row else "",
        "community_name": row.community_name if row else "",
    }


def link_view(
    row: Any,
    principal: Principal,
    people: dict[uuid.UUID, Any],
    grants: list[Any],
    now: datetime,
    code: str | None = None,
) -> dict[str, Any]:
    status = status_of(row, now)
    side = side_of(principal, row)
    granted = {
        "a": [g.action for g in grants if g.link_id == row.id and g.grantor == row.member_a],
        "b": [g.action for g in grants if g.link_id == row.id and g.grantor == row.member_b],
    }
    view: dict[str, Any] = {
        "id": str(row.id),
        "relation": row.relation,
        "status": status,
        "a": person_view(people, row.member_a),
        "b": person_view(people, row.member_b),
        "code_expires_at": rfc3339(row.code_expires_at) if row.member_b is None else None,
        "a_consent_at": rfc3339(row.a_consent_at),
        "b_consent_at": _time(row.b_consent_at),
        "confirmed_at": _time(row.confirmed_at),
        "ended_at": _time(row.ended_at),
        "created_at": rfc3339(row.created_at),
        "grants": granted,
        "me": side,
        "relative": None,
        "relative_is": None,
        "i_allow": None,
        "relative_allows": None,
    }
    if side is not None:
        other = "b" if side == "a" else "a"
        view["relative"] = view[other]
        view["relative_is"] = row.relation if side == "a" else INVERSE.get(row.relation, row.relation)
        view["i_allow"], view["relative_allows"] = granted[side], granted[other]
    if code is not None:
        view["code"] = code
        view["code_shown"] = code_groups(code)
    return view


async def _views(conn: AsyncConnection, principal: Principal, rows: list[Any]) -> list[dict[str, Any]]:
    now = await queries.db_now(conn)
    people = await queries.people(conn, [m for r in rows for m in (r.member_a, r.member_b) if m is not None])
    grants = await queries.grants(conn, [r.id for r in rows])
    return [link_view(r, principal, people, grants, now) for r in rows]


async def _view(conn: AsyncConnection, principal: Principal, row: Any) -> dict[str, Any]:
    return (await _views(conn, principal, [row]))[0]


def _member(principal: Principal) -> uuid.UUID:
    """The resident's member: only a member links, answers, grants, gives and acts."""
    if principal.role is not Role.RESIDENT or principal.subject_id is None:
        raise Forbidden("only a resident (a member's key) may do this")
    return principal.subject_id


async def _readable(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID, lock: str | None) -> Any:
    row = await queries.link(conn, link_id, lock=lock)
    if row is None or not may_read(principal, row):
        raise NotFound(f"family link {link_id} not found")
    return row


# --- linking -----------------------------------------------------------------------------------


async def offer(conn: AsyncConnection, principal: Principal, relation: str) -> dict[str, Any]:
    """A link offer with a new family code (answered once, shown only here)."""
    member = _member(principal)
    if relation not in RELATIONS:
        raise BadRequest(f"relation is one of {', '.join(RELATIONS)}")
    if not await queries.member_in(conn, principal.community_id, member):
        raise NotFound(f"member {member} not found")
    if await queries.open_offers(conn, member) >= MAX_OPEN_OFFERS:
        raise TooManyOffers(
            f"you have {MAX_OPEN_OFFERS} family codes nobody used yet: withdraw one or wait until they expire"
        )
    for _attempt in range(5):
        code = new_code()
        try:
            async with conn.begin_nested():
                row = await queries.insert_link(
                    conn,
                    member_a=member,
                    community_a=principal.community_id,
                    relation=relation,
                    code_hash=hash_code(code),
                    code_expires_at=func.now() + timedelta(days=CODE_DAYS),
                )
            break
        except IntegrityError as exc:  # the same code as another offer (about 1 in 10^11)
            if "code_hash" not in str(exc.orig):
                raise
    else:
        raise AssertionError("no free family code in five tries")
    people = await queries.people(conn, [member])
    return link_view(row, principal, people, [], await queries.db_now(conn), code=code)


async def accept(conn: AsyncConnection, principal: Principal, code: str) -> dict[str, Any]:
    """The relative's consent: the family code they were given, entered by them."""
    member = _member(principal)
    who = f"{principal.community_id}:{member}"
    wait = CODE_TRIES.retry_after(who)
    if wait is not None:
        raise FamilyCodeTries(f"too many wrong family codes: try again in {wait} seconds", retry_after=wait)
    normal = normalise_code(code or "")
    row = None if normal is None else await queries.open_offer_by_code(conn, hash_code(normal))
    if row is None:
        CODE_TRIES.fail(who)
        raise FamilyCodeNotUsable(
            "this family code is not right, was already used or was withdrawn: check it with your relative"
        )
    now = await queries.db_now(conn)
    if row.code_expires_at <= now:
        raise FamilyCodeNotUsable(
            f"this family code expired at {rfc3339(row.code_expires_at)}: ask your relative for a new one"
        )
    if row.member_a == member:
        raise OwnFamilyCode("this is your own family code: give it to your relative to enter")
    if row.community_a != principal.community_id:
        try:
            await crossing.route_between(conn, row.community_a, principal.community_id)
        except NotInDistrict:
            raise FamilyNotInDistrict(
                "your community and your relative's are not in one district, so you cannot be linked"
            ) from None
    if await queries.link_between(conn, row.member_a, member) is not None:
        raise AlreadyLinked("you and this relative are already linked (or waiting for the staff)")
    try:
        async with conn.begin_nested():
            row = await queries.update_link(
                conn,
                row.id,
                member_b=member,
                community_b=principal.community_id,
                b_consent_at=func.now(),
                code_hash=None,
            )
    except IntegrityError as exc:  # a concurrent link of the same two
        if "family_links_pair" not in str(exc.orig):
            raise
        raise AlreadyLinked("you and this relative are already linked (or waiting for the staff)") from None
    return await _view(conn, principal, row)


async def confirm(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID) -> dict[str, Any]:
    """The staff's confirmation (an admin of either member's community), after both consents."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("the staff of either member's community confirm a family link")
    row = await _readable(conn, principal, link_id, "update")
    status = status_of(row, await queries.db_now(conn))
    if status == "live":
        raise Conflict("this family link was already confirmed")
    if status != "waiting_for_staff":
        raise LinkNotLive(
            "this family link was ended"
            if status == "ended"
            else "the relative has not entered the family code yet"
        )
    row = await queries.update_link(conn, link_id, confirmed_at=func.now(), confirmed_by=principal.key_id)
    return await _view(conn, principal, row)


async def end(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID) -> dict[str, Any]:
    """Either member, or an admin of either member's community, ends a link (or withdraws
    an offer): its code can no longer be used, its grants end."""
    row = await _readable(conn, principal, link_id, "update")
    if side_of(principal, row) is None and principal.role is not Role.ADMIN:
        raise Forbidden("the two members and the staff of their communities end a family link")
    if row.ended_at is not None:
        raise Conflict("this family link was already ended")
    row = await queries.update_link(
        conn, link_id, ended_at=func.now(), ended_by=principal.key_id, code_hash=None
    )
    await queries.revoke(conn, link_id, None)
    return await _view(conn, principal, row)


async def get_link(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID) -> dict[str, Any]:
    return await _view(conn, principal, await _readable(conn, principal, link_id, None))


async def list_links(
    conn: AsyncConnection, principal: Principal, status: str | None = None
) -> list[dict[str, Any]]:
    """A resident's own links and offers; the staff's: the links of their community's
    members that a relative answered (waiting for confirmation, live, ended). Newest first."""
    if principal.role is Role.RESIDENT and principal.subject_id is not None:
        rows = await queries.links_of_member(conn, principal.subject_id, MAX_LISTED)
    elif principal.role in (Role.ADMIN, Role.AUDITOR):
        rows = await queries.links_of_community(conn, principal.community_id, MAX_LISTED)
    else:
        raise Forbidden("residents, staff and the supervisory board read family links")
    views = await _views(conn, principal, rows)
    return [v for v in views if status is None or v["status"] == status]


# --- grants --------------------------------------------------------------------------------------


def _other(row: Any, side: str) -> tuple[uuid.UUID, uuid.UUID]:
    """The relative (member, community) of the member on ``side``."""
    return (row.member_b, row.community_b) if side == "a" else (row.member_a, row.community_a)


async def _live(
    conn: AsyncConnection, principal: Principal, link_id: uuid.UUID, lock: str
) -> tuple[Any, str]:
    """The link, locked, of which the principal is a member, and their side; it must be live."""
    _member(principal)
    row = await queries.link(conn, link_id, lock=lock)
    side = None if row is None else side_of(principal, row)
    if row is None or side is None:
        raise NotFound(f"family link {link_id} not found")
    status = status_of(row, await queries.db_now(conn))
    if status != "live":
        words = {
            "offered": "the relative has not entered the family code yet",
            "expired": "the family code expired before the relative entered it",
            "waiting_for_staff": "the staff have not confirmed the family link yet",
            "ended": "the family link was ended",
        }
        raise LinkNotLive(words[status], link_status=status)
    return row, side


async def set_grants(
    conn: AsyncConnection, principal: Principal, link_id: uuid.UUID, actions: list[str]
) -> dict[str, Any]:
    """What the member lets the relative do for them: exactly ``actions`` from now (the
    others are revoked)."""
    wanted = set(actions)
    if not wanted <= set(ACTIONS):
        raise BadRequest(f"actions are some of {', '.join(ACTIONS)}")
    row, _side = await _live(conn, principal, link_id, "update")
    me = _member(principal)
    for action in sorted(wanted):
        await queries.grant(conn, link_id, me, action)
    await queries.revoke(conn, link_id, me, keep=sorted(wanted))
    return await _view(conn, principal, row)


# --- gifts ---------------------------------------------------------------------------------------


def _gift_view(
    link_id: uuid.UUID,
    relative: dict[str, Any] | None,
    asset: str,
    amount: int,
    received: int,
    transaction_id: str,
    memo: str | None,
    crossing_view: dict[str, Any] | None,
) -> dict[str, Any]:
    return {
        "link_id": str(link_id),
        "asset": asset,
        "amount": amount,
        "received": received,
        "to": relative,
        "transaction_id": transaction_id,
        "memo": memo,
        "crossing": crossing_view,
    }


async def give(
    conn: AsyncConnection,
    principal: Principal,
    link_id: uuid.UUID,
    asset: Asset,
    amount: int,
    memo: str | None,
    claim: ledger.Claim,
) -> dict[str, Any]:
    """From the member's own account to the relative's: a transfer within one community,
    a crossing through the district between two (only the district's limits apply)."""
    row, side = await _live(conn, principal, link_id, "share")
    relative, there = _other(row, side)
    me = _member(principal)
    people = await queries.people(conn, [relative])
    if there == principal.community_id:
        mine = await ledger_queries.party_account(conn, there, me, asset.value)
        theirs = await ledger_queries.party_account(conn, there, relative, asset.value)
        if mine is None or theirs is None:
            raise NotFound(f"no {asset.value} account for this family link")
        move = ledger.Movement(mine.id, theirs.id, asset, amount)
        tx = await ledger.transfer(conn, principal, [move], kind=Kind.TRANSFER, memo=memo, claim=claim)
        return _gift_view(
            link_id, person_view(people, relative), asset.value, amount, amount, tx["id"], memo, None
        )
    wanted = CrossingRequest(
        to_community_id=there, asset=asset, amount=amount, to_party_id=relative, memo=memo
    )
    crossed = await crossing.cross(conn, principal, wanted, claim)
    return _gift_view(
        link_id,
        person_view(people, relative),
        asset.value,
        crossed["amount_sent"],
        crossed["amount_received"],
        crossed["from"]["transaction_id"],
        memo,
        crossed,
    )


async def gift_answer(
    conn: AsyncConnection, principal: Principal, link_id: uuid.UUID, tx_id: uuid.UUID
) -> dict[str, Any]:
    """A gift the member made to the relative under the link, from the transaction it
    made in the member's ledger (a replay's answer; the page after giving), or NotFound."""
    row = await _readable(conn, principal, link_id, None)
    side = side_of(principal, row)
    if side is None:
        raise NotFound(f"family link {link_id} not found")
    relative, _there = _other(row, side)
    mine = {a.id for a in await ledger_queries.accounts_of_party(conn, _member(principal))}
    theirs = {a.id for a in await ledger_queries.accounts_of_party(conn, relative)}
    people = await queries.people(conn, [relative])
    found = await district_queries.crossing_of_transaction(conn, tx_id)
    if found is not None:
        if (
            found.from_transaction_id != tx_id
            or found.from_account_id not in mine
            or found.to_account_id not in theirs
        ):
            raise NotFound(f"gift {tx_id} not found")
        view = await crossing.view_with_memo(conn, found)
        return _gift_view(
            link_id,
            person_view(people, relative),
            found.asset,
            found.amount_sent,
            found.amount_received,
            str(tx_id),
            view.get("memo"),
            view,
        )
    tx = await ledger.created_view(conn, principal.community_id, tx_id)
    debit = [e for e in tx["entries"] if e["direction"] == "debit"]
    credit = [e for e in tx["entries"] if e["direction"] == "credit"]
    if (
        tx["kind"] != Kind.TRANSFER.value
        or len(debit) != 1
        or len(credit) != 1
        or uuid.UUID(debit[0]["account_id"]) not in mine
        or uuid.UUID(credit[0]["account_id"]) not in theirs
    ):
        raise NotFound(f"gift {tx_id} not found")
    return _gift_view(
        link_id,
        person_view(people, relative),
        debit[0]["asset"],
        debit[0]["amount"],
        credit[0]["amount"],
        str(tx_id),
        tx["memo"],
        None,
    )


# --- acting for a relative -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Acting:
    """A member acting for their relative under a live link with the relative's grant."""

    link: Any
    actor: uuid.UUID
    actor_community: uuid.UUID
    relative: uuid.UUID
    relative_community: uuid.UUID
    principal: Principal  # speaks for the relative (see proxy_principal)


def proxy_principal(actor: Principal, relative: uuid.UUID, relative_community: uuid.UUID) -> Principal:
    """The principal a relative's services see when the actor acts for them: the
    actor's key (or person) id, so every transaction names who really acted; the
    relative's community and member, whose accounts it may move; a resident's role."""
    return Principal(actor.key_id, relative_community, Role.RESIDENT, relative)


async def acting(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID, action: str) -> Acting:
    """The member may do ``action`` for their relative now (a live link and the
    relative's grant in force), or raise: nothing is written then."""
    assert action in ACTIONS
    row, side = await _live(conn, principal, link_id, "share")
    relative, there = _other(row, side)
    if not await queries.granted(conn, link_id, relative, action):
        words = {
            "view": "see their hours and points",
            "redeem": "redeem rewards",
            "give": "give their hours or points",
        }
        raise NotGranted(f"your relative has not allowed you to {words[action]} for them", action=action)
    me = _member(principal)
    return Acting(
        row, me, principal.community_id, relative, there, proxy_principal(principal, relative, there)
    )


async def _record(
    conn: AsyncConnection, act: Acting, action: str, detail: dict[str, Any], tx_id: uuid.UUID | None
) -> Any:
    return await queries.insert_proxy_action(
        conn,
        link_id=act.link.id,
        actor_member_id=act.actor,
        actor_community_id=act.actor_community,
        for_member_id=act.relative,
        for_community_id=act.relative_community,
        action=action,
        detail=detail,
        transaction_id=tx_id,
    )


def action_view(row: Any, people: dict[uuid.UUID, Any]) -> dict[str, Any]:
    return {
        "id": row.id,
        "link_id": str(row.link_id),
        "action": row.action,
        "actor": person_view(people, row.actor_member_id),
        "for": person_view(people, row.for_member_id),
        "detail": row.detail,
        "transaction_id": None if row.transaction_id is None else str(row.transaction_id),
        "created_at": rfc3339(row.created_at),
    }


async def _action_view(conn: AsyncConnection, row: Any) -> dict[str, Any]:
    people = await queries.people(conn, [row.actor_member_id, row.for_member_id])
    return action_view(row, people)


async def view_relative(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID) -> dict[str, Any]:
    """The relative's balances and star level, as their own key would read them
    (needs their "view" grant); the look is recorded."""
    act = await acting(conn, principal, link_id, "view")
    _, accounts = await community.get_party(conn, act.principal, PartyKind.MEMBER, act.relative)
    balances = {a: {"account_id": str(acc.id), **ledger.balance_view(acc)} for a, acc in accounts.items()}
    star = await standing(conn, act.relative_community, act.relative)
    record = await _record(conn, act, "view", {}, None)
    people = await queries.people(conn, [act.actor, act.relative])
    return {
        "link_id": str(link_id),
        "member": person_view(people, act.relative),
        "balances": balances,
        "star_level": star["star_level"],
        "lifetime_minutes": star["lifetime_minutes"],
        "record": action_view(record, people),
    }


async def _target(
    conn: AsyncConnection, act: Acting, to: tuple[uuid.UUID, uuid.UUID] | None
) -> tuple[uuid.UUID, uuid.UUID]:
    """(community, party) that receives: the actor by default."""
    if to is None:
        return act.actor_community, act.actor
    there, party = to
    if party == act.relative:
        raise BadRequest("the value would go from your relative's account back to it")
    if there == act.relative_community and await queries.party_in(conn, there, party) is None:
        raise NotFound(f"party {party} not found in community {there}")
    return there, party


async def give_for(
    conn: AsyncConnection,
    principal: Principal,
    link_id: uuid.UUID,
    asset: Asset,
    amount: int,
    memo: str | None,
    to: tuple[uuid.UUID, uuid.UUID] | None,
    claim: ledger.Claim,
) -> dict[str, Any]:
    """Give from the relative's account (needs their "give" grant): to the actor, or to
    a party of any community of the district; recorded with the transaction."""
    act = await acting(conn, principal, link_id, "give")
    there, party = await _target(conn, act, to)
    crossed = None
    if there == act.relative_community:
        source = await ledger_queries.party_account(conn, there, act.relative, asset.value)
        target = await ledger_queries.party_account(conn, there, party, asset.value)
        if source is None or target is None:
            raise NotFound(f"party {party} has no {asset.value} account")
        move = ledger.Movement(source.id, target.id, asset, amount)
        tx = await ledger.transfer(conn, act.principal, [move], kind=Kind.TRANSFER, memo=memo, claim=claim)
        tx_id, sent, received = uuid.UUID(tx["id"]), amount, amount
    else:
        wanted = CrossingRequest(
            to_community_id=there, asset=asset, amount=amount, to_party_id=party, memo=memo
        )
        crossed = await crossing.cross(conn, act.principal, wanted, claim, acted_for=act.relative)
        tx_id = uuid.UUID(crossed["from"]["transaction_id"])
        sent, received = crossed["amount_sent"], crossed["amount_received"]
    detail = {
        "asset": asset.value,
        "amount": sent,
        "received": received,
        "to_community_id": str(there),
        "to_party_id": str(party),
        "crossing_id": None if crossed is None else crossed["id"],
        "memo": memo,
    }
    record = await _record(conn, act, "give", detail, tx_id)
    return {**await _action_view(conn, record), "crossing": crossed}


async def redeem_for(
    conn: AsyncConnection,
    principal: Principal,
    link_id: uuid.UUID,
    reward_id: uuid.UUID,
    *,
    signer: Signer,
    claim: ledger.Claim,
) -> dict[str, Any]:
    """Redeem a reward of the relative's community for them with their points (needs
    their "redeem" grant): the voucher is theirs, and shown to the actor."""
    act = await acting(conn, principal, link_id, "redeem")
    redemption = await redemptions.redeem(
        conn, act.principal, reward_id, act.relative, token=None, signer=signer, claim=claim
    )
    detail = {
        "reward_id": str(reward_id),
        "redemption_id": redemption["id"],
        "title": redemption.get("title"),
        "price_points": redemption["price_points"],
    }
    record = await _record(conn, act, "redeem", detail, uuid.UUID(redemption["hold_id"]))
    return {**await _action_view(conn, record), "redemption": redemption}


async def acted_answer(
    conn: AsyncConnection,
    relative: uuid.UUID,
    community_id: uuid.UUID,
    tx_id: uuid.UUID,
    signer: Signer | None,
) -> dict[str, Any]:
    """A replayed give or redemption done for a relative: its record, and what it made."""
    record = await queries.proxy_action_of_transaction(conn, relative, tx_id)
    assert record is not None, f"no record of acting for transaction {tx_id}"
    view = await _action_view(conn, record)
    if record.action == "redeem":
        assert signer is not None
        return {**view, "redemption": await redemption_answer(conn, community_id, tx_id, signer)}
    found = await district_queries.crossing_of_transaction(conn, tx_id)
    return {**view, "crossing": None if found is None else await crossing.view_with_memo(conn, found)}


async def actions_page(
    conn: AsyncConnection, principal: Principal, link_id: uuid.UUID, before: int | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    """What was done for whom under a link, by whom, newest first (the two members;
    the admins and auditors of either community)."""
    row = await _readable(conn, principal, link_id, None)
    members = [m for m in (row.member_a, row.member_b) if m is not None]
    rows = await queries.proxy_actions(conn, link_id, members, before, limit + 1)
    people = await queries.people(conn, members)
    items = [action_view(r, people) for r in rows[:limit]]
    return items, (str(rows[limit - 1].id) if len(rows) > limit else None)

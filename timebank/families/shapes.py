"""Request bodies and response shapes of family links (``/v1/family-links``), for the
OpenAPI schema and the contract tests (the style of ``timebank/schemas``)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

import msgspec

from timebank import schemas
from timebank.schemas.districts import AssetName, Crossing
from timebank.schemas.ledger import MemberBalance
from timebank.schemas.openapi import Out
from timebank.schemas.redemption import Redemption

Relation = Literal["parent", "child", "spouse", "sibling", "grandparent", "grandchild", "relative", "carer"]
ActionName = Literal["view", "redeem", "give"]
LinkStatus = Literal["offered", "expired", "waiting_for_staff", "live", "ended"]
FamilyCode = Annotated[
    str,
    msgspec.Meta(
        min_length=1,
        max_length=32,
        pattern=schemas.TEXT_PATTERN,
        description="the family code as the relative typed it (spaces and dashes are ignored)",
    ),
]


# --- bodies ------------------------------------------------------------------------------------


class OfferIn(msgspec.Struct, forbid_unknown_fields=True):
    """What the relative (who will enter the code) is to the member making the offer."""

    relation: Relation


class AcceptIn(msgspec.Struct, forbid_unknown_fields=True):
    code: FamilyCode


class GrantsIn(msgspec.Struct, forbid_unknown_fields=True):
    """Exactly what the relative may do for the member from now (left out: revoked)."""

    actions: Annotated[list[ActionName], msgspec.Meta(max_length=3)]


class GiftIn(msgspec.Struct, forbid_unknown_fields=True):
    asset: AssetName
    amount: schemas.Amount
    memo: schemas.Memo | None = None


class PartyRef(msgspec.Struct, forbid_unknown_fields=True):
    """A member, merchant or organisation of a community of the district."""

    community_id: uuid.UUID
    party_id: uuid.UUID


class ActGiveIn(msgspec.Struct, forbid_unknown_fields=True):
    """From the relative's account: to the member acting (``to`` absent or null), or to a party."""

    asset: AssetName
    amount: schemas.Amount
    memo: schemas.Memo | None = None
    to: PartyRef | None = None


class ActRedeemIn(msgspec.Struct, forbid_unknown_fields=True):
    """A reward of the relative's community, redeemed with their points (one voucher)."""

    reward_id: uuid.UUID


# --- answers -----------------------------------------------------------------------------------


class FamilyPerson(Out):
    member_id: str
    display_name: str
    community_id: str
    community_name: str


class FamilyGrants(Out):
    """What each side lets the other do for them."""

    a: list[ActionName]
    b: list[ActionName]


class FamilyLink(Out):
    """``relation`` is what b is (or will be) to a; ``relative_is`` what the relative is to
    the member reading it. ``code`` comes only with the answer that made the offer."""

    id: str
    relation: Relation
    status: LinkStatus
    a: FamilyPerson
    b: FamilyPerson | None
    code_expires_at: str | None
    a_consent_at: str
    b_consent_at: str | None
    confirmed_at: str | None
    ended_at: str | None
    created_at: str
    grants: FamilyGrants
    me: Literal["a", "b"] | None
    relative: FamilyPerson | None
    relative_is: str | None
    i_allow: list[ActionName] | None
    relative_allows: list[ActionName] | None
    code: str | None = None
    code_shown: str | None = None


class FamilyLinkList(Out):
    items: list[FamilyLink]


class FamilyGift(Out):
    """``amount`` left the giver's account, ``received`` reached the relative's (a points
    rate between two communities may make them differ); ``crossing`` between communities."""

    link_id: str
    asset: AssetName
    amount: int
    received: int
    to: FamilyPerson | None
    transaction_id: str
    memo: str | None
    crossing: Crossing | None


class ProxyAction(Out):
    """One thing a member did for their relative (``for``), under a family link."""

    id: int
    link_id: str
    action: ActionName
    actor: FamilyPerson
    for_: FamilyPerson = msgspec.field(name="for")
    detail: dict[str, Any]
    transaction_id: str | None
    created_at: str


class ProxyActionPage(Out):
    items: list[ProxyAction]
    next_cursor: str | None


class ActedGive(ProxyAction, kw_only=True):
    crossing: Crossing | None


class ActedRedeem(ProxyAction, kw_only=True):
    redemption: Redemption


class RelativeView(Out):
    link_id: str
    member: FamilyPerson
    balances: dict[str, MemberBalance]
    star_level: int
    lifetime_minutes: int
    record: ProxyAction

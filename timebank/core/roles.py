"""Who acts: the kinds of party and the roles of keys (and, later, of people who sign in).

At the bottom of the import order: every package speaks of roles, none owns them.
"""

from __future__ import annotations

from enum import StrEnum


class PartyKind(StrEnum):
    MEMBER = "member"
    ORGANISATION = "organisation"
    MERCHANT = "merchant"
    COMMUNITY = "community"  # a member community, as a party of its district's ledger


class Role(StrEnum):
    ADMIN = "admin"
    RECORDER = "recorder"
    MERCHANT = "merchant"
    RESIDENT = "resident"
    AUDITOR = "auditor"
    # A district office (街道/区): sets up its district, limits, rates, settles; it
    # speaks for the district's own ledger and sees no member of any community.
    DISTRICT_ADMIN = "district_admin"


# The kind of party each role's key speaks for; admin keys speak for the community.
ROLE_SUBJECT_KIND: dict[Role, PartyKind | None] = {
    Role.ADMIN: None,
    Role.RECORDER: PartyKind.ORGANISATION,
    Role.MERCHANT: PartyKind.MERCHANT,
    Role.RESIDENT: PartyKind.MEMBER,
    Role.AUDITOR: PartyKind.MEMBER,  # a named member of the residents' supervisory board
    Role.DISTRICT_ADMIN: None,
}

# The roles whose keys speak for their whole ledger (no subject), and which roles a
# ledger of each kind (``communities.kind``) may give out: a district's ledger has
# district admins only, a community's never has one.
ADMIN_ROLES = frozenset({Role.ADMIN, Role.DISTRICT_ADMIN})
ROLES_OF_LEDGER: dict[str, frozenset[Role]] = {
    "community": frozenset(Role) - {Role.DISTRICT_ADMIN},
    "district": frozenset({Role.DISTRICT_ADMIN}),
}

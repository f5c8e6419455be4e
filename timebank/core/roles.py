"""Who acts: the kinds of party and the roles of keys (and, later, of people who sign in).

At the bottom of the import order: every package speaks of roles, none owns them.
"""

from __future__ import annotations

from enum import StrEnum


class PartyKind(StrEnum):
    MEMBER = "member"
    ORGANISATION = "organisation"
    MERCHANT = "merchant"


class Role(StrEnum):
    ADMIN = "admin"
    RECORDER = "recorder"
    MERCHANT = "merchant"
    RESIDENT = "resident"
    AUDITOR = "auditor"


# The kind of party each role's key speaks for; admin keys speak for the community.
ROLE_SUBJECT_KIND: dict[Role, PartyKind | None] = {
    Role.ADMIN: None,
    Role.RECORDER: PartyKind.ORGANISATION,
    Role.MERCHANT: PartyKind.MERCHANT,
    Role.RESIDENT: PartyKind.MEMBER,
    Role.AUDITOR: PartyKind.MEMBER,  # a named member of the residents' supervisory board
}

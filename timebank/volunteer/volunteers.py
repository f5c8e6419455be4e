"""Finding volunteers to record service for: the community's members by a part of their
name, their volunteer number (external_ref), the phone number (login) a resident signs
in with, or their member id. Results are bounded; staff and recorders only (a resident
finds a neighbour by their full phone number only: ``people.accounts.neighbour``).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries as parties
from timebank.community import service as community
from timebank.core.access import Principal
from timebank.core.problems import Forbidden
from timebank.core.roles import PartyKind, Role
from timebank.people import accounts
from timebank.people import queries as people

SEARCH_LIMIT = 20
MIN_NAME_TEXT = 1  # one Chinese character is a name's part already
MAX_TEXT = 100


def _may_search(principal: Principal) -> None:
    if principal.role not in (Role.ADMIN, Role.AUDITOR, Role.RECORDER):
        raise Forbidden("only staff and recorders look members up")


async def members_named(
    conn: AsyncConnection, principal: Principal, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The names of the community's members among ``ids`` (anything else is left out)."""
    _may_search(principal)
    wanted = set(ids)
    if not wanted:
        return {}
    found = await parties.parties_of_kind(conn, principal.community_id, PartyKind.MEMBER, wanted)
    return await parties.names_in_community(conn, principal.community_id, [r.id for r in found])


async def search_members(
    conn: AsyncConnection, principal: Principal, text: str, limit: int = SEARCH_LIMIT
) -> list[dict[str, Any]]:
    """Up to ``limit`` members matching ``text``: ``[{"id", "name", "ref", "by"}]``, where
    ``by`` says how it matched ("id", "phone", "name"). A member id or a resident's
    phone number comes first; then names and volunteer numbers containing the text
    (``community.search_parties``, the staff's member search)."""
    _may_search(principal)
    text = " ".join((text or "").split())[:MAX_TEXT]
    if len(text) < MIN_NAME_TEXT:
        return []
    found: dict[uuid.UUID, str] = {}
    try:
        member_id = uuid.UUID(text)
    except ValueError:
        member_id = None
    if member_id is not None:
        for mid in (await members_named(conn, principal, [member_id])).keys():
            found[mid] = "id"
    login = accounts.normalise_login(text)
    if login and any(c.isdigit() for c in login):
        person = await people.resident_by_login(conn, principal.community_id, login)
        if person is not None and person.subject_id is not None:
            found.setdefault(person.subject_id, "phone")
    named, _ = await community.search_parties(conn, principal, PartyKind.MEMBER, text, None, limit)
    names = {uuid.UUID(p["id"]): (p["display_name"], p.get("external_ref")) for p in named}
    missing = [m for m in found if m not in names]
    if missing:
        extra = await parties.parties_of_kind(conn, principal.community_id, PartyKind.MEMBER, missing)
        refs = {r.id: r.external_ref for r in extra}
        for mid, name in (await parties.names_in_community(conn, principal.community_id, refs)).items():
            names[mid] = (name, refs.get(mid))
    for mid in sorted(names, key=lambda m: names[m][0]):
        found.setdefault(mid, "name")
    return [
        {"id": str(mid), "name": names[mid][0], "ref": names[mid][1], "by": by}
        for mid, by in list(found.items())[:limit]
        if mid in names
    ]


async def members_by_ref(conn: AsyncConnection, principal: Principal, refs: Iterable[str]) -> dict[str, str]:
    """The names of the community's members by their volunteer number (external_ref)."""
    _may_search(principal)
    wanted = {r for r in refs if r}
    if not wanted:
        return {}
    found = await parties.parties_of_kind(conn, principal.community_id, PartyKind.MEMBER, (), wanted)
    names = await parties.names_in_community(conn, principal.community_id, [r.id for r in found])
    return {r.external_ref: names[r.id] for r in found if r.external_ref in wanted and r.id in names}

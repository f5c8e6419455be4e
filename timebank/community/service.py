"""Communities (tenants), their parties and API keys.

Creating a community opens its system accounts (issuance, expired, fund per asset);
creating a member, organisation or merchant opens its HOUR and POINT accounts, in
the same database transaction, so a party never exists without its accounts.
The rows come from ``queries.py`` (this package's tables) and the ledger's
``queries.py`` (the accounts).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import queries
from timebank.core.access import Principal, new_api_key
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, DuplicateExternalRef, Forbidden, LastAdminKey, NotFound, a
from timebank.core.roles import ADMIN_ROLES, ROLE_SUBJECT_KIND, ROLES_OF_LEDGER, PartyKind, Role
from timebank.core.terms import Asset, SystemRole
from timebank.ledger import queries as ledger_queries

MAX_NAME = 200

# System accounts: issuance may go negative (it is where value comes from);
# the expired sink and the fund can only give what they received.
SYSTEM_ACCOUNT_GUARDED = {SystemRole.ISSUANCE: False, SystemRole.EXPIRED: True, SystemRole.FUND: True}


def _clean_name(value: str | None, field: str) -> str:
    name = (value or "").strip()
    if not 1 <= len(name) <= MAX_NAME:
        raise BadRequest(f"{field} is 1 to {MAX_NAME} characters")
    return name


async def create_community(
    conn: AsyncConnection, name: str, timezone: str = "Asia/Shanghai"
) -> dict[str, Any]:
    """A new tenant with its system accounts and a first admin key (shown once)."""
    name = _clean_name(name, "name")
    community_id = await queries.insert_community(conn, name, timezone)
    for role, guarded in SYSTEM_ACCOUNT_GUARDED.items():
        for asset in Asset:
            await ledger_queries.open_account(
                conn, community_id, asset.value, guarded=guarded, system_role=role.value
            )
    key = await insert_key(conn, community_id, Role.ADMIN, None, "first admin key", None)
    return {"community_id": str(community_id), "admin_key": key["key"], "admin_key_id": key["id"]}


async def community_view(conn: AsyncConnection, community_id: uuid.UUID) -> dict[str, Any]:
    community = await queries.community_by_id(conn, community_id)
    # issuance, expired and fund always; clearing once the community joined a district
    accounts: dict[str, dict[str, str]] = {role.value: {} for role in SYSTEM_ACCOUNT_GUARDED}
    for row in await ledger_queries.system_accounts(conn, community_id):
        accounts.setdefault(row.system_role, {})[row.asset] = str(row.id)
    return {
        "id": str(community.id),
        "name": community.name,
        "timezone": community.timezone,
        "created_at": rfc3339(community.created_at),
        "accounts": accounts,
    }


async def create_party(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    kind: PartyKind,
    name: str,
    external_ref: str | None = None,
) -> dict[str, Any]:
    name = _clean_name(name, "display_name" if kind is PartyKind.MEMBER else "name")
    if external_ref is not None:
        external_ref = _clean_name(external_ref, "external_ref")
    try:
        async with conn.begin_nested():
            party = await queries.insert_party(conn, community_id, kind.value, name, external_ref)
    except IntegrityError as exc:
        if "parties_external_ref" in str(exc.orig):
            raise DuplicateExternalRef(
                f"{a(kind.value)} with external_ref {external_ref!r} already exists"
            ) from None
        raise
    accounts = {
        asset.value: str(
            await ledger_queries.open_account(
                conn, community_id, asset.value, guarded=True, party_id=party.id
            )
        )
        for asset in Asset
    }
    return party_view(party, accounts)


def party_view(party: Any, accounts: dict[str, str]) -> dict[str, Any]:
    view = {"id": str(party.id), "kind": party.kind}
    name_field = "display_name" if party.kind == PartyKind.MEMBER else "name"
    view[name_field] = party.display_name
    if party.external_ref is not None:
        view["external_ref"] = party.external_ref
    view["accounts"] = accounts
    view["created_at"] = rfc3339(party.created_at)
    return view


async def member_exists(conn: AsyncConnection, principal: Principal, member_id: uuid.UUID) -> None:
    """A 404 unless the member is one of the community's that the principal may see."""
    found = await queries.party_exists(conn, principal.community_id, member_id, PartyKind.MEMBER)
    if not found or (principal.role is Role.RESIDENT and principal.subject_id != member_id):
        raise NotFound(f"member {member_id} not found")


def may_read_party(principal: Principal, party_id: uuid.UUID) -> bool:
    return principal.role in (Role.ADMIN, Role.AUDITOR) or principal.subject_id == party_id


async def get_party(
    conn: AsyncConnection, principal: Principal, kind: PartyKind, party_id: uuid.UUID
) -> tuple[Any, dict[str, Any]]:
    party = await queries.party_in_community(conn, principal.community_id, party_id, kind.value)
    if party is None or not may_read_party(principal, party_id):
        raise NotFound(f"{kind.value} {party_id} not found")
    accounts = await ledger_queries.accounts_of_party(conn, party_id)
    return party, {a.asset: a for a in accounts}


async def party_names(
    conn: AsyncConnection, community_id: uuid.UUID, ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, str]:
    """The names of the community's parties among ``ids`` (e.g. the merchants of the
    rewards a page lists: their names are public within the community)."""
    return await queries.names_in_community(conn, community_id, ids)


async def list_parties(
    conn: AsyncConnection, principal: Principal, kind: PartyKind, after: uuid.UUID | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    rows = await queries.parties_page(conn, principal.community_id, kind.value, after, limit + 1)
    accounts = await ledger_queries.party_account_ids(conn, [r.id for r in rows[:limit]])
    items = [party_view(r, accounts.get(r.id, {})) for r in rows[:limit]]
    return items, (str(rows[limit - 1].id) if len(rows) > limit else None)


MAX_SEARCH = 100


async def search_parties(
    conn: AsyncConnection,
    principal: Principal,
    kind: PartyKind,
    text: str,
    after: uuid.UUID | None,
    limit: int,
) -> tuple[list[dict[str, Any]], str | None]:
    """Like ``list_parties``, only those whose name or external_ref contains ``text``
    (any case; the console's search box). Empty text: every party of the kind."""
    text = (text or "").strip()[:MAX_SEARCH]
    if not text:
        return await list_parties(conn, principal, kind, after, limit)
    rows = await queries.search_parties(conn, principal.community_id, kind.value, text, after, limit + 1)
    accounts = await ledger_queries.party_account_ids(conn, [r.id for r in rows[:limit]])
    items = [party_view(r, accounts.get(r.id, {})) for r in rows[:limit]]
    return items, (str(rows[limit - 1].id) if len(rows) > limit else None)


async def update_party(
    conn: AsyncConnection,
    principal: Principal,
    kind: PartyKind,
    party_id: uuid.UUID,
    name: str,
    external_ref: str | None,
) -> dict[str, Any]:
    """Correct a party's name and external_ref (admins): the same rules as when it was
    registered; ``external_ref`` None clears it. Its accounts and history stay as they are."""
    if not principal.is_admin:
        raise Forbidden("only an admin may change a party")
    name = _clean_name(name, "display_name" if kind is PartyKind.MEMBER else "name")
    if external_ref is not None:
        external_ref = _clean_name(external_ref, "external_ref")
    try:
        async with conn.begin_nested():
            row = await queries.update_party(
                conn,
                principal.community_id,
                party_id,
                kind.value,
                display_name=name,
                external_ref=external_ref,
            )
    except IntegrityError as exc:
        if "parties_external_ref" in str(exc.orig):
            raise DuplicateExternalRef(
                f"{a(kind.value)} with external_ref {external_ref!r} already exists"
            ) from None
        raise
    if row is None:
        raise NotFound(f"{kind.value} {party_id} not found")
    accounts = await ledger_queries.accounts_of_party(conn, party_id)
    return party_view(row, {a.asset: str(a.id) for a in accounts})


# --- API keys --------------------------------------------------------------------------


async def insert_key(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    role: Role,
    subject_id: uuid.UUID | None,
    label: str | None,
    created_by: uuid.UUID | None,
) -> dict[str, Any]:
    key, key_hash, prefix = new_api_key()
    row = await queries.insert_key(
        conn,
        community_id=community_id,
        role=role.value,
        subject_id=subject_id,
        label=label,
        key_hash=key_hash,
        key_prefix=prefix,
        created_by=created_by,
    )
    view = {
        "id": str(row.id),
        "key": key,
        "role": role.value,
        "label": label,
        "prefix": prefix,
        "created_at": rfc3339(row.created_at),
    }
    if subject_id is not None:
        view["subject_id"] = str(subject_id)
    return view


async def checked_role(
    conn: AsyncConnection, community_id: uuid.UUID, role: str, subject_id: uuid.UUID | None
) -> Role:
    """The role, once its subject is right: none for admin, else a party of the role's
    kind in the community. One rule for API keys and for people who sign in."""
    try:
        role_ = Role(role)
    except ValueError:
        raise BadRequest(f"role is one of {', '.join(r.value for r in Role)}") from None
    if role_ not in ROLES_OF_LEDGER[await queries.ledger_kind(conn, community_id) or "community"]:
        raise BadRequest(
            f"a district gives out {Role.DISTRICT_ADMIN.value} roles only"
            if role_ is not Role.DISTRICT_ADMIN
            else f"{a(Role.DISTRICT_ADMIN.value)} belongs to a district, not a community"
        )
    wanted_kind = ROLE_SUBJECT_KIND[role_]
    if wanted_kind is None:
        if subject_id is not None:
            raise BadRequest(f"{a(role_.value)} has no subject_id")
    else:
        if subject_id is None:
            raise BadRequest(f"{a(role_.value)} needs subject_id: the {wanted_kind.value} it acts for")
        subject = await queries.party_in_community(conn, community_id, subject_id)
        if subject is None:
            raise NotFound(f"party {subject_id} not found")
        if subject.kind != wanted_kind.value:
            raise BadRequest(
                f"{a(role_.value)}'s subject must be {a(wanted_kind.value)}, not {a(subject.kind)}"
            )
    return role_


async def issue_key(
    conn: AsyncConnection, principal: Principal, role: str, subject_id: uuid.UUID | None, label: str | None
) -> dict[str, Any]:
    if label is not None and len(label) > MAX_NAME:
        raise BadRequest(f"label is at most {MAX_NAME} characters")
    role_ = await checked_role(conn, principal.community_id, role, subject_id)
    # ``api_keys.created_by`` names an API key (a foreign key); a person who signed in
    # (the console) acts with their own id, which is no key: then it stays empty.
    by_key = await queries.key_in_community(conn, principal.community_id, principal.key_id)
    created_by = principal.key_id if by_key is not None else None
    return await insert_key(conn, principal.community_id, role_, subject_id, label, created_by)


async def list_keys(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    rows = await queries.keys_of_community(conn, principal.community_id)
    return [
        {
            "id": str(r.id),
            "role": r.role,
            "subject_id": None if r.subject_id is None else str(r.subject_id),
            "label": r.label,
            "prefix": r.key_prefix,
            "created_at": rfc3339(r.created_at),
            "revoked_at": None if r.revoked_at is None else rfc3339(r.revoked_at),
        }
        for r in rows
    ]


async def revoke_key(conn: AsyncConnection, principal: Principal, key_id: uuid.UUID) -> None:
    if principal.role not in ADMIN_ROLES:
        raise Forbidden("only an admin may revoke keys")
    # Lock the community's admin keys first so two revocations cannot both pass the check.
    admins = await queries.lock_active_admin_keys(conn, principal.community_id)
    row = await queries.key_in_community(conn, principal.community_id, key_id)
    if row is None:
        raise NotFound(f"api key {key_id} not found")
    if row.revoked_at is not None:
        return  # revoking twice is the same as once
    if row.role in ADMIN_ROLES and len(admins) <= 1:
        raise LastAdminKey("issue another admin key before revoking the last one")
    await queries.revoke_key(conn, key_id)

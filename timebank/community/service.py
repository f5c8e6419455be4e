"""Communities (tenants), their parties and API keys.

Creating a community opens its system accounts (issuance, expired, fund per asset);
creating a member, organisation or merchant opens its HOUR and POINT accounts, in
the same database transaction, so a party never exists without its accounts.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, DuplicateExternalRef, Forbidden, LastAdminKey, NotFound
from timebank.core.roles import ROLE_SUBJECT_KIND, PartyKind, Role
from timebank.core.terms import Asset, SystemRole
from timebank.security import Principal, new_api_key

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
    community_id = (
        await conn.execute(
            text("INSERT INTO communities (name, timezone) VALUES (:n, :tz) RETURNING id"),
            {"n": name, "tz": timezone},
        )
    ).scalar_one()
    for role, guarded in SYSTEM_ACCOUNT_GUARDED.items():
        for asset in Asset:
            await conn.execute(
                text(
                    "INSERT INTO accounts (community_id, asset, system_role, debits_must_not_exceed_credits) "
                    "VALUES (:c, :a, :r, :g)"
                ),
                {"c": community_id, "a": asset.value, "r": role.value, "g": guarded},
            )
    key = await _insert_key(conn, community_id, Role.ADMIN, None, "first admin key", None)
    return {"community_id": str(community_id), "admin_key": key["key"], "admin_key_id": key["id"]}


async def community_view(conn: AsyncConnection, community_id: uuid.UUID) -> dict[str, Any]:
    community = (
        await conn.execute(text("SELECT * FROM communities WHERE id = :c"), {"c": community_id})
    ).one()
    accounts: dict[str, dict[str, str]] = {role.value: {} for role in SystemRole}
    rows = await conn.execute(
        text(
            "SELECT id, system_role, asset FROM accounts WHERE community_id = :c AND system_role IS NOT NULL"
        ),
        {"c": community_id},
    )
    for row in rows:
        accounts[row.system_role][row.asset] = str(row.id)
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
            party = (
                await conn.execute(
                    text(
                        "INSERT INTO parties (community_id, kind, display_name, external_ref) "
                        "VALUES (:c, :k, :n, :x) RETURNING *"
                    ),
                    {"c": community_id, "k": kind.value, "n": name, "x": external_ref},
                )
            ).one()
    except IntegrityError as exc:
        if "parties_external_ref" in str(exc.orig):
            raise DuplicateExternalRef(
                f"a {kind.value} with external_ref {external_ref!r} already exists"
            ) from None
        raise
    accounts = {}
    for asset in Asset:
        accounts[asset.value] = str(
            (
                await conn.execute(
                    text(
                        "INSERT INTO accounts (community_id, asset, party_id, debits_must_not_exceed_credits) "
                        "VALUES (:c, :a, :p, true) RETURNING id"
                    ),
                    {"c": community_id, "a": asset.value, "p": party.id},
                )
            ).scalar_one()
        )
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


def may_read_party(principal: Principal, party_id: uuid.UUID) -> bool:
    return principal.role in (Role.ADMIN, Role.AUDITOR) or principal.subject_id == party_id


async def get_party(
    conn: AsyncConnection, principal: Principal, kind: PartyKind, party_id: uuid.UUID
) -> tuple[Any, dict[str, Any]]:
    party = (
        await conn.execute(
            text("SELECT * FROM parties WHERE id = :id AND community_id = :c AND kind = :k"),
            {"id": party_id, "c": principal.community_id, "k": kind.value},
        )
    ).first()
    if party is None or not may_read_party(principal, party_id):
        raise NotFound(f"{kind.value} {party_id} not found")
    accounts = (
        await conn.execute(text("SELECT * FROM accounts WHERE party_id = :p ORDER BY asset"), {"p": party_id})
    ).all()
    return party, {a.asset: a for a in accounts}


async def list_parties(
    conn: AsyncConnection, principal: Principal, kind: PartyKind, after: uuid.UUID | None, limit: int
) -> tuple[list[dict[str, Any]], str | None]:
    rows = (
        await conn.execute(
            text(
                "SELECT p.*, (SELECT jsonb_object_agg(a.asset, a.id) FROM accounts a WHERE a.party_id = p.id) AS accs "
                "FROM parties p WHERE p.community_id = :c AND p.kind = :k "
                "AND (CAST(:after AS uuid) IS NULL OR p.id > :after) "
                "ORDER BY p.id LIMIT :n"
            ),
            {"c": principal.community_id, "k": kind.value, "after": after, "n": limit + 1},
        )
    ).all()
    items = [party_view(r, r.accs or {}) for r in rows[:limit]]
    return items, (str(rows[limit - 1].id) if len(rows) > limit else None)


# --- API keys --------------------------------------------------------------------------


async def _insert_key(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    role: Role,
    subject_id: uuid.UUID | None,
    label: str | None,
    created_by: uuid.UUID | None,
) -> dict[str, Any]:
    key, key_hash, prefix = new_api_key()
    row = (
        await conn.execute(
            text(
                "INSERT INTO api_keys (community_id, role, subject_id, label, key_hash, key_prefix, created_by) "
                "VALUES (:c, :r, :s, :l, :h, :p, :b) RETURNING id, created_at"
            ),
            {
                "c": community_id,
                "r": role.value,
                "s": subject_id,
                "l": label,
                "h": key_hash,
                "p": prefix,
                "b": created_by,
            },
        )
    ).one()
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


async def issue_key(
    conn: AsyncConnection, principal: Principal, role: str, subject_id: uuid.UUID | None, label: str | None
) -> dict[str, Any]:
    try:
        role_ = Role(role)
    except ValueError:
        raise BadRequest(f"role is one of {', '.join(r.value for r in Role)}") from None
    if label is not None and len(label) > MAX_NAME:
        raise BadRequest(f"label is at most {MAX_NAME} characters")
    wanted_kind = ROLE_SUBJECT_KIND[role_]
    if wanted_kind is None:
        if subject_id is not None:
            raise BadRequest("an admin key has no subject_id")
    else:
        if subject_id is None:
            raise BadRequest(f"a {role_.value} key needs subject_id: the {wanted_kind.value} it acts for")
        kind = (
            await conn.execute(
                text("SELECT kind FROM parties WHERE id = :id AND community_id = :c"),
                {"id": subject_id, "c": principal.community_id},
            )
        ).scalar_one_or_none()
        if kind is None:
            raise NotFound(f"party {subject_id} not found")
        if kind != wanted_kind.value:
            raise BadRequest(f"a {role_.value} key's subject must be a {wanted_kind.value}, not a {kind}")
    return await _insert_key(conn, principal.community_id, role_, subject_id, label, principal.key_id)


async def list_keys(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    rows = await conn.execute(
        text("SELECT * FROM api_keys WHERE community_id = :c ORDER BY created_at, id"),
        {"c": principal.community_id},
    )
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
    if not principal.is_admin:
        raise Forbidden("only an admin may revoke keys")
    # Lock the community's admin keys first so two revocations cannot both pass the check.
    admins = (
        await conn.execute(
            text(
                "SELECT id FROM api_keys WHERE community_id = :c AND role = 'admin' AND revoked_at IS NULL "
                "ORDER BY id FOR UPDATE"
            ),
            {"c": principal.community_id},
        )
    ).all()
    row = (
        await conn.execute(
            text("SELECT role, revoked_at FROM api_keys WHERE id = :id AND community_id = :c"),
            {"id": key_id, "c": principal.community_id},
        )
    ).first()
    if row is None:
        raise NotFound(f"api key {key_id} not found")
    if row.revoked_at is not None:
        return  # revoking twice is the same as once
    if row.role == Role.ADMIN and len(admins) <= 1:
        raise LastAdminKey("issue another admin key before revoking the last one")
    await conn.execute(text("UPDATE api_keys SET revoked_at = now() WHERE id = :id"), {"id": key_id})

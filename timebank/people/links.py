"""One-time sign-in links (and the QR code on a printed member card) for people who
will never remember a password.

Staff issue a link for a person of their community; it signs in once, until it
expires (72 hours by default), unless revoked. Only the SHA-256 of its 32 random bytes
is stored. Opening the link shows whose it is and a button: the link is used by that
button's POST, not by the GET, so a chat app's link preview cannot spend it.
"""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal, hash_key
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, DomainError, NotFound
from timebank.people import accounts, queries

MAX_HOURS = 14 * 24
TOKEN_PATH = "/s/"


class LinkNotUsable(DomainError):
    slug, status, title = "sign-in-link-not-usable", 410, "This sign-in link cannot be used"

    def __init__(self, reason: str) -> None:
        super().__init__(f"the sign-in link was {reason}")
        self.reason = reason  # "used", "expired", "revoked", "unknown"


def link_path(token: str) -> str:
    return TOKEN_PATH + token


async def issue_link(
    conn: AsyncConnection, principal: Principal, person_id: uuid.UUID, hours: int
) -> dict[str, Any]:
    """A new link for the person (admins only); the token is shown only here."""
    if not 1 <= hours <= MAX_HOURS:
        raise BadRequest(f"a sign-in link lives 1 to {MAX_HOURS} hours")
    person = await accounts.get_person(conn, principal, person_id)
    if person.disabled_at is not None:
        raise BadRequest("the person is disabled")
    token = secrets.token_urlsafe(32)
    row = await queries.insert_link(
        conn,
        person_id=person.id,
        token_hash=hash_key(token),
        expires_at=datetime.now(UTC) + timedelta(hours=hours),
        created_by=principal.key_id,
    )
    return {**link_view(row), "token": token, "path": link_path(token), "display_name": person.display_name}


def link_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "person_id": str(row.person_id),
        "expires_at": rfc3339(row.expires_at),
        "used_at": None if row.used_at is None else rfc3339(row.used_at),
        "revoked_at": None if row.revoked_at is None else rfc3339(row.revoked_at),
        "created_at": rfc3339(row.created_at),
    }


async def links_of(conn: AsyncConnection, principal: Principal, person_id: uuid.UUID) -> list[dict[str, Any]]:
    await accounts.get_person(conn, principal, person_id)
    return [link_view(r) for r in await queries.links_of_person(conn, person_id)]


async def revoke(conn: AsyncConnection, principal: Principal, link_id: uuid.UUID) -> None:
    if not await queries.revoke_link(conn, principal.community_id, link_id):
        raise NotFound(f"no unused sign-in link {link_id}")


async def _usable(conn: AsyncConnection, token: str, lock: bool) -> Any:
    row = await queries.link_by_hash(conn, hash_key(token), lock=lock) if len(token) <= 64 else None
    if row is None or row.person_disabled is not None:
        raise LinkNotUsable("unknown")
    if row.revoked_at is not None:
        raise LinkNotUsable("revoked")
    if row.used_at is not None:
        raise LinkNotUsable("used")
    if row.expires_at <= datetime.now(UTC):
        raise LinkNotUsable("expired")
    return row


async def preview(conn: AsyncConnection, token: str) -> str:
    """Whose link this is (the name to show beside the sign-in button), if usable."""
    return (await _usable(conn, token, lock=False)).display_name


async def use(conn: AsyncConnection, token: str) -> uuid.UUID:
    """Spend the link (once, under any concurrency: the row is locked); the person's id."""
    row = await _usable(conn, token, lock=True)
    await queries.mark_link_used(conn, row.id)
    return row.person_id

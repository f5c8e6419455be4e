"""Server-side sessions: the cookie holds 32 random bytes, the database their SHA-256.

A session lives ``session_days`` (30 by default) unless its person ends it, signs out,
changes password (the others end) or is disabled. ``SignedIn`` is what a page request
knows of its person.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.core.access import Principal, hash_key
from timebank.core.clock import rfc3339
from timebank.core.problems import NotFound
from timebank.core.roles import Role
from timebank.people import queries

COOKIE = "tb_session"
TOUCH_EVERY = timedelta(minutes=5)  # last_seen_at is for people's eyes: minutes are enough
TOKEN_SHAPE_MAX = 64


@dataclass(frozen=True, slots=True)
class SignedIn:
    session_id: uuid.UUID
    person_id: uuid.UUID
    community_id: uuid.UUID
    community_name: str
    timezone: str
    role: Role
    subject_id: uuid.UUID | None
    display_name: str
    login: str | None
    locale: str | None
    large_text: bool
    has_password: bool

    @property
    def principal(self) -> Principal:
        return Principal(self.person_id, self.community_id, self.role, self.subject_id)


async def start(
    conn: AsyncConnection, person_id: uuid.UUID, via: str, *, days: int, user_agent: str, address: str
) -> str:
    """A new session for the person; the cookie's value (shown only here)."""
    token = secrets.token_urlsafe(32)
    await queries.insert_session(
        conn,
        person_id=person_id,
        token_hash=hash_key(token),
        via=via,
        user_agent=user_agent[:300] or None,
        address=address[:64] or None,
        expires_at=datetime.now(UTC) + timedelta(days=days),
    )
    return token


async def signed_in(conn: AsyncConnection, token: str) -> SignedIn | None:
    if not token or len(token) > TOKEN_SHAPE_MAX:
        return None
    row = await queries.live_session(conn, hash_key(token))
    if row is None:
        return None
    if row.last_seen_at < datetime.now(UTC) - TOUCH_EVERY:
        await queries.touch_session(conn, row.session_id)
    return SignedIn(
        session_id=row.session_id,
        person_id=row.person_id,
        community_id=row.community_id,
        community_name=row.community_name,
        timezone=row.timezone,
        role=Role(row.role),
        subject_id=row.subject_id,
        display_name=row.display_name,
        login=row.login,
        locale=row.locale,
        large_text=row.large_text,
        has_password=row.has_password,
    )


async def list_sessions(conn: AsyncConnection, who: SignedIn) -> list[dict[str, Any]]:
    return [
        {
            "id": str(r.id),
            "current": r.id == who.session_id,
            "via": r.via,
            "user_agent": r.user_agent,
            "address": r.address,
            "created_at": r.created_at,
            "last_seen_at": r.last_seen_at,
            "expires_at": rfc3339(r.expires_at),
        }
        for r in await queries.sessions_of_person(conn, who.person_id)
    ]


async def end(conn: AsyncConnection, who: SignedIn, session_id: uuid.UUID) -> None:
    if not await queries.end_sessions(conn, who.person_id, only=session_id):
        raise NotFound("no such session")


async def end_others(conn: AsyncConnection, who: SignedIn) -> int:
    return await queries.end_sessions(conn, who.person_id, keep=who.session_id)

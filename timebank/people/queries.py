"""Every read and write of the people package's tables (``people``, ``sign_in_links``,
``web_sessions``), as typed statements on the SQLModel classes (as in the ledger's and
the community's ``queries.py``)."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

from sqlalchemy import Row, and_, case, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community.models import Community
from timebank.people.models import Login, Person, SignInLink, WebSession

# --- people ---------------------------------------------------------------------------


async def insert_person(conn: AsyncConnection, **values: Any) -> Row[Any]:
    """A new person; their login, if any, is claimed in ``logins`` first (which is what
    keeps it unique in the deployment: IntegrityError when it is taken)."""
    person_id = uuid.uuid4()
    if values.get("login") is not None:
        await conn.execute(
            insert(Login).values(
                login=values["login"], community_id=values["community_id"], person_id=person_id
            )
        )
    return (await conn.execute(insert(Person).values(id=person_id, **values).returning(Person))).one()


async def person_by_login(conn: AsyncConnection, login: str) -> Row[Any] | None:
    stmt = select(Person).where(Person.login == login, Person.disabled_at.is_(None))
    return (await conn.execute(stmt)).one_or_none()


async def person_in_community(
    conn: AsyncConnection, community_id: uuid.UUID, person_id: uuid.UUID, lock: bool = False
) -> Row[Any] | None:
    stmt = select(Person).where(Person.id == person_id, Person.community_id == community_id)
    if lock:
        stmt = stmt.with_for_update()
    return (await conn.execute(stmt)).one_or_none()


async def people_of_community(
    conn: AsyncConnection,
    community_id: uuid.UUID,
    *,
    role: str | None = None,
    subject_id: uuid.UUID | None = None,
) -> list[Row[Any]]:
    stmt = select(Person).where(Person.community_id == community_id)
    if role is not None:
        stmt = stmt.where(Person.role == role)
    if subject_id is not None:
        stmt = stmt.where(Person.subject_id == subject_id)
    return list((await conn.execute(stmt.order_by(Person.created_at, Person.id))).all())


async def resident_by_login(conn: AsyncConnection, community_id: uuid.UUID, login: str) -> Row[Any] | None:
    """An active resident of the community by login (a neighbour found by phone number)."""
    stmt = select(Person).where(
        Person.community_id == community_id,
        Person.login == login,
        Person.role == "resident",
        Person.disabled_at.is_(None),
    )
    return (await conn.execute(stmt)).one_or_none()


async def note_failed_sign_in(conn: AsyncConnection, person_id: uuid.UUID, window: timedelta) -> None:
    """Count a wrong password, in a window that starts at the first failure."""
    fresh = Person.failed_since.is_(None) | (Person.failed_since < func.now() - window)
    await conn.execute(
        update(Person)
        .where(Person.id == person_id)
        .values(
            failed_sign_ins=case((fresh, 1), else_=Person.failed_sign_ins + 1),
            failed_since=case((fresh, func.now()), else_=Person.failed_since),
        )
    )


async def clear_failed_sign_ins(conn: AsyncConnection, person_id: uuid.UUID) -> None:
    await conn.execute(
        update(Person).where(Person.id == person_id).values(failed_sign_ins=0, failed_since=None)
    )


async def update_person(conn: AsyncConnection, person_id: uuid.UUID, **values: Any) -> Row[Any]:
    stmt = update(Person).where(Person.id == person_id).values(**values).returning(Person)
    return (await conn.execute(stmt)).one()


# --- one-time sign-in links -------------------------------------------------------------


def _community_of(person_id: uuid.UUID) -> Any:
    return select(Person.community_id).where(Person.id == person_id).scalar_subquery()


async def insert_link(conn: AsyncConnection, **values: Any) -> Row[Any]:
    values.setdefault("community_id", _community_of(values["person_id"]))
    return (await conn.execute(insert(SignInLink).values(**values).returning(SignInLink))).one()


async def link_by_hash(conn: AsyncConnection, token_hash: bytes, lock: bool = False) -> Row[Any] | None:
    stmt = (
        select(
            SignInLink, Person.display_name, Person.community_id, Person.disabled_at.label("person_disabled")
        )
        .join(Person, Person.id == SignInLink.person_id)
        .where(SignInLink.token_hash == token_hash)
    )
    if lock:
        stmt = stmt.with_for_update(of=SignInLink)
    return (await conn.execute(stmt)).one_or_none()


async def mark_link_used(conn: AsyncConnection, link_id: uuid.UUID) -> None:
    await conn.execute(update(SignInLink).where(SignInLink.id == link_id).values(used_at=func.now()))


async def links_of_person(conn: AsyncConnection, person_id: uuid.UUID) -> list[Row[Any]]:
    stmt = select(SignInLink).where(SignInLink.person_id == person_id).order_by(SignInLink.created_at.desc())
    return list((await conn.execute(stmt.limit(20))).all())


async def revoke_link(conn: AsyncConnection, community_id: uuid.UUID, link_id: uuid.UUID) -> bool:
    """Revoke an unused link of the community; False when there is none to revoke."""
    stmt = (
        update(SignInLink)
        .where(
            SignInLink.id == link_id,
            SignInLink.used_at.is_(None),
            SignInLink.revoked_at.is_(None),
            SignInLink.person_id.in_(select(Person.id).where(Person.community_id == community_id)),
        )
        .values(revoked_at=func.now())
        .returning(SignInLink.id)
    )
    return (await conn.execute(stmt)).first() is not None


# --- sessions ---------------------------------------------------------------------------


async def insert_session(conn: AsyncConnection, **values: Any) -> Row[Any]:
    values.setdefault("community_id", _community_of(values["person_id"]))
    return (await conn.execute(insert(WebSession).values(**values).returning(WebSession))).one()


async def live_session(conn: AsyncConnection, token_hash: bytes) -> Row[Any] | None:
    """The session, its person and community, if the session is live and the person active."""
    stmt = (
        select(
            WebSession.id.label("session_id"),
            WebSession.last_seen_at,
            Person.id.label("person_id"),
            Person.community_id,
            Person.role,
            Person.subject_id,
            Person.display_name,
            Person.login,
            Person.locale,
            Person.large_text,
            Person.password_hash.is_not(None).label("has_password"),
            Community.name.label("community_name"),
            Community.timezone,
        )
        .join(Person, Person.id == WebSession.person_id)
        .join(Community, Community.id == Person.community_id)
        .where(
            WebSession.token_hash == token_hash,
            WebSession.ended_at.is_(None),
            WebSession.expires_at > func.now(),
            Person.disabled_at.is_(None),
        )
    )
    return (await conn.execute(stmt)).one_or_none()


async def touch_session(conn: AsyncConnection, session_id: uuid.UUID) -> None:
    await conn.execute(update(WebSession).where(WebSession.id == session_id).values(last_seen_at=func.now()))


async def sessions_of_person(conn: AsyncConnection, person_id: uuid.UUID) -> list[Row[Any]]:
    stmt = (
        select(WebSession)
        .where(
            WebSession.person_id == person_id,
            WebSession.ended_at.is_(None),
            WebSession.expires_at > func.now(),
        )
        .order_by(WebSession.last_seen_at.desc())
    )
    return list((await conn.execute(stmt)).all())


async def end_sessions(
    conn: AsyncConnection,
    person_id: uuid.UUID,
    *,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> int:
    """End the person's live sessions: one (``only``), or all but ``keep``; how many ended."""
    cond = and_(WebSession.person_id == person_id, WebSession.ended_at.is_(None))
    if only is not None:
        cond = and_(cond, WebSession.id == only)
    if keep is not None:
        cond = and_(cond, WebSession.id != keep)
    result = await conn.execute(update(WebSession).where(cond).values(ended_at=func.now()))
    return result.rowcount


def expiry(days: int) -> Any:
    return func.now() + timedelta(days=days)


async def person_by_id(conn: AsyncConnection, person_id: uuid.UUID) -> Row[Any]:
    return (await conn.execute(select(Person).where(Person.id == person_id))).one()

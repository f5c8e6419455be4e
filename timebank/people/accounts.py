"""People's accounts: who may sign in, as what, and with which password.

A person has exactly the role and community scope an API key would (the same
``community.service.checked_role`` rule), so every page calls the domain services with
a ``Principal`` built from the person and ``security.authorize`` decides routes for
both. The principal's ``key_id`` is the person's id: it is what records as the actor
(``created_by``, ``decided_by``, four eyes).
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from timebank.community import service as community
from timebank.core.access import Principal
from timebank.core.clock import rfc3339
from timebank.core.problems import BadRequest, Conflict, DomainError, NotFound
from timebank.core.roles import Role
from timebank.core.terms import Asset
from timebank.ledger import queries as ledger_queries
from timebank.people import passwords, queries

LOGIN_SHAPE = re.compile(r"[a-z0-9][a-z0-9._@+]{2,63}")
LOCALES = ("zh_CN", "en")


class LoginTaken(Conflict):
    slug, title = "login-taken", "Another person already signs in with this login"


class SignInRefused(DomainError):
    """Wrong login or password (never says which), or too many tries."""

    slug, status, title = "sign-in-refused", 401, "Sign-in refused"

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


def normalise_login(raw: str) -> str:
    """A phone number or user name as stored: lower case, without spaces or dashes, and a
    mainland number without its +86 / 0086 prefix (people type it every way)."""
    login = re.sub(r"[\s\-()]", "", raw or "").lower()
    for prefix in ("+86", "0086"):
        if login.startswith(prefix) and login[len(prefix) :].isdigit():
            login = login[len(prefix) :]
    return login


def checked_login(raw: str) -> str:
    login = normalise_login(raw)
    if not LOGIN_SHAPE.fullmatch(login):
        raise BadRequest(
            "login is a phone number or a user name: 3 to 64 letters, digits or . _ @ +, starting "
            "with a letter or digit"
        )
    return login


def person_view(row: Any) -> dict[str, Any]:
    return {
        "id": str(row.id),
        "role": row.role,
        "subject_id": None if row.subject_id is None else str(row.subject_id),
        "display_name": row.display_name,
        "login": row.login,
        "has_password": row.password_hash is not None,
        "locale": row.locale,
        "large_text": row.large_text,
        "created_at": rfc3339(row.created_at),
        "disabled_at": None if row.disabled_at is None else rfc3339(row.disabled_at),
    }


def principal_of(person: Any) -> Principal:
    """The principal a person acts as (``person`` is a people row or a live session)."""
    person_id = getattr(person, "person_id", None) or person.id
    return Principal(person_id, person.community_id, Role(person.role), person.subject_id)


async def create_person(
    conn: AsyncConnection,
    principal: Principal,
    *,
    role: str,
    subject_id: uuid.UUID | None,
    display_name: str,
    login: str | None,
    password: str | None,
) -> dict[str, Any]:
    """A new person of the admin's community (admins only: the route says so)."""
    role_ = await community.checked_role(conn, principal.community_id, role, subject_id)
    name = (display_name or "").strip()
    if not 1 <= len(name) <= 200 or not name.isprintable():
        raise BadRequest("display_name is 1 to 200 printable characters")
    stored_login = None if login is None or not login.strip() else checked_login(login)
    password_hash = None
    if password is not None:
        if stored_login is None:
            raise BadRequest("a password needs a login to sign in with")
        if why := passwords.problem(password):
            raise BadRequest(why)
        password_hash = await passwords.hash_password(password)
    try:
        async with conn.begin_nested():
            row = await queries.insert_person(
                conn,
                community_id=principal.community_id,
                role=role_.value,
                subject_id=subject_id,
                display_name=name,
                login=stored_login,
                password_hash=password_hash,
                created_by=principal.key_id,
            )
    except IntegrityError:
        raise LoginTaken(f"the login {stored_login!r} is taken") from None
    return person_view(row)


async def get_person(conn: AsyncConnection, principal: Principal, person_id: uuid.UUID) -> Any:
    row = await queries.person_in_community(conn, principal.community_id, person_id)
    if row is None:
        raise NotFound(f"person {person_id} not found")
    return row


async def list_people(conn: AsyncConnection, principal: Principal) -> list[dict[str, Any]]:
    return [person_view(r) for r in await queries.people_of_community(conn, principal.community_id)]


async def neighbour(conn: AsyncConnection, principal: Principal, raw_login: str) -> dict[str, Any] | None:
    """A resident of the principal's community found by their login (the phone number a
    neighbour gives), to give hours to (邻里互助): their name, member id and HOUR
    account; None if no active resident of this community signs in with it."""
    login = normalise_login(raw_login)
    if not login:
        return None
    person = await queries.resident_by_login(conn, principal.community_id, login)
    if person is None or person.subject_id is None:
        return None
    account = await ledger_queries.party_account(conn, principal.community_id, person.subject_id, Asset.HOUR)
    if account is None:
        return None
    return {
        "person_id": person.id,
        "member_id": person.subject_id,
        "display_name": person.display_name,
        "hour_account_id": account.id,
    }


async def set_disabled(
    conn: AsyncConnection, principal: Principal, person_id: uuid.UUID, disabled: bool
) -> dict[str, Any]:
    """Disable (ends every session at once) or enable a person."""
    await get_person(conn, principal, person_id)
    row = await queries.update_person(conn, person_id, disabled_at=func.now() if disabled else None)
    if disabled:
        await queries.end_sessions(conn, person_id)
    return person_view(row)


async def sign_in_with_password(
    conn: AsyncConnection, login: str, password: str, *, limit: int, window: timedelta
) -> Any:
    """The person whose login and password these are, or ``SignInRefused``.

    Wrong passwords count per account across all processes; past ``limit`` in ``window``
    even the right password is refused until the window passes, so guessing one
    person's password is slow from any number of addresses. An unknown login costs the
    same hash as a known one and gets the same answer. The failure is counted in the
    caller's transaction: commit it even when this raises.
    """
    person = await queries.person_by_login(conn, normalise_login(login))
    if person is not None and person.failed_since is not None and person.failed_sign_ins >= limit:
        left = (person.failed_since + window - datetime.now(UTC)).total_seconds()
        if left > 0:
            raise SignInRefused("too many wrong passwords for this account; try again later", int(left) + 1)
    if not await passwords.check_password(None if person is None else person.password_hash, password):
        if person is not None:
            await queries.note_failed_sign_in(conn, person.id, window)
        raise SignInRefused("the login or the password is not right")
    if person.failed_sign_ins:
        await queries.clear_failed_sign_ins(conn, person.id)
    return person


async def change_password(
    conn: AsyncConnection, person_id: uuid.UUID, session_id: uuid.UUID, current: str | None, new: str
) -> None:
    """Set a new password (the current one is asked for when there is one); the person's
    other sessions end, so a stolen session does not outlive the change."""
    person = await queries.person_by_id(conn, person_id)
    if person.login is None:
        raise BadRequest("ask your community's staff for a login first")
    if person.password_hash is not None and not await passwords.check_password(
        person.password_hash, current or ""
    ):
        raise SignInRefused("the current password is not right")
    if why := passwords.problem(new):
        raise BadRequest(why)
    await queries.update_person(conn, person_id, password_hash=await passwords.hash_password(new))
    await queries.end_sessions(conn, person_id, keep=session_id)


async def set_preferences(
    conn: AsyncConnection, person_id: uuid.UUID, *, locale: str | None = None, large_text: bool | None = None
) -> None:
    values: dict[str, Any] = {}
    if locale is not None:
        if locale not in LOCALES:
            raise BadRequest(f"locale is one of {', '.join(LOCALES)}")
        values["locale"] = locale
    if large_text is not None:
        values["large_text"] = large_text
    if values:
        await queries.update_person(conn, person_id, **values)

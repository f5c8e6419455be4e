"""Passwords: argon2id (argon2-cffi's defaults, RFC 9106's second recommended set),
hashed and checked in a worker thread so a sign-in never stalls the event loop."""

from __future__ import annotations

import asyncio

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

HASHER = PasswordHasher()  # argon2id, 64 MiB, 3 passes
MIN_LENGTH = 8
MAX_LENGTH = 128
# Checked when the login is unknown, so that an unknown login costs as long as a wrong
# password and the answer's timing does not tell which logins exist.
_DUMMY = HASHER.hash("timebank: no such person")


def problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"a password is {MIN_LENGTH} to {MAX_LENGTH} characters"
    if not password.isprintable():
        return "a password has no control characters"
    return None


async def hash_password(password: str) -> str:
    return await asyncio.to_thread(HASHER.hash, password)


async def check_password(stored: str | None, password: str) -> bool:
    def check() -> bool:
        try:
            return HASHER.verify(stored or _DUMMY, password) and stored is not None
        except (VerificationError, InvalidHashError):
            return False

    return await asyncio.to_thread(check)

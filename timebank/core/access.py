"""Who acts, and who may: the principal behind a request, API keys' shape, routes'
access declarations.

Shared by every package (services take a ``Principal``, controllers declare
``access(...)``); ``timebank/security.py`` authenticates and authorises with them.

* A key is 32 random bytes shown once; only its SHA-256 is stored (a key has 256
  bits of entropy, so a slow hash buys nothing).
"""

from __future__ import annotations

import hashlib
import re
import secrets
import uuid
from dataclasses import dataclass
from typing import Any

from timebank.core.problems import Forbidden
from timebank.core.roles import Role

KEY_PREFIX = "tbk_"
KEY_SHAPE = re.compile(r"tbk_[A-Za-z0-9_-]{43}")  # what new_api_key makes: 32 random bytes, base64url


@dataclass(frozen=True, slots=True)
class Principal:
    key_id: uuid.UUID
    community_id: uuid.UUID
    role: Role
    subject_id: uuid.UUID | None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    def require_writer(self) -> None:
        if self.role is Role.AUDITOR:
            raise Forbidden("auditor keys are read-only")


def new_api_key() -> tuple[str, bytes, str]:
    """A fresh key: (the key shown once, its stored hash, a short prefix for listings)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    return key, hash_key(key), key[:12]


def hash_key(key: str) -> bytes:
    return hashlib.sha256(key.encode()).digest()


def access(*roles: Role) -> dict[str, Any]:
    """Route ``opt`` naming the roles that may call it."""
    return {"roles": frozenset(roles)}


# A route anyone may call: no API key (and, for a page, no sign-in). ``no_api_key``
# also marks every page, whose sessions replace keys (timebank/app.py).
PUBLIC: dict[str, Any] = {"public": True, "no_api_key": True}
READERS = (Role.ADMIN, Role.AUDITOR, Role.RECORDER, Role.MERCHANT, Role.RESIDENT)

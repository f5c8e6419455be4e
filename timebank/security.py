"""Authentication and authorisation of every request.

(The principal, keys' shape and routes' access declarations are shared concepts:
``timebank/core/access.py``.)

* People signing in to the pages get a server-side session instead of a key
  (``SessionAuthMiddleware``, ``timebank/people/sessions.py``); the same ``authorize``
  decides their routes.
* Authentication middleware turns ``Authorization: Bearer <key>`` into a
  ``Principal``; routes opt out only with ``opt={"public": True}``. A key of the
  wrong shape is refused without a lookup, and a client address that keeps sending
  keys that are not valid is refused (429) without one too (``AuthFailures``).
* Authorisation is deny by default: ``authorize``, run by the authentication
  middleware on every non-public route, lets a request through only if the route
  names the roles it admits (``opt=access(...)``) and the key has one.
  Per-object rules (own accounts, same community) live in the services, which answer
  404 for anything outside the key's community.
"""

from __future__ import annotations

import math
import os
import secrets
import time
import uuid
from typing import Any

from litestar import Request
from litestar.connection import ASGIConnection
from litestar.enums import ScopeType
from litestar.exceptions import NotAuthorizedException, TooManyRequestsException
from litestar.handlers.base import BaseRouteHandler
from litestar.middleware import AbstractAuthenticationMiddleware, ASGIMiddleware, AuthenticationResult
from sqlalchemy.ext.asyncio import AsyncEngine

from timebank.community import queries
from timebank.core.access import KEY_SHAPE, Principal, hash_key
from timebank.core.problems import Forbidden, a
from timebank.core.roles import Role
from timebank.core.settings import Settings
from timebank.people import sessions
from timebank.web.failures import SignInRequired


def authorize(principal: Principal, handler: BaseRouteHandler) -> None:
    """Deny unless the route admits the key's role (run by the auth middleware for every
    route that is not public, so no route escapes it)."""
    roles = handler.opt.get("roles")
    if not roles:  # a route that forgot its rule is closed, not open
        raise Forbidden("this route has no access rule")
    if principal.role not in roles:
        raise Forbidden(f"{a(principal.role.value)} key may not call this route")


class KeyCache:
    """Short-lived in-process cache of key lookups (bounded, TTL in settings)."""

    def __init__(self, ttl_seconds: float, max_size: int = 10_000) -> None:
        self.ttl = ttl_seconds
        self.max_size = max_size
        self._items: dict[bytes, tuple[float, Principal | None]] = {}

    def get(self, key_hash: bytes) -> tuple[bool, Principal | None]:
        hit = self._items.get(key_hash)
        if hit is None or hit[0] < time.monotonic():
            return False, None
        return True, hit[1]

    def put(self, key_hash: bytes, principal: Principal | None) -> None:
        if self.ttl <= 0:
            return
        if len(self._items) >= self.max_size:
            self._items.clear()
        self._items[key_hash] = (time.monotonic() + self.ttl, principal)

    def forget(self, key_id: uuid.UUID) -> None:
        for h, (_, p) in list(self._items.items()):
            if p is not None and p.key_id == key_id:
                self._items.pop(h, None)


class AuthFailures:
    """Failed authentications per client address, in fixed windows, bounded in memory.

    Per process: with N service processes an address gets at most N × limit tries per
    window, which still makes guessing a 256-bit key hopeless; the limit is there so
    that a flood costs neither database lookups nor log volume.
    """

    def __init__(self, limit: int, window_seconds: float, max_clients: int = 100_000) -> None:
        self.limit = limit
        self.window = window_seconds
        self.max_clients = max_clients
        self._clients: dict[str, tuple[float, int]] = {}

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again, or None if it may now."""
        seen = self._clients.get(client)
        if seen is None:
            return None
        started, failures = seen
        left = started + self.window - time.monotonic()
        if left <= 0:
            del self._clients[client]
            return None
        return math.ceil(left) if failures >= self.limit else None

    def fail(self, client: str) -> None:
        now = time.monotonic()
        started, failures = self._clients.get(client, (now, 0))
        if started + self.window <= now:
            started, failures = now, 0
        if client not in self._clients and len(self._clients) >= self.max_clients:
            self._clients.clear()  # bounded: forgetting everyone is safe, only less strict
        self._clients[client] = (started, failures + 1)


async def lookup_key(engine: AsyncEngine, cache: KeyCache, key: str) -> Principal | None:
    key_hash = hash_key(key)
    hit, principal = cache.get(key_hash)
    if hit:
        return principal
    async with engine.connect() as conn:
        row = await queries.active_key(conn, key_hash)
    principal = None if row is None else Principal(row.id, row.community_id, Role(row.role), row.subject_id)
    cache.put(key_hash, principal)
    return principal


class ApiKeyAuthMiddleware(AbstractAuthenticationMiddleware):
    async def authenticate_request(self, connection: ASGIConnection) -> AuthenticationResult:
        header = connection.headers.get("authorization", "")
        if not header:
            raise NotAuthorizedException("send an API key as 'Authorization: Bearer tbk_...'")
        state = connection.app.state
        client = connection.client.host if connection.client else "unknown"
        wait = state.auth_failures.retry_after(client)
        if wait is not None:
            raise TooManyRequestsException(
                "too many requests with keys that are not valid; try again later",
                headers={"Retry-After": str(wait)},
            )
        scheme, _, key = header.partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not KEY_SHAPE.fullmatch(key):
            state.auth_failures.fail(client)
            raise NotAuthorizedException("send an API key as 'Authorization: Bearer tbk_...'")
        principal = await lookup_key(state.engine, state.key_cache, key)
        if principal is None:
            state.auth_failures.fail(client)
            raise NotAuthorizedException("unknown or revoked API key")
        # Authorisation here rather than in a guard: Litestar copies the handler for
        # every guard call, which cost 2% of a transfer's CPU.
        authorize(principal, connection.scope["route_handler"])
        return AuthenticationResult(user=principal, auth=None)


class SessionAuthMiddleware(ASGIMiddleware):
    """Pages: the session cookie names the person; ``authorize`` decides as for keys.

    A page marked public (``opt=PUBLIC``: sign-in, the language switch, ``/``) still
    learns who is signed in, if anyone; any other page without a live session raises
    ``SignInRequired``, which the pages' error handler turns into the sign-in page.
    """

    scopes = (ScopeType.HTTP,)

    async def handle(self, scope: Any, receive: Any, send: Any, next_app: Any) -> None:
        token = Request(scope).cookies.get(sessions.COOKIE)
        who = None
        if token:
            async with scope["app"].state.engine.begin() as conn:
                who = await sessions.signed_in(conn, token)
        if who is not None:
            scope["user"], scope["auth"] = who.principal, who
        handler = scope["route_handler"]
        if not handler.opt.get("public"):
            if who is None:
                raise SignInRequired
            authorize(who.principal, handler)
        await next_app(scope, receive, send)


def load_web_secret(settings: Settings) -> str:
    """The secret that signs the pages' CSRF tokens: the setting, else a random one kept
    beside the signing keys (made once; processes starting together agree on it)."""
    if settings.web_secret:
        return settings.web_secret
    path = settings.key_dir / "web-secret"
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        for _ in range(50):  # another process is writing it this moment
            secret = path.read_text().strip()
            if secret:
                return secret
            time.sleep(0.02)
        raise RuntimeError(f"{path} is empty: remove it and start again") from None
    secret = secrets.token_hex(32)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    return secret

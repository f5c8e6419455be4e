"""The check-in QR's token and its 6-digit fallback code (pure functions: no database).

A token is ``{activity id}.{window}.{signature}``: HMAC-SHA256, under a key derived from
the web secret (the one that signs the pages' CSRF tokens), of the activity and a
30-second window. The organiser's page shows a new one every window; a token is taken
in its own window and the one after (a scan that started as the QR changed), never
later, so a screenshot sent on to someone at home is useless a minute on. The code is
six digits derived from the same key, activity and window, for a phone that cannot
scan. The activity id is in the token so that a token of another activity is told
apart from a forged one.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import uuid
from datetime import UTC, datetime

from timebank.core.problems import DomainError

WINDOW_SECONDS = 30
_PURPOSE = b"timebank.activities.check-in.v1"


class TokenExpired(DomainError):
    slug, status, title = (
        "check-in-token-expired",
        422,
        "The check-in code has expired: scan the code shown now",
    )


class TokenForeign(DomainError):
    slug, status, title = "check-in-token-foreign", 422, "The check-in code is for another activity"


class TokenInvalid(DomainError):
    slug, status, title = "check-in-token-invalid", 422, "The check-in code is not one the organiser showed"


def derive_key(web_secret: str) -> bytes:
    """A key of its own for check-in tokens: a CSRF token can never pass for one."""
    return hmac.new(web_secret.encode(), _PURPOSE, hashlib.sha256).digest()


def window_of(moment: datetime) -> int:
    return math.floor(moment.timestamp()) // WINDOW_SECONDS


def window_ends(window: int) -> datetime:
    return datetime.fromtimestamp((window + 1) * WINDOW_SECONDS, UTC)


def _mac(key: bytes, text: str) -> bytes:
    return hmac.new(key, text.encode(), hashlib.sha256).digest()


def make_token(key: bytes, activity_id: uuid.UUID, window: int) -> str:
    sig = base64.urlsafe_b64encode(_mac(key, f"token:{activity_id}:{window}")[:18]).decode()
    return f"{activity_id}.{window}.{sig}"


def make_code(key: bytes, activity_id: uuid.UUID, window: int) -> str:
    return f"{int.from_bytes(_mac(key, f'code:{activity_id}:{window}')[:8], 'big') % 1_000_000:06d}"


def _fresh(window: int, now: datetime) -> bool:
    """The current window or the one before: at most a minute old, never from the future."""
    return window_of(now) - 1 <= window <= window_of(now)


def check_token(key: bytes, activity_id: uuid.UUID, token: str, now: datetime) -> None:
    """Refuse a token that is forged or tampered with, of another activity, or expired."""
    try:
        given_activity, given_window, _sig = token.strip().split(".")
        token_activity, window = uuid.UUID(given_activity), int(given_window)
    except ValueError:
        raise TokenInvalid("the token is not a check-in token") from None
    if not hmac.compare_digest(make_token(key, token_activity, window), token.strip()):
        raise TokenInvalid("the token's signature does not match: it was altered or forged")
    if token_activity != activity_id:
        raise TokenForeign(f"the token is for activity {token_activity}, not {activity_id}")
    if not _fresh(window, now):
        raise TokenExpired("the token's 30-second window is over: scan the code shown now")


def check_code(key: bytes, activity_id: uuid.UUID, code: str, now: datetime) -> None:
    """Refuse a 6-digit code that is not the current window's or the one before's."""
    given = "".join(code.split())
    current = window_of(now)
    if not any(hmac.compare_digest(make_code(key, activity_id, w), given) for w in (current, current - 1)):
        raise TokenExpired("the code is wrong or has expired: type the code shown now")

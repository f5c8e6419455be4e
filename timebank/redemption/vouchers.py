"""Voucher codes and signed tokens for the counter.

* A **code** is 8 characters from an alphabet without look-alikes (no 0/O, 1/I/L),
  about 40 bits: read aloud or typed at a busy counter, tried against one redemption.
* A **token** is ``<payload>.<signature>``, both base64url: the payload is the JCS
  JSON of a small object with a ``typ``, an expiry ``exp`` (RFC 3339) and the
  signing key's ``kid``; the signature is Ed25519 by the log's key over those bytes,
  so anyone holding the published keys (GET /v1/log/keys) can check it offline.
  Two kinds: a redemption's QR (``timebank.voucher``) and a resident's consent for a
  merchant to redeem on their behalf (``timebank.member``).
"""

from __future__ import annotations

import json
import secrets
from datetime import datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from timebank.core.clock import rfc3339
from timebank.log.keys import Signer
from timebank.log.verify import b64url, jcs, unb64url

ALPHABET = "23456789ABCDEFGHJKMNPQRSTUVWXYZ"
CODE_LENGTH = 8
VOUCHER = "timebank.voucher"
MEMBER = "timebank.member"


class TokenError(Exception):
    """A token that is malformed, forged, expired or of another kind (message says which)."""


def new_code() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(CODE_LENGTH))


def normalise_code(text: str) -> str:
    """What a person typed: any case, spaces or dashes between groups."""
    return "".join(ch for ch in text.upper() if ch not in " -")


def sign_token(signer: Signer, typ: str, expires_at: datetime, claims: dict[str, Any]) -> str:
    payload = {**claims, "typ": typ, "exp": rfc3339(expires_at), "kid": signer.kid}
    body = jcs(payload)
    return f"{b64url(body)}.{b64url(signer.sign(body))}"


def read_token(token: str, typ: str, public_keys: dict[str, bytes], now: datetime) -> dict[str, Any]:
    """The payload of a valid, unexpired token of kind ``typ``, or TokenError."""
    try:
        body_text, sig_text = token.strip().split(".")
        body, signature = unb64url(body_text), unb64url(sig_text)
        payload = json.loads(body)
        assert isinstance(payload, dict)
    except Exception:
        raise TokenError("this is not a timebank token") from None
    if jcs(payload) != body:
        raise TokenError("the token is not in canonical form")
    key = public_keys.get(str(payload.get("kid")))
    if key is None:
        raise TokenError("the token was signed by an unknown key")
    try:
        Ed25519PublicKey.from_public_bytes(key).verify(signature, body)
    except InvalidSignature:
        raise TokenError("the token's signature does not verify") from None
    if payload.get("typ") != typ:
        raise TokenError(f"this is a {payload.get('typ')} token, not a {typ} token")
    if not isinstance(payload.get("exp"), str) or datetime.fromisoformat(payload["exp"]) <= now:
        raise TokenError("the token has expired")
    return payload

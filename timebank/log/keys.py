"""Signing keys: Ed25519 private keys in files, public keys published.

The key directory (``TIMEBANK_SIGNING_KEY_DIR``, default ``$TIMEBANK_DATA_DIR/keys``)
holds:

* ``<kid>.pem``: the current private key, PKCS#8 PEM, mode 0600 (refused if group or
  others may read it). Private keys are never logged and never in the database.
* ``keys.json``: the public JWK set of every key ever used (RFC 8037 ``OKP``/
  ``Ed25519``, ``kid`` = RFC 7638 thumbprint), each with ``created_at`` and, once
  rotated out, ``retired_at``. It is also what ``timebank verify --keys`` reads.

Rotation makes a new current key and retires the old one: its private file is
deleted (nothing signs with it again) and its public key stays in ``keys.json`` and
in the database's ``log_keys``, so old receipts and checkpoints keep verifying.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from nacl.bindings import crypto_sign, crypto_sign_seed_keypair

from timebank.log.verify import (
    checkpoint_body,
    jcs,
    jwk_thumbprint,
    load_jwks,
    note_signature_line,
    public_jwk,
)

KEYRING = "keys.json"


class SigningKeyError(Exception):
    """A key file is missing, unsafe or inconsistent (message says which and how to fix)."""


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class PublicKey:
    kid: str
    public_key: bytes
    created_at: str
    retired_at: str | None = None

    def jwk(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"created_at": self.created_at}
        if self.retired_at:
            extra["retired_at"] = self.retired_at
        return public_jwk(self.public_key, **extra)


class Signer:
    """The current private key, loaded once per process."""

    def __init__(self, private_key: Ed25519PrivateKey, created_at: str = "") -> None:
        self._key = private_key
        self.public_key = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.kid = jwk_thumbprint(self.public_key)
        self.created_at = created_at
        # Every transfer's answer is signed: libsodium signs in about 60% of OpenSSL's
        # time on this service's hardware (docs/benchmarks.md). Ed25519 is deterministic,
        # so both give the same bytes (tests/log/test_receipts_api.py holds them equal);
        # verifying stays with cryptography alone (verify.py).
        seed = private_key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )
        public, self._sodium_key = crypto_sign_seed_keypair(seed)
        assert public == self.public_key

    def __repr__(self) -> str:  # never show key material, even by accident
        return f"Signer(kid={self.kid!r})"

    def sign(self, data: bytes) -> bytes:
        return crypto_sign(data, self._sodium_key)[:64]  # signature ‖ message

    def sign_json(self, payload: dict[str, Any]) -> bytes:
        return self.sign(jcs(payload))

    def checkpoint(self, origin: str, size: int, root: bytes) -> str:
        """A C2SP tlog-checkpoint signed note, the key named after the log's origin."""
        body = checkpoint_body(origin, size, root)
        return body + "\n" + note_signature_line(origin, self.public_key, self.sign(body.encode()))


def _check_private(path: Path) -> None:
    mode = path.stat().st_mode
    if mode & 0o077:
        raise SigningKeyError(
            f"signing key {path} may be read by others (mode {stat.filemode(mode)}); run: chmod 600 {path}"
        )


def read_keyring(key_dir: Path) -> list[PublicKey]:
    path = key_dir / KEYRING
    if not path.exists():
        return []
    data = json.loads(path.read_text())
    known = load_jwks(data)  # checks each kid against its key
    return [
        PublicKey(jwk["kid"], known[jwk["kid"]], jwk.get("created_at", ""), jwk.get("retired_at"))
        for jwk in data["keys"]
    ]


def _write_keyring(key_dir: Path, keys: list[PublicKey]) -> None:
    tmp = key_dir / (KEYRING + ".tmp")
    tmp.write_text(json.dumps({"keys": [k.jwk() for k in keys]}, indent=2) + "\n")
    os.replace(tmp, key_dir / KEYRING)


def _write_private(key_dir: Path, key: Ed25519PrivateKey, kid: str) -> Path:
    pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    path = key_dir / f"{kid}.pem"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)
    return path


def current(keys: list[PublicKey]) -> PublicKey | None:
    live = [k for k in keys if not k.retired_at]
    if len(live) > 1:
        raise SigningKeyError(f"{KEYRING} names {len(live)} current keys; exactly one may be unretired")
    return live[0] if live else None


def generate(key_dir: Path) -> PublicKey:
    """Make the first signing key. Refuses if a current key exists (use rotate)."""
    key_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = read_keyring(key_dir)
    if current(keys) is not None:
        raise SigningKeyError(f"{key_dir} already has a current signing key; use `timebank keys rotate`")
    private = Ed25519PrivateKey.generate()
    signer = Signer(private)
    _write_private(key_dir, private, signer.kid)
    new = PublicKey(signer.kid, signer.public_key, _now())
    _write_keyring(key_dir, [*keys, new])
    return new


def rotate(key_dir: Path) -> tuple[PublicKey, PublicKey]:
    """Retire the current key and make a new one; returns (retired, new)."""
    keys = read_keyring(key_dir)
    old = current(keys)
    if old is None:
        raise SigningKeyError(f"{key_dir} has no current signing key; use `timebank keys generate`")
    private = Ed25519PrivateKey.generate()
    signer = Signer(private)
    _write_private(key_dir, private, signer.kid)
    retired = PublicKey(old.kid, old.public_key, old.created_at, _now())
    new = PublicKey(signer.kid, signer.public_key, _now())
    # keys.json first: if we stop half-way, the new key is current and the old one's
    # file is merely left behind (and refused nowhere), never the reverse.
    _write_keyring(key_dir, [retired if k.kid == old.kid else k for k in keys] + [new])
    (key_dir / f"{old.kid}.pem").unlink(missing_ok=True)
    return retired, new


def load_signer(key_dir: Path) -> Signer:
    keys = read_keyring(key_dir)
    info = current(keys)
    if info is None:
        raise SigningKeyError(
            f"no signing key in {key_dir}: run `timebank keys generate` (see docs/operations.md)"
        )
    path = key_dir / f"{info.kid}.pem"
    if not path.exists():
        raise SigningKeyError(f"the current signing key {info.kid} has no private key file {path}")
    _check_private(path)
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise SigningKeyError(f"{path} is not an Ed25519 private key")
    signer = Signer(key, info.created_at)
    if signer.kid != info.kid:
        raise SigningKeyError(f"{path} holds key {signer.kid}, but {KEYRING} says {info.kid}")
    return signer

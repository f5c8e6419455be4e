"""Offline verification of timebank receipts, checkpoints and Merkle proofs.

Everything a supervisory board needs to check the bank without trusting it, in one
module that depends on nothing but the standard library and ``cryptography``, so it
can be copied out and read in an afternoon. The service uses the same functions to
make what this module checks (one home for each rule).

* Canonical JSON: RFC 8785 (JCS) for the values receipts contain (strings, integers
  within ±2^53, booleans, null, arrays, objects).
* Merkle tree: RFC 6962 / RFC 9162 hashing; leaf = SHA-256(0x00 ‖ data), node =
  SHA-256(0x01 ‖ left ‖ right). Proof checks follow transparency-dev/merkle.
* Checkpoints: C2SP ``tlog-checkpoint`` bodies in C2SP ``signed-note`` envelopes with
  Ed25519 signatures (key ID = first 4 bytes of SHA-256(name ‖ 0x0A ‖ 0x01 ‖ key)).
* Keys: RFC 8037 ``OKP``/``Ed25519`` JWKs; ``kid`` is the RFC 7638 thumbprint.
* Signed entry timestamp (``set``): Ed25519 over the JCS bytes of its ``payload``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HASH_SIZE = 32
MAX_SAFE_INTEGER = 2**53 - 1
EMPTY_ROOT = hashlib.sha256(b"").digest()
NOTE_ALG_ED25519 = b"\x01"


class VerificationError(Exception):
    """A check failed; the message says which and why."""


# --- encodings -----------------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def unb64(text: Any, what: str = "value") -> bytes:
    """Strict standard base64 (padding required, no stray characters)."""
    if not isinstance(text, str):
        raise VerificationError(f"{what} is not a base64 string")
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError) as exc:
        raise VerificationError(f"{what} is not valid base64") from exc


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def unb64url(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as exc:
        raise VerificationError("not valid base64url") from exc


def jcs(value: Any) -> bytes:
    """RFC 8785 canonical JSON of ``value``.

    For strings, JCS escapes exactly what ECMAScript's JSON.stringify escapes, which
    is what ``json`` does with ``ensure_ascii=False``. Members are sorted by their
    UTF-16 code units, which is code point order unless a name holds a character at
    or above U+E000 (then they are sorted explicitly). Floats are refused: receipts
    carry integers only.
    """
    if _plain(value):
        return _ENCODER.encode(value).encode("utf-8")
    return _jcs(value).encode("utf-8")


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), sort_keys=True, allow_nan=False)


def _plain(value: Any) -> bool:
    """Check that JCS can encode ``value``; True if code point order sorts it right."""
    if isinstance(value, str) or value is None or value is True or value is False:
        return True
    if isinstance(value, int):
        if abs(value) > MAX_SAFE_INTEGER:
            raise VerificationError(f"integer {value} is outside the I-JSON range")
        return True
    if isinstance(value, dict):
        plain = True
        for k, v in value.items():
            if not isinstance(k, str):
                raise VerificationError("object member names must be strings")
            if k and max(k) >= "\ue000":
                plain = False
            plain = _plain(v) and plain
        return plain
    if isinstance(value, (list, tuple)):
        plain = True
        for v in value:
            plain = _plain(v) and plain
        return plain
    raise VerificationError(f"JCS cannot encode a {type(value).__name__}")


def _jcs(value: Any) -> str:
    """The general case: members sorted by UTF-16 code units."""
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_jcs(v) for v in value) + "]"
    if isinstance(value, dict):
        keys = sorted(value, key=lambda k: k.encode("utf-16-be"))
        return "{" + ",".join(json.dumps(k, ensure_ascii=False) + ":" + _jcs(value[k]) for k in keys) + "}"
    return json.dumps(value, ensure_ascii=False)


# --- RFC 6962 hashing and proofs -------------------------------------------------------


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _hashes(values: Any, what: str) -> list[bytes]:
    if values is None:
        return []
    if not isinstance(values, list):
        raise VerificationError(f"{what} is not a list")
    out = [unb64(v, what) if isinstance(v, str) else v for v in values]
    for h in out:
        if not isinstance(h, bytes) or len(h) != HASH_SIZE:
            raise VerificationError(f"{what} holds a value that is not a {HASH_SIZE}-byte hash")
    return out


def _decompose(index: int, size: int) -> tuple[int, int]:
    """(inner, border): how an inclusion proof for ``index`` in ``size`` splits."""
    inner = (index ^ (size - 1)).bit_length()
    border = bin(index >> inner).count("1")
    return inner, border


def _chain_inner(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        seed = node_hash(seed, h) if (index >> i) & 1 == 0 else node_hash(h, seed)
    return seed


def _chain_inner_right(seed: bytes, proof: list[bytes], index: int) -> bytes:
    for i, h in enumerate(proof):
        if (index >> i) & 1 == 1:
            seed = node_hash(h, seed)
    return seed


def _chain_border_right(seed: bytes, proof: list[bytes]) -> bytes:
    for h in proof:
        seed = node_hash(h, seed)
    return seed


def _check_size(value: Any, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**64:
        raise VerificationError(f"{what} is not a tree size or index")
    return value


def root_from_inclusion(index: int, size: int, leaf: bytes, proof: Any) -> bytes:
    index, size = _check_size(index, "index"), _check_size(size, "tree size")
    if index >= size:
        raise VerificationError(f"index {index} is not inside a tree of size {size}")
    if len(leaf) != HASH_SIZE:
        raise VerificationError("the leaf hash is not 32 bytes")
    path = _hashes(proof, "inclusion proof")
    inner, border = _decompose(index, size)
    if len(path) != inner + border:
        raise VerificationError(
            f"the inclusion proof has {len(path)} hashes; a proof for index {index} "
            f"in a tree of size {size} has {inner + border}"
        )
    return _chain_border_right(_chain_inner(leaf, path[:inner], index), path[inner:])


def verify_inclusion(index: int, size: int, leaf: bytes, proof: Any, root: bytes) -> None:
    if root_from_inclusion(index, size, leaf, proof) != root:
        raise VerificationError(
            f"the inclusion proof of index {index} does not lead to the root of size {size}"
        )


def verify_consistency(size1: int, size2: int, proof: Any, root1: bytes, root2: bytes) -> None:
    size1, size2 = _check_size(size1, "first size"), _check_size(size2, "second size")
    path = _hashes(proof, "consistency proof")
    if size2 < size1:
        raise VerificationError(f"the second tree ({size2}) is smaller than the first ({size1})")
    if size1 == 0:  # as RFC 9162 and transparency-dev: every tree extends the empty one
        raise VerificationError("a consistency proof from the empty tree proves nothing")
    if size1 == size2:
        if path:
            raise VerificationError("trees of equal size need an empty consistency proof")
        if root1 != root2:
            raise VerificationError(f"two different roots for one tree size {size1}")
        return
    if not path:
        raise VerificationError("the consistency proof is empty")
    inner, border = _decompose(size1 - 1, size2)
    shift = (size1 & -size1).bit_length() - 1  # trailing zero bits of size1
    inner -= shift
    seed, start = path[0], 1
    if size1 == 1 << shift:  # the first tree is a perfect subtree of the second
        seed, start = root1, 0
    if len(path) != start + inner + border:
        raise VerificationError(
            f"the consistency proof has {len(path)} hashes, expected {start + inner + border}"
        )
    path = path[start:]
    mask = (size1 - 1) >> shift
    if _chain_border_right(_chain_inner_right(seed, path[:inner], mask), path[inner:]) != root1:
        raise VerificationError(f"the consistency proof does not lead to the root of size {size1}")
    if _chain_border_right(_chain_inner(seed, path[:inner], mask), path[inner:]) != root2:
        raise VerificationError(f"the consistency proof does not lead to the root of size {size2}")


# --- keys ----------------------------------------------------------------------------


def jwk_thumbprint(public_key: bytes) -> str:
    """RFC 7638 thumbprint of an Ed25519 public key: the key's ``kid``."""
    members = {"crv": "Ed25519", "kty": "OKP", "x": b64url(public_key)}
    return b64url(hashlib.sha256(jcs(members)).digest())


def public_jwk(public_key: bytes, **extra: Any) -> dict[str, Any]:
    return {
        "kty": "OKP",
        "crv": "Ed25519",
        "x": b64url(public_key),
        "kid": jwk_thumbprint(public_key),
        "alg": "EdDSA",
        "use": "sig",
        **extra,
    }


def load_jwks(jwks: Any) -> dict[str, bytes]:
    """A JWK set → {kid: 32-byte public key}. Each kid must be its key's thumbprint."""
    if not isinstance(jwks, dict) or not isinstance(jwks.get("keys"), list):
        raise VerificationError('the key set is not a JWK set ({"keys": [...]})')
    keys: dict[str, bytes] = {}
    for jwk in jwks["keys"]:
        if not isinstance(jwk, dict) or jwk.get("kty") != "OKP" or jwk.get("crv") != "Ed25519":
            continue  # not an Ed25519 key: not ours to use
        raw = unb64url(str(jwk.get("x", "")))
        if len(raw) != 32:
            raise VerificationError("an Ed25519 JWK has an x that is not 32 bytes")
        kid = jwk_thumbprint(raw)
        if jwk.get("kid", kid) != kid:
            raise VerificationError(f"key {jwk.get('kid')} does not match its thumbprint {kid}")
        keys[kid] = raw
    if not keys:
        raise VerificationError("the key set has no Ed25519 keys")
    return keys


def _ed25519_verify(public_key: bytes, signature: bytes, message: bytes) -> bool:
    try:
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, message)
        return True
    except (InvalidSignature, ValueError):
        return False


# --- signed notes and checkpoints -------------------------------------------------------


def note_key_id(name: str, public_key: bytes) -> bytes:
    return hashlib.sha256(name.encode() + b"\n" + NOTE_ALG_ED25519 + public_key).digest()[:4]


def note_signature_line(name: str, public_key: bytes, signature: bytes) -> str:
    return f"\u2014 {name} {b64(note_key_id(name, public_key) + signature)}\n"


@dataclass(frozen=True)
class Checkpoint:
    origin: str
    size: int
    root: bytes
    text: str
    extensions: tuple[str, ...] = field(default=())
    signed_by: str = ""  # kid of the key whose signature was verified


def checkpoint_body(origin: str, size: int, root: bytes) -> str:
    return f"{origin}\n{size}\n{b64(root)}\n"


def verify_checkpoint(text: Any, keys: dict[str, bytes], origin: str | None = None) -> Checkpoint:
    """Parse a signed checkpoint and check one signature by a known key over it."""
    if not isinstance(text, str) or "\n\n" not in text or not text.endswith("\n"):
        raise VerificationError("the checkpoint is not a signed note")
    body, _, signatures = text.rpartition("\n\n")
    body += "\n"
    lines = body[:-1].split("\n")
    if len(lines) < 3 or not lines[0] or not re.fullmatch(r"0|[1-9][0-9]{0,19}", lines[1]):
        raise VerificationError("the checkpoint body is not origin / size / root")
    root = unb64(lines[2], "checkpoint root")
    if len(root) != HASH_SIZE:
        raise VerificationError("the checkpoint root is not 32 bytes")
    if origin is not None and lines[0] != origin:
        raise VerificationError(f"the checkpoint is of log {lines[0]!r}, not {origin!r}")
    signer = ""
    for line in signatures[:-1].split("\n"):
        prefix = "\u2014 "
        parts = line[len(prefix) :].split(" ") if line.startswith(prefix) else []
        if len(parts) != 2:
            raise VerificationError("the checkpoint has a malformed signature line")
        name, blob = parts[0], unb64(parts[1], "note signature")
        if name != lines[0] or len(blob) != 4 + 64:
            continue  # a witness or another signer: not what we check
        for kid, key in keys.items():
            if note_key_id(name, key) == blob[:4] and _ed25519_verify(key, blob[4:], body.encode()):
                signer = kid
    if not signer:
        raise VerificationError(f"checkpoint of size {lines[1]} has no valid signature by a known key")
    return Checkpoint(lines[0], int(lines[1]), root, text, tuple(lines[3:]), signer)


# --- signed entry timestamps and receipts ----------------------------------------------------


def verify_set(set_: Any, keys: dict[str, bytes]) -> dict[str, Any]:
    if not isinstance(set_, dict) or not isinstance(set_.get("payload"), dict):
        raise VerificationError("the receipt has no signed entry timestamp (set)")
    key = keys.get(str(set_.get("kid")))
    if key is None:
        raise VerificationError(f"the set is signed by key {set_.get('kid')!r}, which is not in the key set")
    if not _ed25519_verify(key, unb64(set_.get("signature"), "set signature"), jcs(set_["payload"])):
        raise VerificationError("the set signature is not valid")
    payload: dict[str, Any] = set_["payload"]
    return payload


def verify_certificate(signed: Any, keys: dict[str, bytes]) -> dict[str, Any]:
    """A certificate of service (志愿服务证明): Ed25519 by a published key over JCS(certificate)."""
    if not isinstance(signed, dict) or not isinstance(signed.get("certificate"), dict):
        raise VerificationError("not a signed certificate: no certificate object")
    cert: dict[str, Any] = signed["certificate"]
    key = keys.get(str(signed.get("kid")))
    if key is None:
        raise VerificationError(
            f"certificate {cert.get('number')}: signed by key {signed.get('kid')!r}, "
            "which is not in the key set"
        )
    if not _ed25519_verify(key, unb64(signed.get("signature"), "signature"), jcs(cert)):
        raise VerificationError(
            f"certificate {cert.get('number')}: the signature does not match its content "
            "(it was changed after it was issued)"
        )
    return cert


@dataclass
class Report:
    """What a verification checked, in order (each line a passed check)."""

    transaction_id: str = "?"
    checked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)


def verify_receipt(
    receipt: Any,
    keys: dict[str, bytes],
    *,
    checkpoint: str | None = None,
    previous_checkpoint: str | None = None,
    consistency: Any = None,
) -> Report:
    """Check a receipt end to end; raise VerificationError naming the transaction."""
    report = Report()
    try:
        _verify_receipt(receipt, keys, checkpoint, previous_checkpoint, consistency, report)
    except VerificationError as exc:
        raise VerificationError(f"transaction {report.transaction_id}: {exc}") from None
    return report


def _verify_receipt(
    receipt: Any,
    keys: dict[str, bytes],
    checkpoint_text: str | None,
    previous_text: str | None,
    consistency: Any,
    report: Report,
) -> None:
    leaf, payload = _verify_leaf_and_set(receipt, keys, report)
    log = receipt.get("log")
    if log is None and checkpoint_text is None:
        report.skipped.append(
            "inclusion: the receipt is not yet in the log (fetch it again in a few seconds)"
        )
        if previous_text is not None:
            raise VerificationError("a consistency check needs a receipt with its log section")
        return
    if not isinstance(log, dict):
        raise VerificationError("the receipt's log section is missing or malformed")
    origin = payload.get("log_origin")
    cp = verify_checkpoint(
        checkpoint_text if checkpoint_text is not None else log.get("checkpoint"),
        keys,
        origin if isinstance(origin, str) else None,
    )
    report.checked.append(f"checkpoint {cp.origin} size {cp.size} signed by {cp.signed_by}")
    index, size = log.get("index"), log.get("tree_size")
    if size != cp.size:
        raise VerificationError(
            f"the inclusion proof is for tree size {size}, the checkpoint is of size {cp.size}"
        )
    verify_inclusion(index, size, leaf, log.get("inclusion_proof"), cp.root)  # type: ignore[arg-type]
    report.checked.append(f"included at index {index} of {size} under root {b64(cp.root)}")
    if previous_text is not None:
        _verify_growth(cp, previous_text, consistency, keys, report)


def _verify_leaf_and_set(
    receipt: Any, keys: dict[str, bytes], report: Report
) -> tuple[bytes, dict[str, Any]]:
    """The transaction's leaf hash and the signed entry timestamp over it: (leaf, set payload)."""
    if not isinstance(receipt, dict) or not isinstance(receipt.get("transaction"), dict):
        raise VerificationError("not a receipt: no transaction object")
    tx = receipt["transaction"]
    report.transaction_id = str(tx.get("id", "?"))
    leaf = leaf_hash(jcs(tx))
    if unb64(receipt.get("leaf_hash"), "leaf_hash") != leaf:
        raise VerificationError(
            "the leaf hash does not match the transaction's canonical bytes "
            "(the transaction differs from what was logged)"
        )
    report.checked.append(f"leaf hash {b64(leaf)} = SHA-256(0x00 || JCS(transaction))")
    payload = verify_set(receipt.get("set"), keys)
    if payload.get("leaf_hash") != b64(leaf):
        raise VerificationError("the set was signed for another leaf hash")
    if payload.get("community_id") != tx.get("community_id") or payload.get(
        "transaction_id", tx.get("id")
    ) != tx.get("id"):
        raise VerificationError("the set was signed for another transaction or community")
    report.checked.append(f"set signed by {receipt['set']['kid']} (accepted {payload.get('integrated_at')})")
    return leaf, payload


def _verify_growth(
    cp: Checkpoint, previous_text: str, consistency: Any, keys: dict[str, bytes], report: Report
) -> None:
    """The previous checkpoint is a prefix of ``cp`` (the log only grew)."""
    prev = verify_checkpoint(previous_text, keys, cp.origin)
    if not isinstance(consistency, dict):
        raise VerificationError("a previous checkpoint needs a consistency proof")
    if (consistency.get("first"), consistency.get("second")) != (prev.size, cp.size):
        raise VerificationError(
            f"the consistency proof is from {consistency.get('first')} to "
            f"{consistency.get('second')}, not {prev.size} to {cp.size}"
        )
    verify_consistency(prev.size, cp.size, consistency.get("proof"), prev.root, cp.root)
    report.checked.append(f"checkpoint of size {prev.size} is consistent with size {cp.size} (append-only)")

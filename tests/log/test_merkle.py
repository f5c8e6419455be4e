"""The stored-tree proofs (timebank.log.merkle) against the independent verifier and a
naive RFC 6962 definition; our JCS against the rfc8785 package."""

from __future__ import annotations

import hashlib

import rfc8785
from hypothesis import given
from hypothesis import strategies as st

from timebank.log import merkle
from timebank.log.verify import (
    EMPTY_ROOT,
    jcs,
    leaf_hash,
    node_hash,
    root_from_inclusion,
    verify_consistency,
    verify_inclusion,
)

LEAVES = [leaf_hash(f"leaf {i}".encode()) for i in range(70)]


def mth(leaves: list[bytes]) -> bytes:
    """RFC 6962 §2.1, literally."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def stored_tree(n: int) -> dict[merkle.Node, bytes]:
    """Every node the integrator stores for n leaves (via the same Frontier it uses)."""
    frontier = merkle.Frontier(0, {})
    nodes: dict[merkle.Node, bytes] = {}
    for leaf in LEAVES[:n]:
        nodes.update(frontier.append(leaf))
    assert frontier.root() == mth(LEAVES[:n])
    return nodes


def test_stored_nodes_are_perfect_subtrees_and_roots_match() -> None:
    nodes = stored_tree(70)
    for (level, index), h in nodes.items():
        width = 1 << level
        assert h == mth(LEAVES[index * width : (index + 1) * width])
    for n in range(1, 71):
        assert merkle.range_hash((0, n), nodes) == mth(LEAVES[:n])
        assert merkle.Frontier(n, nodes).root() == mth(LEAVES[:n])


def test_inclusion_proofs_verify_for_every_index_and_size() -> None:
    nodes = stored_tree(70)
    for size in range(1, 71):
        root = mth(LEAVES[:size])
        for index in range(size):
            proof = merkle.prove(
                merkle.inclusion_ranges(index, size), lambda want: {k: nodes[k] for k in want}
            )
            verify_inclusion(index, size, LEAVES[index], proof, root)
            # and the proof is bound to its leaf and index
            assert root_from_inclusion(index, size, LEAVES[(index + 1) % 70], proof) != root


def test_consistency_proofs_verify_for_every_pair_of_sizes() -> None:
    nodes = stored_tree(70)
    for second in range(1, 71):
        for first in range(1, second + 1):
            proof = merkle.prove(
                merkle.consistency_ranges(first, second), lambda want: {k: nodes[k] for k in want}
            )
            verify_consistency(first, second, proof, mth(LEAVES[:first]), mth(LEAVES[:second]))


def test_a_proof_reads_few_nodes() -> None:
    """O(log n) stored hashes per proof, never a rebuild."""
    n = 1_000_003
    worst = max(len(merkle.nodes_for(merkle.inclusion_ranges(i, n))) for i in range(0, n, 9973))
    assert worst <= 2 * n.bit_length()
    worst = max(len(merkle.nodes_for(merkle.consistency_ranges(m, n))) for m in range(1, n, 9973))
    assert worst <= 2 * n.bit_length()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2**53) + 1, max_value=2**53 - 1) | st.text(),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@given(json_values)
def test_jcs_matches_rfc8785(value: object) -> None:
    try:
        expected = rfc8785.dumps(value)
    except (rfc8785.CanonicalizationError, UnicodeEncodeError):
        return  # e.g. lone surrogates: not something a receipt can hold
    assert jcs(value) == expected


def test_jcs_sorts_by_utf16_code_units() -> None:
    # U+FB01 sorts after U+1F600 in UTF-16 (0xD83D < 0xFB01), before it by code point.
    value = {"\U0001f600": 1, "\ufb01": 2, "a": 3}
    assert jcs(value) == rfc8785.dumps(value)
    assert jcs(value).index("\U0001f600".encode()) < jcs(value).index("\ufb01".encode())


def test_leaf_and_node_hashing_are_domain_separated() -> None:
    assert leaf_hash(b"") == hashlib.sha256(b"\x00").digest()
    assert node_hash(b"a" * 32, b"b" * 32) == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()


texts = st.one_of(st.none(), st.text(max_size=40))


@given(memo=texts, reason=texts, amount=st.integers(min_value=1, max_value=10**12))
def test_canonical_transactions_are_jcs_by_construction(
    memo: str | None, reason: str | None, amount: int
) -> None:
    """The service's fast path (no checks) gives the bytes an independent JCS gives."""
    from datetime import UTC, datetime

    from timebank.log.canonical import canonical_json, canonical_of_rows

    row = {
        "id": "6f0c2a43-7f5e-4c55-9d47-2b1c7e0d9a10",
        "community_id": "0b9c6a7e-1d2f-4e3a-8b5c-6d7e8f9a0b1c",
        "kind": "transfer",
        "phase": "posted",
        "memo": memo,
        "reason": reason,
        "pending_id": None,
        "reverses_id": None,
        "timeout_at": None,
        "created_at": datetime(2026, 11, 22, 8, 52, 15, 123456, UTC),
    }
    legs = [
        {"account_id": "a", "asset": "POINT", "direction": d, "layer": "posted", "amount": amount}
        for d in ("credit", "debit")
    ]
    tx = canonical_of_rows(row, legs)
    try:
        expected = rfc8785.dumps(tx)
    except UnicodeEncodeError:
        return  # lone surrogates cannot come out of PostgreSQL's UTF-8
    assert canonical_json(tx) == expected == jcs(tx)
    assert tx["created_at"] == "2026-11-22T08:52:15.123456Z" and [e["direction"] for e in tx["entries"]] == [
        "debit",
        "credit",
    ]


@given(memo=texts, origin=st.text(min_size=1, max_size=30).filter(lambda s: not any(c.isspace() for c in s)))
def test_set_payloads_are_jcs(memo: str | None, origin: str) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from timebank.log.keys import Signer
    from timebank.log.timestamps import signed_entry_timestamp
    from timebank.log.verify import verify_set

    signer = Signer(Ed25519PrivateKey.from_private_bytes(bytes(32)))
    tx = {"id": "t", "community_id": "c", "created_at": "2026-11-22T08:52:15.123456Z", "memo": memo}
    set_ = signed_entry_timestamp(signer, origin, tx, bytes(32))
    assert verify_set(set_, {signer.kid: signer.public_key}) == set_["payload"]

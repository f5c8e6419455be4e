"""The Merkle tree as stored: which node hashes a proof needs, and how to append.

The log stores the hash of every *perfect* subtree, i.e. every node (level, index)
covering leaves [index·2^level, (index+1)·2^level). Such a hash never changes once
its leaves exist, so the stored tree is append-only like the log. Any range of
leaves [a, b) that RFC 6962 hashes (MTH) is a short left-to-right run of perfect
subtrees, so a root or a proof for any tree size needs O(log n) stored hashes,
fetched in one query, and never a rebuild.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from timebank.log.verify import EMPTY_ROOT, node_hash

Node = tuple[int, int]  # (level, index)
Range = tuple[int, int]  # leaves [start, end)


def _largest_power_of_two_below(n: int) -> int:
    assert n > 1
    return 1 << ((n - 1).bit_length() - 1)


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect subtrees that cover [start, end), left to right, as RFC 6962 splits it."""
    assert 0 <= start < end
    nodes: list[Node] = []
    while start < end:
        size = 1 << min((end - start).bit_length() - 1, (start & -start).bit_length() - 1 if start else 64)
        nodes.append((size.bit_length() - 1, start // size))
        start += size
    return nodes


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """RFC 6962 PATH(index, D[0:size]): the ranges whose hashes form the proof, leaf first."""
    assert 0 <= index < size
    ranges: list[Range] = []
    start, end = 0, size
    while end - start > 1:  # walk down from the root, then reverse (the proof goes up)
        k = _largest_power_of_two_below(end - start)
        if index < start + k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            start += k
    return ranges[::-1]


def consistency_ranges(first: int, second: int) -> list[Range]:
    """RFC 6962 PROOF(first, D[0:second]) as ranges, deepest first."""
    assert 0 <= first <= second
    if first in (0, second):
        return []
    ranges: list[Range] = []
    start, end, m, whole = 0, second, first, True
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            ranges.append((start + k, end))
            end = start + k
        else:
            ranges.append((start, start + k))
            m -= k
            start += k
            whole = False
    if not whole:  # SUBPROOF(m, D[m], false) contributes MTH(D[m]) itself
        ranges.append((start, end))
    return ranges[::-1]


def nodes_for(ranges: Iterable[Range]) -> set[Node]:
    return {node for r in ranges for node in perfect_nodes(*r)}


def range_hash(r: Range, hashes: Mapping[Node, bytes]) -> bytes:
    """MTH of a range from the hashes of its perfect subtrees (folded right to left)."""
    parts = [hashes[node] for node in perfect_nodes(*r)]
    acc = parts[-1]
    for h in reversed(parts[:-1]):
        acc = node_hash(h, acc)
    return acc


def prove(ranges: list[Range], fetch: Callable[[set[Node]], Mapping[Node, bytes]]) -> list[bytes]:
    hashes = fetch(nodes_for(ranges))
    return [range_hash(r, hashes) for r in ranges]


class Frontier:
    """The right edge of a tree: the perfect subtrees covering [0, size), left to right.

    Appending a leaf merges equal-level neighbours, like binary addition; every merge
    is a new perfect subtree, which the caller stores.
    """

    def __init__(self, size: int, hashes: Mapping[Node, bytes]) -> None:
        self.size = size
        self.nodes: list[tuple[Node, bytes]] = (
            [(n, hashes[n]) for n in perfect_nodes(0, size)] if size else []
        )

    def append(self, leaf: bytes) -> list[tuple[Node, bytes]]:
        """Add one leaf; return every new node (the leaf itself first)."""
        new = [((0, self.size), leaf)]
        self.nodes.append(new[0])
        while len(self.nodes) >= 2 and self.nodes[-1][0][0] == self.nodes[-2][0][0]:
            (level, index), right = self.nodes.pop()
            _, left = self.nodes.pop()
            merged = ((level + 1, index // 2), node_hash(left, right))
            self.nodes.append(merged)
            new.append(merged)
        self.size += 1
        return new

    def root(self) -> bytes:
        if not self.nodes:
            return EMPTY_ROOT
        acc = self.nodes[-1][1]
        for _, h in reversed(self.nodes[:-1]):
            acc = node_hash(h, acc)
        return acc

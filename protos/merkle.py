"""A Merkle tree over a judge's verdicts (RFC 9162's construction, SHA-256).

A judge signs one root per Judge reply instead of one signature per verdict: verifying a reply
costs one Ed25519 check however many comparisons it holds. Each verdict stays auditable on its own:
the coordinator stores with it its leaf index, the tree size and the audit path (the sibling
hashes up to the root), so anyone holding the round's transcript can rebuild the root from one
verdict and check the judge's signature over it. Leaf and inner hashes are domain-separated
(0x00 / 0x01 prefixes), so a leaf can never pass for an inner node.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence


def _leaf(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two below ``n`` (n >= 2): where RFC 9162 splits a tree."""
    return 1 << ((n - 1).bit_length() - 1)


def _subtrees(leaves: Sequence[bytes]) -> tuple[int, Callable[[int, int], bytes]]:
    """The number of leaves and the root of any subtree ``[lo, hi)`` of their tree (each hashed once)."""
    hashed = [_leaf(x) for x in leaves]
    if not hashed:
        raise ValueError("a Merkle tree needs at least one leaf")
    memo: dict[tuple[int, int], bytes] = {}

    def sub(lo: int, hi: int) -> bytes:
        if hi - lo == 1:
            return hashed[lo]
        if (lo, hi) not in memo:
            k = lo + _split(hi - lo)
            memo[lo, hi] = _node(sub(lo, k), sub(k, hi))
        return memo[lo, hi]

    return len(hashed), sub


def root(leaves: Sequence[bytes]) -> bytes:
    """The root over ``leaves`` (at least one)."""
    n, sub = _subtrees(leaves)
    return sub(0, n)


def proofs(leaves: Sequence[bytes]) -> tuple[bytes, list[tuple[bytes, ...]]]:
    """The root and every leaf's audit path, in leaf order."""
    n, sub = _subtrees(leaves)

    def path(index: int, lo: int, hi: int) -> list[bytes]:
        if hi - lo == 1:
            return []
        k = lo + _split(hi - lo)
        return [*path(index, lo, k), sub(k, hi)] if index < k else [*path(index, k, hi), sub(lo, k)]

    return sub(0, n), [tuple(path(i, 0, n)) for i in range(n)]


def root_from_proof(leaf: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes | None:
    """The root that ``leaf`` at ``index`` of a tree of ``size`` leaves leads to through ``proof``
    (RFC 9162, 2.1.3.2), or None when the path cannot belong to such a tree."""
    if not 0 <= index < size:
        return None
    fn, sn, r = index, size - 1, _leaf(leaf)
    for sibling in proof:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            r = _node(sibling, r)
            while not fn & 1 and fn != 0:
                fn >>= 1
                sn >>= 1
        else:
            r = _node(r, sibling)
        fn >>= 1
        sn >>= 1
    return r if sn == 0 else None

"""The wire protocol: generated code is fresh, signing bytes are canonical and domain-separated."""

from __future__ import annotations

import hashlib
import os

import pytest

from swarmrank.protos import merkle, signing
from swarmrank.protos.signing import Identity


def test_checked_in_generated_code_is_up_to_date() -> None:
    pytest.importorskip("grpc_tools")
    from swarmrank.protos.generate import main

    assert main(["--check"]) == 0, "run: python -m swarmrank.protos.generate"


def test_signatures_bind_every_field() -> None:
    me = Identity.generate()
    nonce = os.urandom(16)
    payload = signing.candidate_bytes("r1", nonce, me.node_id, "m", "Paris")
    sig = me.sign(payload)
    assert signing.verify(me.public_key, sig, payload)
    for other in (
        signing.candidate_bytes("r2", nonce, me.node_id, "m", "Paris"),
        signing.candidate_bytes("r1", os.urandom(16), me.node_id, "m", "Paris"),
        signing.candidate_bytes("r1", nonce, "someone", "m", "Paris"),
        signing.candidate_bytes("r1", nonce, me.node_id, "m2", "Paris"),
        signing.candidate_bytes("r1", nonce, me.node_id, "m", "Paris!"),
    ):
        assert not signing.verify(me.public_key, sig, other)
    assert not signing.verify(Identity.generate().public_key, sig, payload)


def test_domain_separation_and_unambiguous_encoding() -> None:
    # Same field values, different message kinds: different bytes.
    assert signing.heartbeat_bytes("n", 1.0) != signing.registration_bytes(b"n", b"", "")
    # Length prefixes: moving a character between fields changes the bytes.
    assert signing._encode("t", "ab", "c") != signing._encode("t", "a", "bc")


def test_verify_rejects_malformed_inputs() -> None:
    me = Identity.generate()
    assert not signing.verify(me.public_key[:31], b"x" * 64, b"p")
    assert not signing.verify(me.public_key, b"short", b"p")
    with pytest.raises(ValueError):
        signing.node_id_for(b"123")


def test_libsodium_and_openssl_verifiers_agree() -> None:
    """``verify`` uses libsodium when PyNaCl is installed (faster); it must accept and refuse the same
    signatures as the OpenSSL path for everything an honest or a tampering signer sends."""
    pytest.importorskip("nacl")
    assert signing._verify is not signing._verify_openssl
    key, other = Identity.generate(), Identity.generate()
    for payload in (b"", b"x", os.urandom(300)):
        sig = key.sign(payload)
        cases = [(key.public_key, sig, payload, True), (other.public_key, sig, payload, False),
                 (key.public_key, sig, payload + b"!", False), (key.public_key, bytes([sig[0] ^ 1]) + sig[1:], payload, False),
                 (key.public_key, sig[:32] + bytes([sig[32] ^ 1]) + sig[33:], payload, False),
                 (bytes(32), sig, payload, False), (key.public_key, bytes(64), payload, False)]
        for public_key, s, p, ok in cases:
            assert signing._verify(public_key, s, p) is ok
            assert signing._verify_openssl(public_key, s, p) is ok
            assert signing.verify(public_key, s, p) is ok


# --- the Merkle tree a judge's reply signs ---------------------------------------------------------

@pytest.mark.parametrize("size", range(1, 18))
def test_every_leaf_of_a_merkle_tree_proves_the_root_and_nothing_else_does(size: int) -> None:
    # (the tree size is bound by the signature over root and size: signing.verdicts_bytes)
    leaves = [hashlib.sha256(str(i).encode()).digest() for i in range(size)]
    root, paths = merkle.proofs(leaves)
    assert root == merkle.root(leaves)
    for i, (leaf, path) in enumerate(zip(leaves, paths)):
        assert merkle.root_from_proof(leaf, i, size, path) == root
        assert merkle.root_from_proof(b"x" + leaf[1:], i, size, path) != root           # another leaf
        if size > 1:
            assert merkle.root_from_proof(leaf, (i + 1) % size, size, path) != root       # another position
            assert merkle.root_from_proof(leaf, i, size, path[:-1]) != root               # a path cut short
    assert merkle.root_from_proof(leaves[0], size, size, paths[0]) is None                # index outside the tree


def test_a_merkle_leaf_cannot_pass_for_an_inner_node() -> None:
    a, b = hashlib.sha256(b"a").digest(), hashlib.sha256(b"b").digest()
    two = merkle.root([a, b])
    assert merkle.root([two]) != two and merkle.root([a, b, a]) != merkle.root([two, a])

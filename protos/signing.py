"""Ed25519 identities and the canonical bytes that nodes and the coordinator sign.

Every signed payload starts with a domain tag (so a signature for one kind of message can never be
accepted as another) and then length-prefixed fields (so no two field lists encode to the same
bytes). Candidates and verdicts bind the round id and the caller's nonce, so a signature cannot be
replayed into another round. A judge signs each Judge reply once, over a Merkle tree of its verdicts.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence

import hashlib
import os
import struct
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from . import merkle

PUBLIC_KEY_BYTES = 32
SIGNATURE_BYTES = 64
_LENGTH, _INT, _FLOAT = struct.Struct(">I"), struct.Struct(">q"), struct.Struct(">d")


def node_id_for(public_key: bytes) -> str:
    """A node's id is derived from its key: first 128 bits of SHA-256, hex."""
    if len(public_key) != PUBLIC_KEY_BYTES:
        raise ValueError(f"an Ed25519 public key is {PUBLIC_KEY_BYTES} bytes, got {len(public_key)}")
    return hashlib.sha256(public_key).hexdigest()[:32]


def sha256(text: str) -> bytes:
    return hashlib.sha256(text.encode("utf-8")).digest()


def _encode(tag: str, *fields: str | bytes | int | float) -> bytes:
    parts = [b"swarmrank/1/" + tag.encode() + b"\x00"]
    for field in fields:
        kind = type(field)
        if kind is str:
            raw = field.encode("utf-8")  # type: ignore[union-attr]
        elif kind is bytes:
            raw = field
        elif kind is int:
            raw = _INT.pack(field)
        elif isinstance(field, bool):
            raise TypeError("booleans are not signed fields")
        elif isinstance(field, int):  # IntEnum values and the like
            raw = _INT.pack(int(field))
        else:
            raw = _FLOAT.pack(float(field))
        parts.append(_LENGTH.pack(len(raw)) + raw)
    return b"".join(parts)


def candidate_bytes(round_id: str, nonce: bytes, node_id: str, model: str, text: str) -> bytes:
    return _encode("candidate", round_id, nonce, node_id, model, sha256(text))


def verdict_leaf(round_id: str, nonce: bytes, judge_node_id: str, comparison_id: str, sha256_a: bytes, sha256_b: bytes,
                 preference: int) -> bytes:
    """One verdict's leaf in the Merkle tree its Judge reply signs (``verdicts_bytes``). Takes the two
    answers' SHA-256 (``sha256``): a reply shows each answer in several comparisons."""
    return hashlib.sha256(_encode("verdict", round_id, nonce, judge_node_id, comparison_id, sha256_a, sha256_b,
                                  preference)).digest()


def verdicts_bytes(round_id: str, nonce: bytes, judge_node_id: str, root: bytes, count: int) -> bytes:
    """What a judge signs once per Judge reply: the Merkle root over its ``count`` verdict leaves, in
    reply order (``merkle``). One Ed25519 check covers the whole batch."""
    return _encode("verdicts", round_id, nonce, judge_node_id, root, count)


def verdict_is_signed(public_key: bytes, signature: bytes, proof: Sequence[bytes], leaf_index: int, leaf_count: int,
                      round_id: str, nonce: bytes, judge_node_id: str, comparison_id: str, answer_a: str, answer_b: str,
                      preference: int) -> bool:
    """Audit one stored verdict: its leaf, index and path lead to a root its judge signed."""
    leaf = verdict_leaf(round_id, nonce, judge_node_id, comparison_id, sha256(answer_a), sha256(answer_b), preference)
    root = merkle.root_from_proof(leaf, leaf_index, leaf_count, proof)
    return root is not None and verify(public_key, signature, verdicts_bytes(round_id, nonce, judge_node_id, root, leaf_count))


def registration_bytes(nonce: bytes, public_key: bytes, address: str) -> bytes:
    return _encode("register", nonce, public_key, address)


def heartbeat_bytes(node_id: str, timestamp_unix: float) -> bytes:
    return _encode("heartbeat", node_id, timestamp_unix)


def join_bytes(token_id: str, csr_der: bytes) -> bytes:
    """Binds a node's TLS certificate request to its Ed25519 identity (token id "renew" on renewal)."""
    return _encode("join", token_id, csr_der)


@functools.lru_cache(maxsize=4096)
def _public_key(raw: bytes) -> Ed25519PublicKey:
    return Ed25519PublicKey.from_public_bytes(raw)  # parsed once per key: every round verifies the same nodes


def _verify_openssl(public_key: bytes, signature: bytes, payload: bytes) -> bool:
    try:
        _public_key(public_key).verify(signature, payload)
    except InvalidSignature:
        return False
    return True


def _verify_function() -> Callable[[bytes, bytes, bytes], bool]:
    """libsodium (PyNaCl, installed with the server extra) when present: its Ed25519 check costs about
    half of OpenSSL's, and a coordinator checks ~12 signatures per round (5 candidates, 7 judge
    replies). It is also the stricter of the two (it refuses small-order keys and non-canonical
    points, which no honest signer produces). Without PyNaCl (the light client install), OpenSSL
    through ``cryptography``."""
    try:
        from nacl.bindings import crypto_sign_open
        from nacl.exceptions import BadSignatureError
    except ImportError:
        return _verify_openssl

    def verify_sodium(public_key: bytes, signature: bytes, payload: bytes) -> bool:
        try:
            crypto_sign_open(signature + payload, public_key)
        except BadSignatureError:
            return False
        return True

    return verify_sodium


_verify = _verify_function()


def verify(public_key: bytes, signature: bytes, payload: bytes) -> bool:
    """True if ``signature`` is a valid Ed25519 signature of ``payload`` by ``public_key``."""
    if len(public_key) != PUBLIC_KEY_BYTES or len(signature) != SIGNATURE_BYTES:
        return False
    return _verify(public_key, signature, payload)


class Identity:
    """An Ed25519 key pair. The private key never leaves this object except to its 0600 file."""

    def __init__(self, private_key: Ed25519PrivateKey) -> None:
        self._key = private_key
        self.public_key: bytes = private_key.public_key().public_bytes(
            serialization.Encoding.Raw, serialization.PublicFormat.Raw
        )
        self.node_id: str = node_id_for(self.public_key)

    @classmethod
    def generate(cls) -> "Identity":
        return cls(Ed25519PrivateKey.generate())

    @classmethod
    def load_or_create(cls, path: Path) -> "Identity":
        """Load the key at ``path``, or create it (mode 0600, parent 0700) on first start."""
        path = Path(path).expanduser()
        if path.exists():
            mode = path.stat().st_mode & 0o777
            if mode & 0o077:
                raise PermissionError(f"key file {path} is readable by others (mode {mode:o}); chmod 600 it")
            key = serialization.load_pem_private_key(path.read_bytes(), password=None)
            if not isinstance(key, Ed25519PrivateKey):
                raise ValueError(f"{path} does not hold an Ed25519 private key")
            return cls(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        identity = cls.generate()
        pem = identity._key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # O_EXCL: never overwrite a key another process just created; 0600 from the first byte.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(pem)
        return identity

    def sign(self, payload: bytes) -> bytes:
        return self._key.sign(payload)

    def private_seed(self) -> bytes:
        """The raw 32-byte Ed25519 seed, only to build this process's libp2p host key from the same
        key (so the libp2p peer id and the node id are bound); never sent or logged."""
        return self._key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        )

    def __repr__(self) -> str:  # never print key material
        return f"Identity(node_id={self.node_id})"

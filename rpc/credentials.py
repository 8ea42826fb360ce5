"""The text formats of a swarm's bearer secrets: join tokens and API keys.

Both are ``<id>`` + ``<secret>``: the id finds the stored record, only SHA-256 of the secret is
stored (the secret is 256 random bits, so a plain hash is enough; no password hashing needed), and
comparisons are constant-time. A join token also carries the CA certificate's fingerprint, which
the joining node pins on first contact (as kubeadm/k3s tokens do).
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

TOKEN_PREFIX = "SRJ1"
KEY_PREFIX = "srk"
_TOKEN = re.compile(r"^SRJ1\.([0-9a-f]{64})\.([0-9a-f]{16})\.([0-9a-f]{64})$")
_KEY = re.compile(r"^srk_([0-9a-f]{16})_([0-9a-f]{64})$")


class MalformedCredential(ValueError):
    pass


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


def matches(secret: str, stored_hash: bytes) -> bool:
    return hmac.compare_digest(secret_hash(secret), stored_hash)


@dataclass(frozen=True)
class JoinToken:
    ca_fingerprint: str
    token_id: str
    secret: str

    def __str__(self) -> str:
        return f"{TOKEN_PREFIX}.{self.ca_fingerprint}.{self.token_id}.{self.secret}"

    def __repr__(self) -> str:  # never print the secret
        return f"JoinToken(id={self.token_id})"


def new_join_token(ca_fingerprint: str) -> JoinToken:
    return JoinToken(ca_fingerprint, secrets.token_hex(8), secrets.token_hex(32))


def parse_join_token(text: str) -> JoinToken:
    m = _TOKEN.match(text.strip())
    if not m:
        raise MalformedCredential("malformed join token (expected SRJ1.<ca fingerprint>.<id>.<secret>)")
    return JoinToken(m.group(1), m.group(2), m.group(3))


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    secret: str

    def __str__(self) -> str:
        return f"{KEY_PREFIX}_{self.key_id}_{self.secret}"

    def __repr__(self) -> str:
        return f"ApiKey(id={self.key_id})"


def new_api_key() -> ApiKey:
    return ApiKey(secrets.token_hex(8), secrets.token_hex(32))


def parse_api_key(text: str) -> ApiKey:
    m = _KEY.match(text.strip())
    if not m:
        raise MalformedCredential("malformed API key (expected srk_<id>_<secret>)")
    return ApiKey(m.group(1), m.group(2))

"""Joining: challenge nonces, proof of possession, rate limits (pure apart from the clock).

A node asks for a challenge, signs (nonce, public key, address) and registers. A nonce is single
use and expires; challenges and registrations are rate-limited per key and per address so that
registration spam cannot exhaust the coordinator.
"""

from __future__ import annotations

import os
import re
import time
from collections import OrderedDict, deque
from collections.abc import Callable

from swarmrank.protos import signing

from .errors import RateLimited, RegistrationRefused

CHALLENGE_TTL = 60.0
MAX_OUTSTANDING = 10_000
ADDRESS = re.compile(r"^[A-Za-z0-9.\-\[\]:]{1,253}:\d{1,5}$")


class RateLimiter:
    """At most ``limit`` events per ``window`` seconds per key (sliding window)."""

    def __init__(self, limit: int, window: float, clock: Callable[[], float]) -> None:
        self._limit, self._window, self._clock = limit, window, clock
        self._events: OrderedDict[str, deque[float]] = OrderedDict()

    def check(self, key: str) -> None:
        now = self._clock()
        q = self._events.setdefault(key, deque())
        self._events.move_to_end(key)
        while q and q[0] <= now - self._window:
            q.popleft()
        if len(q) >= self._limit:
            raise RateLimited(f"too many requests for {key}; try again in {q[0] + self._window - now:.0f}s")
        q.append(now)
        while len(self._events) > MAX_OUTSTANDING:
            self._events.popitem(last=False)


class Challenges:
    def __init__(self, clock: Callable[[], float] = time.time, per_minute: int = 20) -> None:
        self._clock = clock
        self._pending: OrderedDict[bytes, tuple[bytes, float]] = OrderedDict()
        self._limit = RateLimiter(per_minute, 60.0, clock)

    def issue(self, public_key: bytes, peer: str) -> tuple[bytes, float]:
        if len(public_key) != signing.PUBLIC_KEY_BYTES:
            raise RegistrationRefused("public key must be a 32-byte Ed25519 key")
        self._limit.check("key:" + public_key.hex())
        self._limit.check("peer:" + peer)
        nonce = os.urandom(32)
        expires = self._clock() + CHALLENGE_TTL
        self._pending[nonce] = (public_key, expires)
        while len(self._pending) > MAX_OUTSTANDING:
            self._pending.popitem(last=False)
        return nonce, expires

    def verify(self, public_key: bytes, nonce: bytes, address: str, signature: bytes) -> str:
        """Check a registration; returns the node id. The nonce is consumed whatever the outcome."""
        pending = self._pending.pop(nonce, None)
        if pending is None:
            raise RegistrationRefused("unknown or already used challenge nonce; ask for a new challenge")
        key, expires = pending
        if self._clock() > expires:
            raise RegistrationRefused("challenge expired; ask for a new one")
        if key != public_key:
            raise RegistrationRefused("challenge was issued to another key")
        if not ADDRESS.match(address):
            raise RegistrationRefused(f"address {address[:80]!r} is not host:port")
        if not signing.verify(public_key, signature, signing.registration_bytes(nonce, public_key, address)):
            raise RegistrationRefused("bad proof of possession: signature does not verify")
        return signing.node_id_for(public_key)

"""Who may use the HTTP API: a small authenticator interface the HTTP layer calls with the bearer
token of each request.

``OpenAccess`` serves a coordinator on loopback (development) with no key. Client API keys (hashed
in the coordinator database, scopes, rate limits) plug in as another ``Authenticator``: the HTTP
layer only maps its ``AuthRefused`` to 401/403/429.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True)
class Principal:
    name: str
    scopes: frozenset[str] = frozenset({"ask"})


class AuthRefused(Exception):
    """Refused request. ``reason`` labels the metric; ``status`` is 401 (no or bad key), 403 (scope)
    or 429 (rate)."""

    def __init__(self, message: str, *, reason: str, status: int = 401) -> None:
        super().__init__(message)
        self.reason = reason
        self.status = status


class Authenticator(Protocol):
    def authenticate(self, token: str | None, scope: str) -> Principal:
        """The caller behind ``token`` (None: no Authorization header) if it may act in ``scope``."""
        ...


class OpenAccess:
    """Everyone may ask: a coordinator on loopback without a swarm directory, or one behind an auth proxy."""

    def authenticate(self, token: str | None, scope: str) -> Principal:
        return Principal("anonymous", frozenset({"ask", "read"}))


class NoKeysConfigured:
    """A non-loopback HTTP API with no key store: refuse every call, saying how to fix it."""

    def authenticate(self, token: str | None, scope: str) -> Principal:
        raise AuthRefused("this coordinator's HTTP API is on a public address and has no API keys configured; "
                          "set up client API keys, or pass --http-allow-anonymous behind your own auth proxy",
                          reason="no_key_store")


def is_loopback(listen: str) -> bool:
    """Whether ``host:port`` binds only the loopback interface."""
    host = listen.rsplit(":", 1)[0].strip("[]")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


def authenticator_for(http_listen: str, allow_anonymous: bool) -> Authenticator:
    return OpenAccess() if allow_anonymous or is_loopback(http_listen) else NoKeysConfigured()

"""Who may use the HTTP API: a small authenticator interface the HTTP layer calls with the bearer
token of each request.

``OpenAccess`` serves a coordinator without a swarm directory (loopback, or ``--insecure``) with no
key; ``ApiKeyAuthenticator`` checks the swarm's client API keys (hashed in the coordinator database,
scopes, rate limits), the same check the gRPC guard makes. The HTTP layer only maps
``AuthRefused`` to 401/403/429.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from swarmrank.rpc.guard import Refused

from .access import AccessControl

HTTP_STATUS = {"UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "RESOURCE_EXHAUSTED": 429}


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
        """The caller behind ``token`` (None: no Authorization header) if it may act in ``scope``
        ("ask", "read" or "admin")."""
        ...


class OpenAccess:
    """Everyone may ask: a coordinator without a swarm directory (loopback, or --insecure)."""

    def authenticate(self, token: str | None, scope: str) -> Principal:
        return Principal("anonymous", frozenset({"ask", "read"}))


class ApiKeyAuthenticator:
    """The swarm's client API keys (``swarmrank keys create``)."""

    def __init__(self, access: AccessControl) -> None:
        self._access = access

    def authenticate(self, token: str | None, scope: str) -> Principal:
        try:
            # Reading the dashboard's data needs what asking needs: any valid key ("ask" or "admin").
            who = self._access.authenticate_api_key(token, "admin" if scope == "admin" else "ask", f"HTTP {scope}")
        except Refused as exc:
            raise AuthRefused(exc.message, reason=exc.reason, status=HTTP_STATUS.get(exc.code.name, 401)) from None
        return Principal(who.name, frozenset({"ask", "read", *(["admin"] if who.scope == "admin" else [])}))


def bearer_token(header: str | None) -> str | None:
    """The token of an ``Authorization: Bearer …`` header (None when absent or another scheme)."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None

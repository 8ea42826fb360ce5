"""Administering a private swarm from code (admin-scope API key): join tokens, API keys, removing nodes.
The ``swarmrank swarm invite``, ``keys`` and ``nodes remove`` commands are thin wrappers of this."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import grpc

from swarmrank.protos.v1 import access_pb2 as apb
from swarmrank.protos.v1 import access_pb2_grpc

from . import connection
from .sdk import DEFAULT_ADDRESS, _error

T = TypeVar("T")
ADMIN_TIMEOUT = 15.0


@dataclass(frozen=True)
class JoinTokenInfo:
    token: str  # secret: give it to the node's operator only
    token_id: str
    expires_unix: float


@dataclass(frozen=True)
class ApiKeyInfo:
    name: str
    key_id: str
    scope: str
    rate_per_minute: int
    created_unix: float
    revoked: bool


def _key(k: Any) -> ApiKeyInfo:
    return ApiKeyInfo(k.name, k.key_id, k.scope, k.rate_per_minute, k.created_unix, k.revoked)


class AdminClient:
    def __init__(self, address: str = DEFAULT_ADDRESS, *, api_key: str | None = None, ca: str | Path | bytes | None = None,
                 tls: bool | None = None, timeout: float = ADMIN_TIMEOUT) -> None:
        self._metadata = connection.metadata(connection.api_key_or_env(api_key))
        self._channel = connection.sync_channel(address, connection.credentials(ca, tls))
        self._stub = access_pb2_grpc.AccessStub(self._channel)
        self.timeout = timeout

    def __enter__(self) -> AdminClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: Any, request: Any) -> Any:
        try:
            return method(request, metadata=self._metadata, timeout=self.timeout)
        except grpc.RpcError as exc:
            raise _error(exc) from None

    def create_join_token(self, ttl_seconds: float = 3600.0, uses: int = 1) -> JoinTokenInfo:
        r = self._call(self._stub.CreateJoinToken, apb.CreateJoinTokenRequest(ttl_seconds=ttl_seconds, uses=uses))
        return JoinTokenInfo(r.token, r.token_id, r.expires_unix)

    def revoke_join_token(self, token_id: str) -> None:
        self._call(self._stub.RevokeJoinToken, apb.RevokeJoinTokenRequest(token_id=token_id))

    def create_key(self, name: str, scope: str = "ask", rate_per_minute: int = 0) -> tuple[str, ApiKeyInfo]:
        r = self._call(self._stub.CreateApiKey, apb.CreateApiKeyRequest(name=name, scope=scope, rate_per_minute=rate_per_minute))
        return r.key, _key(r.info)

    def list_keys(self) -> list[ApiKeyInfo]:
        return [_key(k) for k in self._call(self._stub.ListApiKeys, apb.ListApiKeysRequest()).keys]

    def revoke_key(self, name: str) -> None:
        self._call(self._stub.RevokeApiKey, apb.RevokeApiKeyRequest(name=name))

    def remove_node(self, node_id: str, reason: str = "") -> int:
        """Revoke the node's certificates at once (checked on every call) and record it in the ledger."""
        return int(self._call(self._stub.RemoveNode, apb.RemoveNodeRequest(node_id=node_id, reason=reason)).certificates_revoked)

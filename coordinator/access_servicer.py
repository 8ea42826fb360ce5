"""The thin gRPC layer of swarm access: node certificates (Join, Renew) and admin actions."""

from __future__ import annotations

import logging
from typing import Any

import grpc

from swarmrank.protos.v1 import access_pb2 as apb
from swarmrank.protos.v1 import access_pb2_grpc
from swarmrank.rpc.guard import Refused

from .access import CALLER, AccessControl, KeyRecord
from .registry import Registry

log = logging.getLogger("swarmrank.coordinator.access")


def _key_info(r: KeyRecord) -> apb.ApiKeyInfo:
    return apb.ApiKeyInfo(name=r.name, key_id=r.key_id, scope=r.scope, rate_per_minute=r.rate_per_minute,
                          created_unix=r.created_unix, revoked=r.revoked)


class AccessServicer(access_pb2_grpc.AccessServicer):
    def __init__(self, access: AccessControl, registry: Registry, node_port: int) -> None:
        self._access = access
        self._registry = registry
        self.node_port = node_port  # set once the mTLS port is bound

    async def _refuse(self, context: grpc.aio.ServicerContext[Any, Any], exc: Exception) -> None:
        if isinstance(exc, Refused):
            log.warning("refused %s: %s", exc.reason, exc.message)
            await context.abort(exc.code, exc.message)
        code = grpc.StatusCode.NOT_FOUND if isinstance(exc, LookupError) else grpc.StatusCode.INVALID_ARGUMENT
        await context.abort(code, str(exc).strip("'\""))

    def _certificate(self, pem: bytes, expires: float) -> apb.CertificateResponse:
        return apb.CertificateResponse(certificate_pem=pem, ca_pem=self._access.creds.ca_pem, swarm_id=self._access.swarm_id,
                                       node_port=self.node_port, expires_unix=expires)

    async def Join(self, request: apb.JoinRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.CertificateResponse:
        try:
            pem, expires = self._access.join(request.token, request.public_key, request.csr, request.signature)
        except (Refused, ValueError) as exc:
            await self._refuse(context, exc)
            raise
        return self._certificate(pem, expires)

    async def Renew(self, request: apb.RenewRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.CertificateResponse:
        try:
            pem, expires = self._access.renew(request.public_key, request.csr, request.signature)
        except (Refused, ValueError) as exc:
            await self._refuse(context, exc)
            raise
        return self._certificate(pem, expires)

    async def CreateJoinToken(self, request: apb.CreateJoinTokenRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.CreateJoinTokenResponse:
        try:
            token, expires = self._access.create_token(request.ttl_seconds or 3600.0, request.uses or 1)
        except ValueError as exc:
            await self._refuse(context, exc)
            raise
        return apb.CreateJoinTokenResponse(token=str(token), token_id=token.token_id, expires_unix=expires)

    async def RevokeJoinToken(self, request: apb.RevokeJoinTokenRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.Empty:
        try:
            self._access.revoke_token(request.token_id)
        except LookupError as exc:
            await self._refuse(context, exc)
        return apb.Empty()

    async def CreateApiKey(self, request: apb.CreateApiKeyRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.CreateApiKeyResponse:
        try:
            key, record = self._access.create_key(request.name, request.scope or "ask", request.rate_per_minute)
        except ValueError as exc:
            await self._refuse(context, exc)
            raise
        return apb.CreateApiKeyResponse(key=key, info=_key_info(record))

    async def ListApiKeys(self, request: apb.ListApiKeysRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.ListApiKeysResponse:
        return apb.ListApiKeysResponse(keys=[_key_info(r) for r in self._access.list_keys()])

    async def RevokeApiKey(self, request: apb.RevokeApiKeyRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.Empty:
        try:
            self._access.revoke_key(request.name)
        except LookupError as exc:
            await self._refuse(context, exc)
        return apb.Empty()

    async def RemoveNode(self, request: apb.RemoveNodeRequest, context: grpc.aio.ServicerContext[Any, Any]) -> apb.RemoveNodeResponse:
        node = self._registry.get(request.node_id)
        if node is None:
            await context.abort(grpc.StatusCode.NOT_FOUND, f"no node {request.node_id!r} in this swarm")
        revoked = self._access.revoke_node(request.node_id)
        self._registry.mark_failed(request.node_id)  # no new work at once; its heartbeats are refused from now on
        caller = CALLER.get()
        by = getattr(caller, "name", "")
        await self._registry.record([], summaries=[{"kind": "node_removed", "node": request.node_id, "ts": self._registry.clock(),
                                              "certificates_revoked": revoked, "by": by, "reason": request.reason[:200]}])
        log.warning("node %s removed by %s: %d certificate(s) revoked", request.node_id, by or "?", revoked)
        return apb.RemoveNodeResponse(certificates_revoked=revoked)

"""Access control at the gRPC edge: a server interceptor that asks a policy about every call before
its handler runs. The policy sees the method, the peer's verified certificate (if any) and the bearer
token (if any); a refusal becomes UNAUTHENTICATED, PERMISSION_DENIED or RESOURCE_EXHAUSTED with a
clear message, is logged without the secret, and is counted."""

from __future__ import annotations

import collections
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, Protocol

import grpc

from .tls import PeerCert, PeerCerts

log = logging.getLogger("swarmrank.rpc.guard")

OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")


class Refused(Exception):
    def __init__(self, code: grpc.StatusCode, message: str, reason: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reason = reason  # a short stable label for the counter, e.g. "api_key_revoked"


class Policy(Protocol):
    def authorize(self, method: str, peer: PeerCert | None, bearer: str | None) -> object:
        """Return a principal (anything) or raise ``Refused``."""
        ...


def bearer_of(metadata: Any) -> str | None:
    for key, value in metadata or ():
        if key == "authorization":
            text = value.decode() if isinstance(value, bytes) else str(value)
            scheme, _, token = text.partition(" ")
            return token.strip() if scheme.lower() == "bearer" else ""
    return None


class Guard(grpc.aio.ServerInterceptor):
    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self._peers = PeerCerts()
        self.refusals: collections.Counter[str] = collections.Counter()  # reason -> count (for metrics)

    async def _check(self, method: str, context: grpc.aio.ServicerContext[Any, Any]) -> None:
        try:
            self._policy.authorize(method, self._peers.of(context), bearer_of(context.invocation_metadata()))
        except Refused as exc:
            self.refusals[exc.reason] += 1
            log.warning("refused %s %s from %s: %s", method, exc.code.name, context.peer(), exc.message)
            await context.abort(exc.code, exc.message)

    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(details)
        method: str = details.method
        if handler is None or method.startswith(OPEN_PREFIXES):
            return handler
        check = self._check
        if handler.unary_unary is not None:
            inner_uu: Any = handler.unary_unary  # an async handler on an aio server

            async def unary_unary(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
                await check(method, context)
                return await inner_uu(request, context)

            return grpc.unary_unary_rpc_method_handler(unary_unary, handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream is not None:
            inner_us: Any = handler.unary_stream

            async def unary_stream(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
                await check(method, context)
                async for item in inner_us(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(unary_stream, handler.request_deserializer, handler.response_serializer)
        raise NotImplementedError(f"{method}: client-streaming methods are not guarded yet")

"""A request that does not parse gets INVALID_ARGUMENT, not gRPC's UNKNOWN with a logged traceback.

gRPC deserialises before any handler runs, and a DecodeError there surfaces as "Unexpected
<DecodeError>" (UNKNOWN). This interceptor wraps every method's deserialiser: bytes that are not the
message become a marker, and the handler is replaced by one that refuses them clearly.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import grpc
from google.protobuf.message import DecodeError


class _Undecodable:
    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe(deserialize: Callable[[bytes], Any] | None) -> Callable[[bytes], Any] | None:
    if deserialize is None:
        return None

    def parse(data: bytes) -> Any:
        try:
            return deserialize(data)
        except (DecodeError, ValueError, UnicodeDecodeError) as exc:
            return _Undecodable(str(exc)[:200])

    return parse


async def _refuse(context: Any, bad: _Undecodable) -> None:
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"request does not parse: {bad.reason}")


class RefuseUndecodable(grpc.aio.ServerInterceptor):
    async def intercept_service(
        self, continuation: Callable[[grpc.HandlerCallDetails], Awaitable[Any]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        handler: Any = await continuation(handler_call_details)
        if handler is None or handler.request_streaming:
            return handler
        if handler.unary_unary is not None:
            inner = handler.unary_unary

            async def unary(request: Any, context: Any) -> Any:
                if isinstance(request, _Undecodable):
                    await _refuse(context, request)
                return await inner(request, context)

            return grpc.unary_unary_rpc_method_handler(unary, _safe(handler.request_deserializer), handler.response_serializer)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            async def stream(request: Any, context: Any) -> AsyncIterator[Any]:
                if isinstance(request, _Undecodable):
                    await _refuse(context, request)
                async for item in inner_stream(request, context):
                    yield item

            return grpc.unary_stream_rpc_method_handler(stream, _safe(handler.request_deserializer), handler.response_serializer)
        return handler

"""The thin gRPC layer of the node: convert, delegate, map errors to status codes."""

from __future__ import annotations

from collections.abc import AsyncIterator

from typing import Any

import grpc

from swarmrank.protos import PROTOCOL_VERSION
from swarmrank.protos.v1 import node_pb2 as pb
from swarmrank.protos.v1 import node_pb2_grpc
from swarmrank.rpc.status import abort_with

from . import convert
from .errors import BackendFailure, InvalidRequest, ModelUnavailable, NodeError, Overloaded, UnknownModel, WrongRole
from .service import NodeService, SignedCandidate

STATUS_FOR_ERROR: dict[type[NodeError], grpc.StatusCode] = {
    InvalidRequest: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownModel: grpc.StatusCode.NOT_FOUND,
    WrongRole: grpc.StatusCode.FAILED_PRECONDITION,
    Overloaded: grpc.StatusCode.RESOURCE_EXHAUSTED,
    ModelUnavailable: grpc.StatusCode.UNAVAILABLE,
    BackendFailure: grpc.StatusCode.INTERNAL,
}


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: NodeError) -> None:
    await abort_with(context, exc, STATUS_FOR_ERROR)


class NodeServicer(node_pb2_grpc.NodeServicer):
    def __init__(self, service: NodeService) -> None:
        self._service = service

    async def Describe(self, request: pb.DescribeRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.DescribeResponse:
        return convert.describe_to_pb(self._service.describe(), PROTOCOL_VERSION)

    async def Generate(
        self, request: pb.GenerateRequest, context: grpc.aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[pb.GenerateResponse]:
        try:
            async for item in self._service.generate(convert.generate_call_from_pb(request)):
                if isinstance(item, SignedCandidate):
                    yield pb.GenerateResponse(candidate=convert.candidate_to_pb(item))
                else:
                    yield pb.GenerateResponse(token=pb.TokenChunk(text=item))
        except NodeError as exc:
            await _abort(context, exc)

    async def Judge(self, request: pb.JudgeRequest, context: grpc.aio.ServicerContext[Any, Any]) -> pb.JudgeResponse:
        try:
            judged = await self._service.judge(convert.judge_call_from_pb(request))
        except NodeError as exc:
            await _abort(context, exc)
            raise  # unreachable: abort raises
        return pb.JudgeResponse(
            round_id=request.round_id,
            judge_node_id=self._service.identity.node_id,
            verdicts=[convert.verdict_to_pb(v) for v in judged.verdicts],
            signature=judged.signature,
        )

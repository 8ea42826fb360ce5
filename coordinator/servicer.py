"""The thin gRPC layer of the coordinator: convert, delegate, map errors to status codes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator

from typing import Any

import grpc

from swarmrank.protos import signing
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc
from swarmrank.rpc.status import abort_with

from . import convert
from .access import check_node_identity
from .domain import RoundEvent, RoundResult
from .errors import CoordinatorError, InvalidAsk, QuorumNotReached, RateLimited, RegistrationRefused, UnknownRound
from .joining import Application, Gatekeeper
from .registry import Registry
from .rounds import RoundRunner

log = logging.getLogger("swarmrank.coordinator")

STATUS_FOR_ERROR: dict[type[CoordinatorError], grpc.StatusCode] = {
    InvalidAsk: grpc.StatusCode.INVALID_ARGUMENT,
    UnknownRound: grpc.StatusCode.NOT_FOUND,
    RegistrationRefused: grpc.StatusCode.PERMISSION_DENIED,
    RateLimited: grpc.StatusCode.RESOURCE_EXHAUSTED,
    QuorumNotReached: grpc.StatusCode.UNAVAILABLE,
}
MAX_CLOCK_SKEW = 120.0
MAX_MODELS = 16


async def _abort(context: grpc.aio.ServicerContext[Any, Any], exc: CoordinatorError) -> None:
    await abort_with(context, exc, STATUS_FOR_ERROR)


class CoordinatorServicer(coordinator_pb2_grpc.CoordinatorServicer):
    def __init__(self, runner: RoundRunner, registry: Registry, gatekeeper: Gatekeeper) -> None:
        self._runner = runner
        self._registry = registry
        self._gatekeeper = gatekeeper

    async def Ask(self, request: cpb.AskRequest, context: grpc.aio.ServicerContext[Any, Any]) -> cpb.RoundResult:
        try:
            result = await self._runner.run(convert.ask_from_pb(request))
        except CoordinatorError as exc:
            await _abort(context, exc)
            raise
        return convert.result_to_pb(result)

    async def AskStream(self, request: cpb.AskRequest, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[cpb.RoundEvent]:
        events: asyncio.Queue[RoundEvent | BaseException] = asyncio.Queue()
        task = asyncio.create_task(self._runner.run(convert.ask_from_pb(request), events.put_nowait))

        def failed(t: asyncio.Task[RoundResult]) -> None:
            error = None if t.cancelled() else t.exception()
            if error is not None:
                events.put_nowait(error)

        task.add_done_callback(failed)
        try:
            while True:
                event = await events.get()
                if isinstance(event, CoordinatorError):
                    await _abort(context, event)
                if isinstance(event, BaseException):
                    raise event
                yield convert.event_to_pb(event)
                if isinstance(event, RoundResult):
                    return
        finally:
            if not task.done():  # the client went away: stop the round's outstanding calls
                task.cancel()
                with contextlib.suppress(BaseException):
                    await task

    async def Challenge(self, request: cpb.ChallengeRequest, context: grpc.aio.ServicerContext[Any, Any]) -> cpb.ChallengeResponse:
        try:
            nonce, expires = self._gatekeeper.challenges.issue(request.public_key, context.peer() or "")
        except CoordinatorError as exc:
            await _abort(context, exc)
            raise
        return cpb.ChallengeResponse(nonce=nonce, expires_unix=expires)

    async def Register(self, request: cpb.RegisterRequest, context: grpc.aio.ServicerContext[Any, Any]) -> cpb.RegisterResponse:
        try:
            if not 1 <= len(request.models) <= MAX_MODELS:
                raise RegistrationRefused(f"a node advertises 1..{MAX_MODELS} models")
            if len(request.public_key) == signing.PUBLIC_KEY_BYTES and \
                    (problem := check_node_identity(signing.node_id_for(request.public_key))):
                raise RegistrationRefused(problem)
            node = await self._gatekeeper.register(Application(
                public_key=request.public_key, nonce=request.nonce, address=request.address,
                models=tuple(convert.model_info_from_pb(m) for m in request.models),
                max_concurrency=request.max_concurrency, signature=request.signature, peer=context.peer() or "",
            ))
        except CoordinatorError as exc:
            await _abort(context, exc)
            raise
        log.info("node %s registered at %s serving %s (%s, reputation %.3f)",
                 node.node_id, node.address, node.model_name, node.trust.status, node.reputation)
        return cpb.RegisterResponse(
            node_id=node.node_id, heartbeat_interval_seconds=self._registry.heartbeat_interval, reputation=node.reputation
        )

    async def Heartbeat(self, request: cpb.HeartbeatRequest, context: grpc.aio.ServicerContext[Any, Any]) -> cpb.HeartbeatResponse:
        if problem := check_node_identity(request.node_id):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, problem)
        node = self._registry.get(request.node_id)
        if node is None or not node.trust.eligible:  # unknown or quarantined: it must (re-)qualify
            return cpb.HeartbeatResponse(known=False)
        if abs(time.time() - request.timestamp_unix) > MAX_CLOCK_SKEW or not signing.verify(
            node.public_key, request.signature, signing.heartbeat_bytes(request.node_id, request.timestamp_unix)
        ):
            await context.abort(grpc.StatusCode.PERMISSION_DENIED, "heartbeat signature or timestamp does not verify")
        return cpb.HeartbeatResponse(known=self._registry.heartbeat(request.node_id))

    async def ListNodes(self, request: cpb.ListNodesRequest, context: grpc.aio.ServicerContext[Any, Any]) -> cpb.ListNodesResponse:
        return cpb.ListNodesResponse(nodes=[convert.node_status_to_pb(n, self._registry.state(n)) for n in self._registry.all()])

    async def GetRound(self, request: cpb.GetRoundRequest, context: grpc.aio.ServicerContext[Any, Any]) -> cpb.RoundResult:
        try:
            return convert.result_to_pb(self._runner.get(request.round_id))
        except CoordinatorError as exc:
            await _abort(context, exc)
            raise




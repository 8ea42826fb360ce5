"""Sync and async clients of a swarmrank coordinator.

Every call has a deadline (``timeout``). UNAVAILABLE (coordinator restarting, not enough healthy
nodes yet) is retried with exponential backoff; other errors are raised at once as typed
``SwarmrankError`` subclasses. A stream is retried only before its first event.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import grpc

from swarmrank.protos.types import ROLE_NAMES
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc

from .types import (
    Answer, Candidate, CandidateReceived, Completed, DeadlineExceeded, Dispatched, Event, InvalidRequest,
    JudgingProgress, Judgment, NodeFailure, NodeInfo, NotFound, PermissionDenied, RateLimited, SwarmrankError, Unauthenticated,
    Unavailable,
)
from . import connection

DEFAULT_ADDRESS = "127.0.0.1:50051"
DEFAULT_TIMEOUT = 600.0
T = TypeVar("T")

_ERRORS: dict[grpc.StatusCode, type[SwarmrankError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidRequest,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: DeadlineExceeded,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.RESOURCE_EXHAUSTED: RateLimited,
}
_PREFERENCE = {1: "A", 2: "B", 3: "tie"}


def _error(exc: grpc.RpcError) -> SwarmrankError:
    code = exc.code()
    return _ERRORS.get(code, SwarmrankError)(exc.details() or code.name, code.name)


class _Retry:
    """One call's retry budget: its deadline, and what to do after each failed attempt."""

    def __init__(self, retries: int, backoff: float, timeout: float) -> None:
        self._retries, self._backoff = retries, backoff
        self._deadline = time.monotonic() + timeout
        self._attempt = 0

    def remaining(self) -> float:
        """The timeout of the next attempt: whatever is left of the deadline."""
        return max(0.001, self._deadline - time.monotonic())

    def delay(self, exc: grpc.RpcError, *, started: bool = False) -> float:
        """Seconds to wait before the next attempt; raises the typed error when there is none
        (not UNAVAILABLE, out of retries or of time, or a stream that already yielded events)."""
        error = _error(exc)
        delay = self._backoff * 2.0**self._attempt
        if started or not isinstance(error, Unavailable) or self._attempt >= self._retries \
                or time.monotonic() + delay >= self._deadline:
            raise error from None
        self._attempt += 1
        return delay


def answer_from_pb(r: cpb.RoundResult) -> Answer:
    return Answer(
        round_id=r.round_id,
        prompt=r.prompt,
        text=r.answer,
        winner_node_id=r.winner_node_id,
        confidence=r.confidence,
        candidates=tuple(
            Candidate(c.candidate_id, c.node_id, c.model, c.text, c.strength, c.rank, c.win_probability,
                      c.standard_error, c.completion_tokens, c.elapsed_seconds)
            for c in r.candidates
        ),
        judgments=tuple(
            Judgment(j.judge_node_id, j.candidate_a_id, j.candidate_b_id, _PREFERENCE.get(j.preference, "?"),
                     j.confidence, j.rationale, j.weight)
            for j in r.judgments
        ),
        failures=tuple(NodeFailure(f.node_id, f.stage, f.reason) for f in r.failures),
        elapsed_seconds=r.elapsed_seconds,
    )


def event_from_pb(e: cpb.RoundEvent) -> Event:
    kind = e.WhichOneof("event")
    if kind == "dispatched":
        return Dispatched(e.dispatched.round_id, tuple(e.dispatched.node_ids))
    if kind == "candidate":
        return CandidateReceived(e.candidate.node_id, e.candidate.model, e.candidate.completion_tokens)
    if kind == "failure":
        return NodeFailure(e.failure.node_id, e.failure.stage, e.failure.reason)
    if kind == "judging":
        return JudgingProgress(e.judging.done, e.judging.total)
    return Completed(answer_from_pb(e.result))


def _ask_request(prompt: str, k: int | None, max_tokens: int | None, temperature: float | None, system: str | None) -> cpb.AskRequest:
    return cpb.AskRequest(prompt=prompt, k=k or 0, max_tokens=max_tokens or 0, temperature=temperature or 0.0, system=system or "")


_ROLE = {int(role): name for name, role in ROLE_NAMES.items()}


def _nodes_from_pb(reply: cpb.ListNodesResponse) -> list[NodeInfo]:
    return [NodeInfo(n.node_id, n.address, tuple(m.name for m in n.models), n.state, n.reputation, n.rounds, n.last_seen_unix,
                     _ROLE.get(n.models[0].role if n.models else 0, "both"))
            for n in reply.nodes]


class _Settings:
    def __init__(self, address: str, timeout: float, retries: int, backoff: float, api_key: str | None) -> None:
        self.address = address
        self.timeout = timeout
        self.retries = retries
        self.backoff = backoff
        self._metadata = connection.metadata(connection.api_key_or_env(api_key))

    def _retry(self, timeout: float | None) -> _Retry:
        return _Retry(self.retries, self.backoff, timeout or self.timeout)


class Client(_Settings):
    """Blocking client. Use as a context manager or call ``close()``."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, timeout: float = DEFAULT_TIMEOUT, retries: int = 3, backoff: float = 0.5,
                 api_key: str | None = None, ca: str | Path | bytes | None = None, tls: bool | None = None) -> None:
        """``api_key`` (default: $SWARMRANK_API_KEY) is sent as ``authorization: Bearer``; ``ca`` (a PEM
        file such as a swarm's ca.crt) or ``tls=True`` (the system's CAs) make the channel TLS."""
        super().__init__(address, timeout, retries, backoff, api_key)
        self._channel = connection.sync_channel(address, connection.credentials(ca, tls))
        self._stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, fn: Callable[[float], T], timeout: float | None) -> T:
        retry = self._retry(timeout)
        while True:
            try:
                return fn(retry.remaining())
            except grpc.RpcError as exc:
                time.sleep(retry.delay(exc))

    def ask(self, prompt: str, *, k: int | None = None, max_tokens: int | None = None, temperature: float | None = None,
            system: str | None = None, timeout: float | None = None) -> Answer:
        """Run one consensus round and return the answer with its ranking."""
        request = _ask_request(prompt, k, max_tokens, temperature, system)
        return answer_from_pb(self._call(lambda t: self._stub.Ask(request, metadata=self._metadata, timeout=t), timeout))

    def stream(self, prompt: str, *, k: int | None = None, max_tokens: int | None = None, temperature: float | None = None,
               system: str | None = None, timeout: float | None = None) -> Iterator[Event]:
        """Run one round, yielding its events; the last one is ``Completed``."""
        request = _ask_request(prompt, k, max_tokens, temperature, system)
        retry = self._retry(timeout)
        while True:
            started = False
            try:
                for event in self._stub.AskStream(request, metadata=self._metadata, timeout=retry.remaining()):
                    started = True
                    yield event_from_pb(event)
                return
            except grpc.RpcError as exc:
                time.sleep(retry.delay(exc, started=started))

    def nodes(self, *, timeout: float = 10.0) -> list[NodeInfo]:
        return _nodes_from_pb(self._call(lambda t: self._stub.ListNodes(cpb.ListNodesRequest(), metadata=self._metadata, timeout=t), timeout))

    def round(self, round_id: str, *, timeout: float = 10.0) -> Answer:
        return answer_from_pb(self._call(lambda t: self._stub.GetRound(cpb.GetRoundRequest(round_id=round_id), metadata=self._metadata, timeout=t), timeout))


class AsyncClient(_Settings):
    """asyncio client with the same methods as ``Client``."""

    def __init__(self, address: str = DEFAULT_ADDRESS, *, timeout: float = DEFAULT_TIMEOUT, retries: int = 3, backoff: float = 0.5,
                 api_key: str | None = None, ca: str | Path | bytes | None = None, tls: bool | None = None) -> None:
        """``api_key`` (default: $SWARMRANK_API_KEY) is sent as ``authorization: Bearer``; ``ca`` (a PEM
        file such as a swarm's ca.crt) or ``tls=True`` (the system's CAs) make the channel TLS."""
        super().__init__(address, timeout, retries, backoff, api_key)
        self._channel = connection.async_channel(address, connection.credentials(ca, tls))
        self._stub = coordinator_pb2_grpc.CoordinatorStub(self._channel)

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        await self._channel.close()

    async def _call(self, fn: Callable[[float], Awaitable[T]], timeout: float | None) -> T:
        retry = self._retry(timeout)
        while True:
            try:
                return await fn(retry.remaining())
            except grpc.aio.AioRpcError as exc:
                await asyncio.sleep(retry.delay(exc))

    async def ask(self, prompt: str, *, k: int | None = None, max_tokens: int | None = None, temperature: float | None = None,
                  system: str | None = None, timeout: float | None = None) -> Answer:
        request = _ask_request(prompt, k, max_tokens, temperature, system)
        return answer_from_pb(await self._call(lambda t: self._stub.Ask(request, metadata=self._metadata, timeout=t), timeout))

    async def stream(self, prompt: str, *, k: int | None = None, max_tokens: int | None = None, temperature: float | None = None,
                     system: str | None = None, timeout: float | None = None) -> AsyncIterator[Event]:
        request = _ask_request(prompt, k, max_tokens, temperature, system)
        retry = self._retry(timeout)
        while True:
            started = False
            try:
                async for event in self._stub.AskStream(request, metadata=self._metadata, timeout=retry.remaining()):
                    started = True
                    yield event_from_pb(event)
                return
            except grpc.aio.AioRpcError as exc:
                await asyncio.sleep(retry.delay(exc, started=started))

    async def nodes(self, *, timeout: float = 10.0) -> list[NodeInfo]:
        return _nodes_from_pb(await self._call(lambda t: self._stub.ListNodes(cpb.ListNodesRequest(), metadata=self._metadata, timeout=t), timeout))

    async def round(self, round_id: str, *, timeout: float = 10.0) -> Answer:
        return answer_from_pb(await self._call(lambda t: self._stub.GetRound(cpb.GetRoundRequest(round_id=round_id), metadata=self._metadata, timeout=t),
                                               timeout))

"""How the coordinator talks to nodes: a small protocol and its gRPC implementation.

Channels are cached per address. Every call carries a deadline. Errors surface as ``NodeCallError``
with the gRPC status name, so the round logic never sees transport types.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import grpc

from swarmrank.protos import limits
from swarmrank.protos.types import Preference
from swarmrank.protos.v1 import node_pb2 as pb
from swarmrank.protos.v1 import node_pb2_grpc
from swarmrank.rpc.pki import NODE_NAME
from swarmrank.rpc.tls import name_override


class NodeCallError(Exception):
    def __init__(self, code: str, details: str) -> None:
        super().__init__(f"{code}: {details}")
        self.code = code
        self.details = details


@dataclass(frozen=True)
class GenerateOrder:
    round_id: str
    nonce: bytes
    prompt: str
    system: str
    max_tokens: int
    temperature: float
    seed: int


@dataclass(frozen=True)
class ReceivedCandidate:
    round_id: str
    nonce: bytes
    node_id: str
    model: str
    text: str
    completion_tokens: int
    elapsed_seconds: float
    signature: bytes


@dataclass(frozen=True)
class ComparisonOrder:
    comparison_id: str
    answer_a: str
    answer_b: str
    nonce_a: bytes = b""
    nonce_b: bytes = b""


@dataclass(frozen=True)
class ReceivedVerdict:
    comparison_id: str
    preference: Preference | None  # None: the judge sent a value outside the enum
    confidence: float
    rationale: str


@dataclass(frozen=True)
class JudgeReply:
    judge_node_id: str
    verdicts: tuple[ReceivedVerdict, ...]
    signature: bytes  # one for the whole reply: over the Merkle root of its verdicts (signing.verdicts_bytes)


class NodeClient(Protocol):
    async def generate(
        self, address: str, order: GenerateOrder, timeout: float, on_token: Callable[[str], None] | None = None
    ) -> ReceivedCandidate: ...

    async def judge(
        self, address: str, round_id: str, nonce: bytes, question: str, comparisons: Sequence[ComparisonOrder], timeout: float
    ) -> JudgeReply: ...

    async def close(self) -> None: ...


def _preference(value: int) -> Preference | None:
    try:
        return Preference(value)
    except ValueError:
        return None


class GrpcNodeClient:
    """``credentials`` (the coordinator's certificate and the swarm CA) make every channel mTLS; a
    node's certificate is checked for the name the CA gives only to nodes, whatever address it has."""

    def __init__(self, credentials: grpc.ChannelCredentials | None = None) -> None:
        self._channels: dict[str, grpc.aio.Channel] = {}
        self._stubs: dict[str, node_pb2_grpc.NodeAsyncStub] = {}  # one per channel: a stub builds its callables
        self._credentials = credentials

    def _stub(self, address: str) -> node_pb2_grpc.NodeAsyncStub:
        stub = self._stubs.get(address)
        if stub is not None:
            return stub
        channel = self._channels.get(address)
        if channel is None:
            if self._credentials is None:
                channel = grpc.aio.insecure_channel(address, options=limits.GRPC_OPTIONS)
            else:
                channel = grpc.aio.secure_channel(address, self._credentials,
                                                  options=[*limits.GRPC_OPTIONS, *name_override(NODE_NAME)])
            self._channels[address] = channel
        stub = self._stubs[address] = node_pb2_grpc.NodeStub(channel)
        return stub

    async def generate(
        self, address: str, order: GenerateOrder, timeout: float, on_token: Callable[[str], None] | None = None
    ) -> ReceivedCandidate:
        request = pb.GenerateRequest(
            round_id=order.round_id, nonce=order.nonce, prompt=order.prompt, system=order.system,
            max_tokens=order.max_tokens, temperature=order.temperature, seed=order.seed,
        )
        try:
            async for event in self._stub(address).Generate(request, timeout=timeout):
                if event.HasField("candidate"):
                    c = event.candidate
                    return ReceivedCandidate(
                        c.round_id, c.nonce, c.node_id, c.model, c.text, c.completion_tokens, c.elapsed_seconds, c.signature
                    )
                if on_token is not None:
                    on_token(event.token.text)
        except grpc.aio.AioRpcError as exc:
            raise NodeCallError(exc.code().name, exc.details() or "") from None
        raise NodeCallError("PROTOCOL", "stream ended without a candidate")

    async def judge(
        self, address: str, round_id: str, nonce: bytes, question: str, comparisons: Sequence[ComparisonOrder], timeout: float
    ) -> JudgeReply:
        request = pb.JudgeRequest(
            round_id=round_id, nonce=nonce, question=question,
            comparisons=[pb.Comparison(comparison_id=c.comparison_id, answer_a=c.answer_a, answer_b=c.answer_b,
                                       nonce_a=c.nonce_a, nonce_b=c.nonce_b) for c in comparisons],
        )
        try:
            reply = await self._stub(address).Judge(request, timeout=timeout)
        except grpc.aio.AioRpcError as exc:
            raise NodeCallError(exc.code().name, exc.details() or "") from None
        return JudgeReply(
            reply.judge_node_id,
            tuple(
                ReceivedVerdict(v.comparison_id, _preference(v.preference), v.confidence, v.rationale)
                for v in reply.verdicts
            ),
            reply.signature,
        )

    async def close(self) -> None:
        for channel in self._channels.values():
            await channel.close()
        self._channels.clear()
        self._stubs.clear()

"""A fake ``NodeClient``: nodes that answer and judge in memory, with real keys and real signatures.

The coordinator's round and admission logic can run against it without gRPC: every candidate and
verdict is signed exactly as a real node signs it, and each node can be told to misbehave (fail a
call with a status, forge signatures, answer for a comparison it was not asked).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from swarmrank.coordinator import reputation
from swarmrank.coordinator.domain import NodeRecord
from swarmrank.coordinator.node_client import (
    ComparisonOrder, GenerateOrder, JudgeReply, NodeCallError, ReceivedCandidate, ReceivedVerdict,
)
from swarmrank.coordinator.registry import Registry
from swarmrank.coordinator.trust import Trust
from swarmrank.protos import merkle, signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.types import ModelInfo, Preference, Role

Prefers = Callable[[str, str, str], Preference]  # (question, answer A, answer B) -> verdict


def prefers_containing(word: str) -> Prefers:
    """A judge that prefers the answer mentioning ``word`` (a tie when both or neither do)."""
    def judge(question: str, a: str, b: str) -> Preference:
        in_a, in_b = word in a, word in b
        return Preference.TIE if in_a == in_b else Preference.A if in_a else Preference.B
    return judge


@dataclass
class FakeNode:
    address: str
    answer: str
    prefers: Prefers = field(default_factory=lambda: prefers_containing("Paris"))
    role: Role = Role.GENERATE_AND_JUDGE
    fail_generate: str = ""   # a gRPC status name: the Generate call fails with it
    fail_judge: str = ""
    forge: bool = False       # sign with a key that is not the node's
    extra_verdict: bool = False  # also send a verdict for a comparison it was not asked
    hang: bool = False        # never answer (until the caller's deadline)
    identity: Identity = field(default_factory=Identity.generate)

    @property
    def node_id(self) -> str:
        return self.identity.node_id

    def record(self, now: float) -> NodeRecord:
        return NodeRecord(self.node_id, self.identity.public_key, self.address,
                          (ModelInfo(name=f"fake-{self.address}", role=self.role),), 4, now, now,
                          Trust(0.0, 0.0, "refused", now, 0))

    def _sign(self, payload: bytes) -> bytes:
        return (Identity.generate() if self.forge else self.identity).sign(payload)


class FakeNodeClient:
    """``NodeClient`` over ``FakeNode``s, keyed by address; ``calls`` records (method, address)."""

    def __init__(self, nodes: Sequence[FakeNode]) -> None:
        self.nodes = {n.address: n for n in nodes}
        self.calls: list[tuple[str, str]] = []

    def _node(self, address: str) -> FakeNode:
        node = self.nodes.get(address)
        if node is None:
            raise NodeCallError("UNAVAILABLE", f"nothing listens on {address}")
        return node

    async def generate(self, address: str, order: GenerateOrder, timeout: float,
                       on_token: Callable[[str], None] | None = None) -> ReceivedCandidate:
        self.calls.append(("generate", address))
        node = self._node(address)
        if node.hang:
            await asyncio.Event().wait()
        if node.fail_generate:
            raise NodeCallError(node.fail_generate, "told to fail")
        payload = signing.candidate_bytes(order.round_id, order.nonce, node.node_id, "fake", node.answer)
        return ReceivedCandidate(order.round_id, order.nonce, node.node_id, "fake", node.answer, len(node.answer.split()),
                                 0.01, node._sign(payload))

    async def judge(self, address: str, round_id: str, nonce: bytes, question: str,
                    comparisons: Sequence[ComparisonOrder], timeout: float) -> JudgeReply:
        self.calls.append(("judge", address))
        node = self._node(address)
        if node.hang:
            await asyncio.Event().wait()
        if node.fail_judge:
            raise NodeCallError(node.fail_judge, "told to fail")
        asked = list(comparisons)
        if node.extra_verdict:
            asked.append(ComparisonOrder("not-asked", "x", "y"))
        verdicts, leaves = [], []
        for c in asked:
            preference = node.prefers(question, c.answer_a, c.answer_b)
            leaves.append(signing.verdict_leaf(round_id, nonce, node.node_id, c.comparison_id, signing.sha256(c.answer_a), signing.sha256(c.answer_b),
                                               int(preference)))
            verdicts.append(ReceivedVerdict(c.comparison_id, preference, 0.9, ""))
        root = merkle.root(leaves)
        return JudgeReply(node.node_id, tuple(verdicts),
                          node._sign(signing.verdicts_bytes(round_id, nonce, node.node_id, root, len(leaves))))

    async def close(self) -> None:
        pass


async def admit(registry: Registry, nodes: Sequence[FakeNode]) -> None:
    """Admit ``nodes`` straight into ``registry`` (on probation), as a passed calibration would."""
    now = registry.clock()
    records = [n.record(now) for n in nodes]
    await registry.record([reputation.Event("admit", r.node_id, now, "calibration", 1.0) for r in records],
                          new_nodes=records)

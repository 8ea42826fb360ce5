"""A node's service at shutdown: a model call that does not return in time is abandoned (the model is
left to its thread), one that returns lets the model be freed. No network."""

from __future__ import annotations

import asyncio
import os
import threading
from concurrent.futures import Future

from helpers import BackgroundLoop, GatedBackend
from swarmrank.node.backends.base import PairVerdict
from swarmrank.node.backends.instant import InstantBackend
from swarmrank.node.service import ComparisonItem, JudgeCall, NodeService, SignedVerdicts
from swarmrank.protos.signing import Identity


class StuckJudge(GatedBackend):
    """Judges once ``gate`` opens; says when a call is inside the model and whether it was closed."""

    def __post_init__(self) -> None:
        super().__post_init__()
        self.judging = threading.Event()
        self.closed = False

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        self.judging.set()
        return super().judge(question, answer_a, answer_b)

    def close(self) -> None:
        self.closed = True
        super().close()


def _judge_in_model(bg: BackgroundLoop) -> tuple[NodeService, StuckJudge, threading.Event, Future[SignedVerdicts]]:
    gate = threading.Event()
    backend = StuckJudge(InstantBackend(name="instant"), gate)
    service = NodeService(Identity.generate(), backend)
    call = JudgeCall("r1", os.urandom(16), "", "q?", (ComparisonItem("c1", "one", "two"),))
    pending = asyncio.run_coroutine_threadsafe(service.judge(call), bg.loop)
    assert backend.judging.wait(60)
    return service, backend, gate, pending


def test_a_model_call_that_does_not_return_is_abandoned(bg: BackgroundLoop) -> None:
    service, backend, gate, pending = _judge_in_model(bg)
    try:
        assert service.close(timeout=0.05) is False
        assert not backend.closed  # the model still belongs to the thread inside it
    finally:
        gate.set()
        pending.result(60)


def test_a_model_call_that_returns_in_time_lets_the_model_be_freed(bg: BackgroundLoop) -> None:
    service, backend, gate, pending = _judge_in_model(bg)
    gate.set()
    assert service.close(timeout=60) is True and backend.closed
    assert len(pending.result(60).verdicts) == 1

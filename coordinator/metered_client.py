"""A ``NodeClient`` decorator that times every Generate and Judge call and counts tokens, so the
round logic stays free of metrics code."""

from __future__ import annotations

import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from .metrics import CoordinatorMetrics
from .node_client import ComparisonOrder, GenerateOrder, JudgeReply, NodeCallError, NodeClient, ReceivedCandidate


class MeteredNodeClient:
    def __init__(self, inner: NodeClient, metrics: CoordinatorMetrics) -> None:
        self._inner = inner
        self._metrics = metrics
        self.judge_calls: Counter[str] = Counter()  # per round id; the runner pops its round's count
        # Label children looked up once: a round makes a dozen calls, and labels() costs microseconds
        # each time. Bounded, since model names come from the nodes.
        self._children: dict[tuple[object, ...], Any] = {}

    def _child(self, metric: Any, *labels: str) -> Any:
        key: tuple[object, ...] = (id(metric), *labels)
        child = self._children.get(key)
        if child is None:
            if len(self._children) >= 4096:
                self._children.clear()
            child = self._children[key] = metric.labels(*labels)
        return child

    @contextlib.contextmanager
    def _timed(self, call: str) -> Iterator[None]:
        """Count the call by its outcome (OK, a gRPC status name or TIMEOUT) and time it."""
        started = time.perf_counter()
        code = "OK"
        try:
            yield
        except NodeCallError as exc:
            code = exc.code
            raise
        except TimeoutError:
            code = "TIMEOUT"
            raise
        finally:
            self._child(self._metrics.node_calls, call, code).inc()
            self._child(self._metrics.node_call_seconds, call).observe(time.perf_counter() - started)

    async def generate(
        self, address: str, order: GenerateOrder, timeout: float, on_token: Callable[[str], None] | None = None
    ) -> ReceivedCandidate:
        with self._timed("generate"):
            got = await self._inner.generate(address, order, timeout, on_token)
        model = got.model[:64] or "unknown"
        self._child(self._metrics.tokens, model).inc(max(0, got.completion_tokens))
        if got.elapsed_seconds > 0 and got.completion_tokens > 0:
            self._child(self._metrics.tokens_per_second, model).observe(got.completion_tokens / got.elapsed_seconds)
        return got

    async def judge(
        self, address: str, round_id: str, nonce: bytes, question: str, comparisons: Sequence[ComparisonOrder], timeout: float
    ) -> JudgeReply:
        self.judge_calls[round_id] += 1
        with self._timed("judge"):
            return await self._inner.judge(address, round_id, nonce, question, comparisons, timeout)

    async def close(self) -> None:
        await self._inner.close()

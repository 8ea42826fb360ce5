"""The node's Prometheus metrics (one ``CollectorRegistry`` per daemon) and ``MeteredNodeService``,
a ``NodeService`` that counts what its calls do without changing them."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from .errors import NodeError, Overloaded
from .service import GenerateCall, JudgeCall, NodeService, SignedCandidate, SignedVerdicts

SECONDS_BUCKETS = (0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
RATE_BUCKETS = (1, 5, 10, 25, 50, 100, 200, 500, 1000, 5000)


class NodeMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("swarmrank_node_requests_total", "Generate and Judge calls served, by outcome",
                                ["rpc", "outcome"], registry=r)
        self.seconds = Histogram("swarmrank_node_request_seconds", "Time to serve a call", ["rpc"],
                                 buckets=SECONDS_BUCKETS, registry=r)
        self.rejections = Counter("swarmrank_node_rejections_total", "Calls refused at once because the queue was full",
                                  ["rpc"], registry=r)
        self.tokens = Counter("swarmrank_generated_tokens_total", "Completion tokens generated, by model", ["model"],
                              registry=r)
        self.tokens_per_second = Histogram("swarmrank_generation_tokens_per_second", "Generation speed, by model",
                                           ["model"], buckets=RATE_BUCKETS, registry=r)
        self.comparisons = Counter("swarmrank_node_comparisons_total", "Pairs judged (signed verdicts)", registry=r)


class _Queue(Collector):
    def __init__(self, service: NodeService) -> None:
        self._service = service

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        admission = self._service.admission
        running = GaugeMetricFamily("swarmrank_node_running", "Model calls running now")
        running.add_metric([], admission.running)
        queued = GaugeMetricFamily("swarmrank_node_queue_depth", "Calls waiting for a model slot")
        queued.add_metric([], admission.in_flight - admission.running)
        yield running
        yield queued


def _outcome(exc: BaseException) -> str:
    return type(exc).__name__ if isinstance(exc, NodeError) else "cancelled" if not isinstance(exc, Exception) else "error"


class MeteredNodeService(NodeService):
    def __init__(self, *args: object, metrics: NodeMetrics, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.metrics = metrics
        metrics.registry.register(_Queue(self))

    @contextlib.contextmanager
    def _served(self, rpc: str) -> Iterator[None]:
        """Count the call by its outcome (and a queue rejection apart) and time it."""
        m, started, outcome = self.metrics, time.perf_counter(), "ok"
        try:
            yield
        except BaseException as exc:
            outcome = _outcome(exc)
            if isinstance(exc, Overloaded):
                m.rejections.labels(rpc).inc()
            raise
        finally:
            m.requests.labels(rpc, outcome).inc()
            m.seconds.labels(rpc).observe(time.perf_counter() - started)

    async def generate(self, call: GenerateCall) -> AsyncIterator[str | SignedCandidate]:
        m = self.metrics
        with self._served("generate"):
            async for item in super().generate(call):
                if isinstance(item, SignedCandidate):
                    m.tokens.labels(item.model[:64]).inc(item.completion_tokens)
                    if item.elapsed_seconds > 0 and item.completion_tokens > 0:
                        m.tokens_per_second.labels(item.model[:64]).observe(item.completion_tokens / item.elapsed_seconds)
                yield item

    async def judge(self, call: JudgeCall) -> SignedVerdicts:
        with self._served("judge"):
            judged = await super().judge(call)
            self.metrics.comparisons.inc(len(judged.verdicts))
            return judged

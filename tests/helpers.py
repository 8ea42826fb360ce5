"""Test helpers: run real daemons in background threads, build a tiny real ONNX model."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any
from pathlib import Path

import numpy as np

from swarmrank.node.backends.base import Backend, Completion, GenerationParams, PairVerdict
from swarmrank.protos.types import ModelInfo, Preference

CORPUS = (
    "The capital of France is Paris.\0"
    "The capital of Italy is Rome.\0"
    "Two plus two is four.\0"
    "Water boils at one hundred degrees.\0"
) * 4


def build_bigram_onnx(path: Path, corpus: str = CORPUS) -> Path:
    """A real (if tiny) byte-level language model: a bigram table trained by counting ``corpus``,
    exported as an ONNX graph (Gather of log-probabilities) that onnxruntime runs."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    counts = np.ones((256, 256), dtype=np.float64) * 0.01
    data = corpus.encode()
    for a, b in zip(data, data[1:]):
        counts[a, b] += 1.0
    table = np.log(counts / counts.sum(axis=1, keepdims=True)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("Gather", ["table", "input_ids"], ["logits"], axis=0)],
        "bigram",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "sequence"])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["batch", "sequence", 256])],
        [numpy_helper.from_array(table, "table")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


@dataclass
class GatedBackend:
    """Wraps a real backend; each token waits for ``gate`` so a test controls timing exactly."""

    inner: Backend
    gate: threading.Event
    max_concurrency: int = 1
    started: threading.Event | None = None
    stopped_early: threading.Event | None = None

    def __post_init__(self) -> None:
        self.info = self.inner.info
        self.started = threading.Event()
        self.stopped_early = threading.Event()

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        assert self.started is not None and self.stopped_early is not None
        self.started.set()
        for item in self.inner.stream(params, should_stop):
            while not self.gate.wait(0.05):
                if should_stop():
                    self.stopped_early.set()
                    yield Completion("", 0, 0, "cancelled")
                    return
            yield item

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        self.gate.wait(30)
        return self.inner.judge(question, answer_a, answer_b)

    def close(self) -> None:
        self.inner.close()


class BackgroundLoop:
    """An asyncio loop in a thread, so sync tests can run async daemons and call them with sync stubs."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self._thread.start()

    def run(self, coro, timeout: float = 120.0):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def close(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


class _RunningDaemon:
    """A real daemon's ``serve`` coroutine on the background loop, until ``stop``."""

    def __init__(self, bg: BackgroundLoop, serve: Callable[[asyncio.Event], Awaitable[object]], ready: threading.Event) -> None:
        self._bg = bg
        self._stop: asyncio.Event | None = None

        async def main() -> None:
            self._stop = asyncio.Event()
            await serve(self._stop)

        self.task = asyncio.run_coroutine_threadsafe(main(), bg.loop)
        while not ready.wait(0.1):
            if self.task.done():
                self.task.result()  # raises the start-up error

    def stop(self) -> None:
        if self._stop is not None:
            self._bg.loop.call_soon_threadsafe(self._stop.set)
        self.task.result(60)


class RunningNode(_RunningDaemon):
    """A real node daemon (``serve``) on 127.0.0.1 with an ephemeral port."""

    def __init__(self, bg: BackgroundLoop, settings, backend: Backend | None = None) -> None:
        from swarmrank.node.daemon import serve

        ready = threading.Event()
        self.node_id = ""
        self.address = ""

        def on_ready(node_id: str, address: str) -> None:
            self.node_id, self.address = node_id, address
            ready.set()

        super().__init__(bg, lambda stop: serve(settings, backend=backend, on_ready=on_ready, stop=stop), ready)


class RunningCoordinator(_RunningDaemon):
    """A real coordinator daemon (``serve``) on 127.0.0.1 with an ephemeral port."""

    def __init__(self, bg: BackgroundLoop, settings, client=None) -> None:
        from swarmrank.coordinator.daemon import serve

        ready = threading.Event()
        self.address = ""
        self.http_address = ""  # host:port of the HTTP API when settings.http_listen is set

        def on_ready(address: str) -> None:
            self.address = address
            ready.set()

        def on_http_ready(address: str) -> None:
            self.http_address = address

        super().__init__(bg, lambda stop: serve(settings, client=client, on_ready=on_ready, stop=stop,
                                                on_http_ready=on_http_ready), ready)


def fake_info(name: str = "fake") -> ModelInfo:
    return ModelInfo(name=name, family="test", runtime="test")


__all__ = ["BackgroundLoop", "GatedBackend", "RunningNode", "build_bigram_onnx", "fake_info", "Preference"]


CORPORA = {
    "paris": "Paris is the capital of France.\0" * 8,
    "rome": "Rome? No: Paris. Rome is in Italy.\0" * 8,
    "lyon": "Lyon, Lille, Nice, Nantes, Toulouse.\0" * 8,
}


def wait_for(predicate: Callable[[], bool], timeout: float = 120.0, interval: float = 0.05) -> None:
    """Until ``predicate()``; ``timeout`` is an overall limit for a loaded machine, not an expected time."""
    import time

    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("condition not met in time")
        time.sleep(interval)


def coordinator_settings(tmp_path: Path, **overrides: object):
    """Settings for a test coordinator: its own database and key under ``tmp_path``, an ephemeral port.
    Tiny test models cannot pass arithmetic calibration, so the threshold defaults to 0 here: nodes
    are still calibrated (the score is recorded as evidence) but always admitted."""
    from swarmrank.coordinator.settings import CoordinatorSettings

    values: dict[str, Any] = {"listen": "127.0.0.1:0", "db": tmp_path / "c.db", "key_path": tmp_path / "coordinator.key",
              "calibration_threshold": 0.0, "spot_check_rate": 0.0, **overrides}
    return CoordinatorSettings(**values)

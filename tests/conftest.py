from __future__ import annotations

import contextlib
import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

import grpc  # noqa: E402
import hypothesis  # noqa: E402

from helpers import (  # noqa: E402
    CORPORA, BackgroundLoop, RunningCoordinator, RunningNode, build_bigram_onnx, coordinator_settings, wait_for,
)
from swarmrank.node.backends.onnx import OnnxBackend  # noqa: E402
from swarmrank.node.settings import NodeSettings  # noqa: E402
from swarmrank.protos.v1 import coordinator_pb2 as cpb  # noqa: E402
from swarmrank.protos.v1 import coordinator_pb2_grpc  # noqa: E402


# Property and fuzz tests: a few examples each in the quick loop; SWARMRANK_HYPOTHESIS=long (or
# pytest --hypothesis-profile=long) runs many.
hypothesis.settings.register_profile("quick", max_examples=15, deadline=None)
hypothesis.settings.register_profile("long", max_examples=300, deadline=None)
hypothesis.settings.load_profile(os.environ.get("SWARMRANK_HYPOTHESIS", "quick"))

pytest_plugins = ["reaper"]  # every process a test or fixture starts is killed when it fails, and at the end

TIERS = ("unit", "component", "e2e")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier (the folder it lives in), so ``pytest -m "not e2e"`` is the quick loop."""
    for item in items:
        if item.path.parent.name in TIERS:
            item.add_marker(getattr(pytest.mark, item.path.parent.name))


def _excludes_every(config: pytest.Config, marker: str) -> bool:
    """Whether ``-m`` deselects every test carrying ``marker``, whatever other markers it has."""
    from _pytest.mark.expression import Expression

    if not config.option.markexpr:
        return False
    expression = Expression.compile(config.option.markexpr)
    return not any(expression.evaluate(lambda name, /, **_: name == marker or others) for others in (False, True))


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The quick loop (``-m "not e2e"``) does not even import the e2e modules: they would be
    deselected anyway, and importing them (and what they import) costs seconds."""
    if collection_path.name == "e2e" and collection_path.parent == Path(__file__).parent and _excludes_every(config, "e2e"):
        return True
    return None


@pytest.fixture(scope="session")
def bigram_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_bigram_onnx(tmp_path_factory.mktemp("onnx") / "bigram.onnx")


@pytest.fixture()
def bg() -> Iterator[BackgroundLoop]:
    loop = BackgroundLoop()
    yield loop
    loop.close()


@functools.cache
def models_available() -> bool:
    try:
        import llama_cpp  # noqa: F401

        from swarmrank.node import catalogue

        for name in catalogue.CATALOGUE:
            catalogue.prepare(name)
    except Exception:
        return False
    return True


# Checked when a test carrying it is about to run (not at import: the quick loop never needs llama.cpp).
requires_models = pytest.mark.models


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("models") is not None and not models_available():
        pytest.skip("needs the models extra (llama-cpp-python + GGUF packages)")


@contextlib.contextmanager
def running_swarm(bg: BackgroundLoop, tmp_path: Path) -> Iterator[tuple[RunningCoordinator, list[RunningNode], Any]]:
    """A real coordinator and three real nodes (different tiny ONNX models) on 127.0.0.1."""
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path, heartbeat_interval=2.0, seed=7))  # late heartbeats under load
    nodes = []
    for name, corpus in CORPORA.items():
        model = build_bigram_onnx(tmp_path / f"{name}.onnx", corpus)
        nodes.append(RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / f"{name}.key", model=name,
                                                  coordinator=coord.address, default_max_tokens=16),
                                 OnnxBackend(model, name=name)))
    channel = grpc.insecure_channel(coord.address)
    stub = coordinator_pb2_grpc.CoordinatorStub(channel)
    wait_for(lambda: sum(n.state == "healthy" for n in stub.ListNodes(cpb.ListNodesRequest(), timeout=5).nodes) == 3)
    try:
        yield coord, nodes, stub
    finally:
        channel.close()
        for n in nodes:
            n.stop()
        coord.stop()


@pytest.fixture()
def swarm(bg, tmp_path):
    """A swarm of its own, for a test that changes it (registers nodes, stops one, ...)."""
    with running_swarm(bg, tmp_path) as s:
        yield s


@pytest.fixture(scope="module")
def module_swarm(tmp_path_factory: pytest.TempPathFactory):
    """One swarm for the tests of a module that only ask and read (starting one costs a second or more)."""
    loop = BackgroundLoop()
    try:
        with running_swarm(loop, tmp_path_factory.mktemp("swarm")) as s:
            yield s
    finally:
        loop.close()

"""The OpenAI-compatible upstream backend against a real server (llama-cpp-python's, serving SmolLM2)."""

from __future__ import annotations

import socket
from collections.abc import Iterator
import subprocess
import sys

import httpx
import pytest

from conftest import requires_models
from swarmrank.cli.waiting import wait_while_progressing, work_done
from swarmrank.node import catalogue
from swarmrank.node.backends.base import GenerationParams
from swarmrank.node.backends.openai_http import OpenAIHTTPBackend
from swarmrank.node.errors import ModelUnavailable

pytestmark = requires_models


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def upstream(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    pytest.importorskip("llama_cpp.server")
    port = free_port()
    log = (tmp_path_factory.mktemp("upstream") / "server.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "llama_cpp.server", "--model", str(catalogue.prepare("smollm2-135m")),
                             "--host", "127.0.0.1", "--port", str(port), "--n_ctx", "2048"], stdout=log, stderr=log)
    url = f"http://127.0.0.1:{port}/v1"

    def serving() -> bool:
        try:
            return httpx.get(f"{url}/models", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    # Loading the model takes what the machine needs: wait while the server keeps working.
    wait_while_progressing(serving, lambda: work_done([proc.pid]), what="the upstream server starting",
                           failed=lambda: None if proc.poll() is None else f"exited with code {proc.returncode}")
    yield url
    proc.terminate()
    proc.wait(10)
    log.close()


def test_streams_from_upstream_and_judges_with_logprobs(upstream: str) -> None:
    backend = OpenAIHTTPBackend(upstream, "smollm2", name="smollm2-upstream")
    items = list(backend.stream(GenerationParams("What is the capital of France?", max_tokens=16), lambda: False))
    pieces, completion = [str(p) for p in items[:-1]], items[-1]
    assert len(pieces) > 1 and completion.text == "".join(pieces) and completion.finish_reason in ("stop", "length")
    verdict = backend.judge("What is the capital of France?", "Paris.", "London.")
    assert verdict.rationale.startswith("P(A)=")  # scored from the upstream's logprobs, not parsed text
    assert 0 < verdict.confidence <= 1


def test_cancellation_stops_the_upstream_stream(upstream: str) -> None:
    backend = OpenAIHTTPBackend(upstream, "smollm2")
    seen = []
    items = list(backend.stream(GenerationParams("Tell a long story.", max_tokens=200), lambda: len(seen.append(1) or seen) > 3))
    assert items[-1].finish_reason == "cancelled" and items[-1].completion_tokens <= 3


def test_unreachable_upstream_is_a_clear_error() -> None:
    backend = OpenAIHTTPBackend(f"http://127.0.0.1:{free_port()}/v1", "x", timeout_seconds=2)
    with pytest.raises(ModelUnavailable, match="unreachable"):
        list(backend.stream(GenerationParams("hi"), lambda: False))

"""End-to-end: the official ``openai`` package asks a swarm of real GGUF models (llama.cpp, separate
processes on 127.0.0.1) through the coordinator's OpenAI-compatible API, streamed and not."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest

from conftest import requires_models
from swarmrank.cli.demo import REGISTER_CALLS, Child, wait_for_nodes
from swarmrank.client import Client

openai = pytest.importorskip("openai")
pytestmark = [requires_models, pytest.mark.models]
MODELS = ["smollm2-135m", "qwen2.5-coder-0.5b"]  # two chat models: the smallest swarm that reaches quorum


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    work = tmp_path_factory.mktemp("http-e2e")
    children = []
    try:
        coordinator = Child("coordinator", ["coordinator", "start", "--listen", "127.0.0.1:0", "--db", str(work / "c.db"),
                                            "--heartbeat-interval", "0.5", "--default-max-tokens", "32", "--seed", "1",
                                            "--key-path", str(work / "c.key"), "--calibration-threshold", "0",
                                            "--probation-rate", "0",  # no spot-check burst behind the tests' rounds
                                            "--http-listen", "127.0.0.1:0", "--generate-timeout", "900", "--judge-timeout", "900",
                                            "--calibration-timeout", "900"], work / "coordinator.log")
        children.append(coordinator)
        address = coordinator.wait_ready(60)
        assert coordinator.http_url.startswith("http://127.0.0.1:")
        for name in MODELS:
            children.append(Child(name, ["node", "start", "--model", name, "--listen", "127.0.0.1:0", "--coordinator",
                                         address, "--key-path", str(work / f"{name}.key"), "--n-threads", "1",
                                         "--register-timeout", str(900 * REGISTER_CALLS)],
                                  work / f"{name}.log"))
        for child in children[1:]:
            child.wait_ready(300)
        with Client(address) as client:  # admission calibrates the real models: wait while they make progress
            wait_for_nodes(client, len(MODELS), [c.proc.pid for c in children[1:]], what=f"registration (logs in {work})")
        assert sum(n["status"] == "healthy" for n in httpx.get(coordinator.http_url + "/api/nodes", timeout=60).json()) == len(MODELS)
        yield coordinator.http_url
    finally:
        for child in reversed(children):
            child.stop()


def test_openai_package_against_real_models(api: str) -> None:
    client = openai.OpenAI(base_url=api + "/v1", api_key="unused-on-loopback", max_retries=0, timeout=1800)
    assert [m.id for m in client.models.list()] == ["swarm", *sorted(MODELS)]
    reply = client.chat.completions.create(model="swarm", max_tokens=24,
                                           messages=[{"role": "user", "content": "What is the capital of France?"}])
    text = reply.choices[0].message.content
    ranking = reply.model_extra["swarm"]["ranking"]
    assert text and {r["model"] for r in ranking} == set(MODELS)
    stored = next(r for r in httpx.get(api + "/api/rounds").json() if r["round_id"] == reply.model_extra["swarm"]["round_id"])
    assert stored["answer"] == text[:2000] and stored["texts"][stored["winner"]["candidate_id"]] == text[:300]
    stream = client.chat.completions.create(model="swarm", max_tokens=24, stream=True,
                                            messages=[{"role": "user", "content": "Name a primary colour."}])
    chunks = list(stream)
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    final = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    # Two nodes leave no third node to judge their pair, so the round carries no judgments; the
    # final chunk still carries the audit field.
    swarm = final[0].model_extra["swarm"] if len(final) == 1 else {}
    assert streamed.strip() and swarm["round_id"] and "judgments" in swarm and len(swarm["ranking"]) == 2

"""The coordinator's OpenAI-compatible HTTP API, /metrics and dashboard API, against a real
coordinator and real replay nodes on 127.0.0.1, with the official ``openai`` package as the client."""

from __future__ import annotations

import json
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import httpx
import pytest

openai = pytest.importorskip("openai")

from helpers import BackgroundLoop, RunningCoordinator, RunningNode, coordinator_settings, wait_for  # noqa: E402
from swarmrank.node.backends.replay import ReplayBackend  # noqa: E402
from swarmrank.node.settings import NodeSettings  # noqa: E402
from swarmrank.protos.v1 import coordinator_pb2 as cpb  # noqa: E402
from swarmrank.protos.v1 import coordinator_pb2_grpc  # noqa: E402

QUESTION = "What is the capital of France?"
# Two nodes serve "alpha" (so a round restricted to alpha reaches quorum), one each beta and gamma.
NODES = [("alpha", "Paris"), ("alpha", "Paris"), ("beta", "Paris"), ("gamma", "Lyon")]


class Swarm:
    def __init__(self, coord: RunningCoordinator, nodes: list[RunningNode], metrics_address: str) -> None:
        self.coord, self.nodes = coord, nodes
        self.base = f"http://{coord.http_address}"
        self.metrics_address = metrics_address

    def client(self, **kwargs: Any) -> Any:
        return openai.OpenAI(base_url=self.base + "/v1", api_key="unused-on-loopback", max_retries=0, timeout=60, **kwargs)

    def metric(self, text: str, name: str, **labels: str) -> float:
        """The value of one sample in a Prometheus text exposition (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    total += sample.value
        return total


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    tmp = tmp_path_factory.mktemp("http")
    bg = BackgroundLoop()
    metrics_port = free_port()
    coord = RunningCoordinator(bg, coordinator_settings(tmp, heartbeat_interval=0.5, seed=3, http_listen="127.0.0.1:0",
                                                        metrics_listen=f"127.0.0.1:{metrics_port}", http_max_body_bytes=65536))
    nodes = []
    for i, (model, answer) in enumerate(NODES):
        backend = ReplayBackend({QUESTION: answer}, name=model, template="The answer is {answer}.")
        nodes.append(RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp / f"n{i}.key", model=model,
                                                  coordinator=coord.address, max_queue=32), backend))
    s = Swarm(coord, nodes, f"127.0.0.1:{metrics_port}")
    wait_for(lambda: len(httpx.get(s.base + "/api/nodes").json()) == len(NODES)
             and all(n["status"] == "healthy" for n in httpx.get(s.base + "/api/nodes").json()), timeout=120)
    yield s
    for n in nodes:
        n.stop()
    coord.stop()
    bg.close()


def test_models_list_shows_the_swarm_and_its_members(swarm: Swarm) -> None:
    ids = [m.id for m in swarm.client().models.list()]
    assert ids == ["swarm", "alpha", "beta", "gamma"]
    assert swarm.client().models.retrieve("beta").id == "beta"


def test_non_streamed_answer_with_swarm_extension(swarm: Swarm) -> None:
    reply = swarm.client().chat.completions.create(model="swarm", messages=[{"role": "user", "content": QUESTION}])
    assert reply.object == "chat.completion" and reply.model == "swarm"
    assert reply.choices[0].message.role == "assistant"
    assert reply.choices[0].message.content == "The answer is Paris."  # three of four nodes say so, judges agree
    ext = reply.model_extra["swarm"]
    assert reply.id == f"chatcmpl-{ext['round_id']}"
    assert len(ext["ranking"]) == 4 and ext["ranking"][0]["rank"] == 1
    assert {r["model"] for r in ext["ranking"]} == {"alpha", "beta", "gamma"}
    assert ext["judgments"] and set(ext["judges"]) <= {n.node_id for n in swarm.nodes}
    assert 0.5 <= ext["confidence"] <= 1.0
    # The round id audits over gRPC: the same round is stored.
    with grpc.insecure_channel(swarm.coord.address) as channel:
        stored = coordinator_pb2_grpc.CoordinatorStub(channel).GetRound(cpb.GetRoundRequest(round_id=ext["round_id"]), timeout=10)
    assert stored.answer == reply.choices[0].message.content


def test_streamed_answer_in_openai_chunks(swarm: Swarm) -> None:
    stream = swarm.client().chat.completions.create(
        model="swarm", messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": QUESTION}],
        stream=True, stream_options={"include_usage": True})
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "The answer is Paris."
    assert chunks[0].choices[0].delta.role == "assistant"
    finals = [c for c in chunks if c.choices and c.choices[0].finish_reason == "stop"]
    assert len(finals) == 1 and finals[0].model_extra["swarm"]["ranking"]
    progress = [c.model_extra["swarm"]["event"] for c in chunks if not c.choices and c.model_extra.get("swarm")]
    assert progress[0] == "dispatched" and "candidate" in progress and "judging" in progress
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
    assert len({c.id for c in chunks}) == 1


def test_member_model_round_is_restricted_to_its_nodes(swarm: Swarm) -> None:
    reply = swarm.client().chat.completions.create(model="alpha", messages=[{"role": "user", "content": QUESTION}],
                                                   extra_body={"swarm": {"k": 2}})
    ranking = reply.model_extra["swarm"]["ranking"]
    assert reply.model == "alpha" and {r["model"] for r in ranking} == {"alpha"} and len(ranking) == 2


def test_multi_turn_conversation_is_one_prompt(swarm: Swarm) -> None:
    reply = swarm.client().chat.completions.create(model="swarm", messages=[
        {"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi!"},
        {"role": "user", "content": [{"type": "text", "text": "Which city?"}]}])
    assert reply.choices[0].message.content  # replay nodes do not know it: their fallback, but a real round


@pytest.mark.parametrize("body, status, code, says", [
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}], "n": 2}, 400, "unsupported_parameter", "n > 1"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}],
      "tools": [{"type": "function", "function": {"name": "f"}}]}, 400, "tools_not_supported", "not supported"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}], "logit_bias": {"1": 2}}, 400,
     "unsupported_parameter", "logit_bias"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}], "top_p": 0.5}, 400, "unsupported_parameter", "top_p"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}], "bogus": 1}, 400, "unknown_field", "bogus"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi", "extra": 1}]}, 400, "unknown_field", "extra"),
    ({"model": "swarm", "messages": [{"role": "tool", "content": "x", "tool_call_id": "1"}]}, 400, "tools_not_supported",
     "not supported"),
    ({"model": "swarm", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]},
     400, "unsupported_content", "image_url"),
    ({"model": "swarm", "messages": []}, 400, "invalid_request", "messages"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}], "temperature": 5}, 400, "invalid_request",
     "temperature"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "hi"}], "max_tokens": 100_000}, 400, "invalid_request",
     "max_tokens"),
    ({"model": "nope", "messages": [{"role": "user", "content": "hi"}]}, 404, "model_not_found", "nope"),
    ({"messages": [{"role": "user", "content": "hi"}]}, 400, "invalid_request", "model"),
    ({"model": "swarm", "messages": [{"role": "user", "content": "x" * 40_000}]}, 400, "invalid_request", "prompt"),
])
def test_bad_requests_get_openai_errors(swarm: Swarm, body: dict[str, Any], status: int, code: str, says: str) -> None:
    r = httpx.post(swarm.base + "/v1/chat/completions", json=body, timeout=30)
    assert r.status_code == status, r.text
    error = r.json()["error"]
    assert error["code"] == code and says in error["message"] and error["type"]


def test_openai_package_raises_typed_errors(swarm: Swarm) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        swarm.client().chat.completions.create(model="swarm", messages=[{"role": "user", "content": "hi"}], n=3)
    assert "n > 1" in info.value.message
    with pytest.raises(openai.NotFoundError):
        swarm.client().chat.completions.create(model="missing", messages=[{"role": "user", "content": "hi"}])


def test_malformed_json_oversized_body_and_unknown_route(swarm: Swarm) -> None:
    r = httpx.post(swarm.base + "/v1/chat/completions", content=b'{"model": "swarm", "messages": [', timeout=30,
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    r = httpx.post(swarm.base + "/v1/chat/completions", content=b"x" * 70_000, timeout=30)
    assert r.status_code == 413 and r.json()["error"]["code"] == "body_too_large"

    def chunked() -> Iterator[bytes]:  # no Content-Length: the limit holds while reading
        for _ in range(20):
            yield b" " * 8192

    r = httpx.post(swarm.base + "/v1/chat/completions", content=chunked(), timeout=30)
    assert r.status_code == 413
    r = httpx.get(swarm.base + "/v1/nothing-here", timeout=30)
    assert r.status_code == 404 and r.json()["error"]["type"] == "not_found_error"


def test_client_disconnect_mid_stream_cancels_the_round(swarm: Swarm) -> None:
    before = httpx.get(swarm.base + "/metrics").text
    cancelled_before = swarm.metric(before, "swarmrank_rounds_total", kind="client", outcome="cancelled")
    body = {"model": "swarm", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.Client(timeout=30) as http, http.stream("POST", swarm.base + "/v1/chat/completions", json=body) as r:
        assert r.status_code == 200
        for line in r.iter_lines():
            if line.startswith("data:"):
                break  # the first chunk arrived: the round runs; now hang up
    # The round either finished before the hang-up was noticed or was cancelled; nothing stays in flight.
    wait_for(lambda: swarm.metric(httpx.get(swarm.base + "/metrics").text, "swarmrank_rounds_in_progress") == 0, timeout=60)
    after = httpx.get(swarm.base + "/metrics").text
    finished = swarm.metric(after, "swarmrank_rounds_total", kind="client")
    assert finished >= swarm.metric(before, "swarmrank_rounds_total", kind="client") + 1
    assert swarm.metric(after, "swarmrank_rounds_total", kind="client", outcome="cancelled") >= cancelled_before
    # Everyone keeps being served, over HTTP and gRPC.
    assert swarm.client().chat.completions.create(model="swarm", messages=[{"role": "user", "content": QUESTION}]).choices
    with grpc.insecure_channel(swarm.coord.address) as channel:
        assert coordinator_pb2_grpc.CoordinatorStub(channel).Ask(cpb.AskRequest(prompt=QUESTION), timeout=60).answer


def test_metrics_move_after_rounds(swarm: Swarm) -> None:
    before = httpx.get(f"http://{swarm.metrics_address}/metrics").text
    swarm.client().chat.completions.create(model="swarm", messages=[{"role": "user", "content": QUESTION}])
    after = httpx.get(f"http://{swarm.metrics_address}/metrics").text
    m = swarm.metric
    assert m(after, "swarmrank_rounds_total", kind="client", outcome="answered") == \
        m(before, "swarmrank_rounds_total", kind="client", outcome="answered") + 1
    for stage in ("dispatch", "generate", "judge", "fit", "commit"):
        assert m(after, "swarmrank_round_stage_seconds_count", stage=stage) > m(before, "swarmrank_round_stage_seconds_count",
                                                                                stage=stage), stage
    assert m(after, "swarmrank_round_candidates_sum") >= m(before, "swarmrank_round_candidates_sum") + 2
    assert m(after, "swarmrank_round_judge_calls_sum") > m(before, "swarmrank_round_judge_calls_sum")
    assert m(after, "swarmrank_node_calls_total", rpc="judge", code="OK") > m(before, "swarmrank_node_calls_total",
                                                                              rpc="judge", code="OK")
    assert m(after, "swarmrank_generated_tokens_total", model="alpha") + m(after, "swarmrank_generated_tokens_total",
                                                                           model="beta") > 0
    assert m(after, "swarmrank_nodes", status="healthy") == len(NODES)
    assert m(after, "swarmrank_node_reputation", role="generator") > 0
    assert "swarmrank_generation_tokens_per_second_bucket" in after and "swarmrank_penalties_total" in after
    http_side = httpx.get(swarm.base + "/metrics").text
    assert m(http_side, "swarmrank_http_requests_total", route="/v1/chat/completions", status="200") >= 1


def test_no_healthy_nodes_is_503(tmp_path: Path) -> None:
    bg = BackgroundLoop()
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path, http_listen="127.0.0.1:0"))
    try:
        base = f"http://{coord.http_address}"
        client = openai.OpenAI(base_url=base + "/v1", api_key="x", max_retries=0, timeout=30)
        for stream in (False, True):
            with pytest.raises(openai.APIStatusError) as info:
                result = client.chat.completions.create(model="swarm", messages=[{"role": "user", "content": "hi"}],
                                                        stream=stream)
                list(result) if stream else None
            assert info.value.status_code == 503 and "healthy node" in info.value.message
        assert [m.id for m in client.models.list()] == ["swarm"]
        text = httpx.get(base + "/metrics").text
        assert 'swarmrank_round_rejections_total{reason="no_quorum"} 2.0' in text
    finally:
        coord.stop()
        bg.close()


def test_plaintext_http_on_a_public_address_needs_insecure(tmp_path: Path) -> None:
    from swarmrank.rpc.tls import InsecureRefused

    bg = BackgroundLoop()
    try:
        with pytest.raises(InsecureRefused, match="HTTP API"):
            RunningCoordinator(bg, coordinator_settings(tmp_path, http_listen="0.0.0.0:0"))
    finally:
        bg.close()


def test_swarm_serves_https_and_asks_for_api_keys(tmp_path: Path) -> None:
    """With a swarm directory the HTTP API is HTTPS with the swarm's certificate, and every call
    needs a client API key (the same keys, hashes and rate limits as gRPC); refusals are counted."""
    import ssl

    from swarmrank.rpc import swarm_dir

    info, admin_key = swarm_dir.init(tmp_path / "swarm", [])
    bg = BackgroundLoop()
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path, swarm=info.directory, http_listen="127.0.0.1:0"))
    try:
        base = f"https://{coord.http_address}"
        verify = ssl.create_default_context(cafile=str(info.directory / "ca.crt"))
        with httpx.Client(verify=verify, timeout=30) as http:
            r = http.post(base + "/v1/chat/completions", json={"model": "swarm", "messages": [{"role": "user", "content": "hi"}]})
            assert r.status_code == 401 and r.json()["error"]["type"] == "authentication_error"
            assert r.headers["www-authenticate"] == "Bearer" and "API key is required" in r.json()["error"]["message"]
            r = http.get(base + "/v1/models", headers={"authorization": "Bearer sk-not-a-real-key"})
            assert r.status_code == 401
            client = openai.OpenAI(base_url=base + "/v1", api_key=admin_key, max_retries=0,
                                   http_client=httpx.Client(verify=verify, timeout=30))
            assert [m.id for m in client.models.list()] == ["swarm"]
            with pytest.raises(openai.AuthenticationError):
                openai.OpenAI(base_url=base + "/v1", api_key="wrong", max_retries=0,
                              http_client=httpx.Client(verify=verify, timeout=30)).models.list()
            # /metrics follows the API's rule: a scraper sends a client API key as a bearer token
            r = http.get(base + "/metrics")
            assert r.status_code == 401 and r.json()["error"]["code"] == "api_key_missing"
            assert "swarmrank_" not in r.text
            scrape = http.get(base + "/metrics", headers={"authorization": f"Bearer {admin_key}"})
            assert scrape.status_code == 200 and scrape.headers["content-type"].startswith("text/plain")
            text = scrape.text
        assert 'swarmrank_auth_refusals_total{reason="api_key_missing"} 2.0' in text
        assert sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
                   if line.startswith("swarmrank_auth_refusals_total{")) == 4
        with pytest.raises(httpx.HTTPError):  # no plaintext on the TLS port
            httpx.get(f"http://{coord.http_address}/v1/models", timeout=10).raise_for_status()
    finally:
        coord.stop()
        bg.close()


def test_dashboard_api_and_event_stream(swarm: Swarm) -> None:
    page = httpx.get(swarm.base + "/")
    assert page.status_code == 200 and "/static/app.js" in page.text
    assert "/api/events" in httpx.get(swarm.base + "/static/app.js").text
    assert httpx.get(swarm.base + "/static/../settings.py").status_code == 404
    with httpx.Client(timeout=60) as http, http.stream("GET", swarm.base + "/api/events") as events:
        asked = swarm.client().chat.completions.create(model="swarm", messages=[{"role": "user", "content": QUESTION}])
        round_id = asked.model_extra["swarm"]["round_id"]
        got: dict[str, Any] = {}
        kind = ""
        for line in events.iter_lines():
            if line.startswith("event:"):
                kind = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and kind == "round":
                got = json.loads(line[5:])
                if got["round_id"] == round_id:
                    break
    assert got["question"] == QUESTION and got["answer"] == "The answer is Paris." and got["judgments"]
    rounds = httpx.get(swarm.base + "/api/rounds").json()
    assert rounds[0]["round_id"] == round_id
    nodes = httpx.get(swarm.base + "/api/nodes").json()
    assert {n["model"] for n in nodes} == {"alpha", "beta", "gamma"} and all(n["history"] for n in nodes)
    ledger = httpx.get(swarm.base + "/api/ledger").json()
    assert ledger["verified"] is True and ledger["entries"] >= 2 and len(ledger["head_hash"]) == 64

"""Component tests: a real node daemon on 127.0.0.1 called through real gRPC stubs."""

from __future__ import annotations

import os
import threading

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from helpers import GatedBackend, RunningNode, wait_for
from swarmrank.node.backends.onnx import OnnxBackend
from swarmrank.node.settings import NodeSettings
from swarmrank.protos import PROTOCOL_VERSION, merkle, signing
from swarmrank.protos.v1 import node_pb2 as pb
from swarmrank.protos.v1 import node_pb2_grpc

NONCE = os.urandom(16)


def settings(tmp_path, **kw) -> NodeSettings:
    return NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / "node.key", model="bigram", **kw)


@pytest.fixture()
def node(bg, tmp_path, bigram_onnx):
    n = RunningNode(bg, settings(tmp_path, max_queue=4), OnnxBackend(bigram_onnx, name="bigram"))
    channel = grpc.insecure_channel(n.address)
    yield n, node_pb2_grpc.NodeStub(channel), channel
    channel.close()
    n.stop()


def generate(stub, prompt="The capital of France", **kw):
    req = pb.GenerateRequest(round_id="r1", nonce=NONCE, prompt=prompt, max_tokens=kw.pop("max_tokens", 24), **kw)
    return list(stub.Generate(req, timeout=30))


def status_of(call) -> grpc.StatusCode:
    with pytest.raises(grpc.RpcError) as info:
        call()
    return info.value.code()


def test_describe(node) -> None:
    n, stub, _ = node
    d = stub.Describe(pb.DescribeRequest(), timeout=5)
    assert d.node_id == n.node_id == signing.node_id_for(d.public_key)
    assert d.protocol_version == PROTOCOL_VERSION
    assert [m.name for m in d.models] == ["bigram"] and d.models[0].runtime == "onnxruntime"
    assert d.max_concurrency == 1 and d.max_queue == 4


def test_generate_streams_tokens_then_signed_candidate(node) -> None:
    n, stub, _ = node
    events = generate(stub)
    tokens = [e.token.text for e in events[:-1]]
    assert all(e.HasField("token") for e in events[:-1]) and len(tokens) > 1
    c = events[-1].candidate
    assert c.text == "".join(tokens) and c.text.startswith(" is")  # the bigram model continues its corpus
    assert c.node_id == n.node_id and c.completion_tokens == len(c.text.encode())
    public_key = stub.Describe(pb.DescribeRequest(), timeout=5).public_key
    assert signing.verify(public_key, c.signature, signing.candidate_bytes("r1", NONCE, n.node_id, c.model, c.text))
    # The signature is bound to the round: it does not verify for another round id or nonce.
    assert not signing.verify(public_key, c.signature, signing.candidate_bytes("r2", NONCE, n.node_id, c.model, c.text))
    assert not signing.verify(public_key, c.signature, signing.candidate_bytes("r1", os.urandom(16), n.node_id, c.model, c.text))


def test_judge_batch_returns_signed_verdicts(node) -> None:
    n, stub, _ = node
    req = pb.JudgeRequest(
        round_id="r9", nonce=NONCE, question="What is the capital of France?",
        comparisons=[pb.Comparison(comparison_id="x", answer_a="Paris.", answer_b="Rome."),
                     pb.Comparison(comparison_id="y", answer_a="Rome.", answer_b="Paris.")],
    )
    resp = stub.Judge(req, timeout=30)
    assert resp.judge_node_id == n.node_id and [v.comparison_id for v in resp.verdicts] == ["x", "y"]
    key = stub.Describe(pb.DescribeRequest(), timeout=5).public_key
    leaves = []
    for v, c in zip(resp.verdicts, req.comparisons):
        assert v.preference in (pb.PREFERENCE_A, pb.PREFERENCE_B, pb.PREFERENCE_TIE)
        assert 0.0 <= v.confidence <= 1.0 and v.rationale.startswith("P(A)=")
        leaves.append(signing.verdict_leaf("r9", NONCE, n.node_id, c.comparison_id, signing.sha256(c.answer_a),
                                          signing.sha256(c.answer_b), v.preference))
    # one signature over the reply: the Merkle root of its verdicts, in reply order
    assert signing.verify(key, resp.signature, signing.verdicts_bytes("r9", NONCE, n.node_id, merkle.root(leaves), 2))
    assert not signing.verify(key, resp.signature, signing.verdicts_bytes("r9", NONCE, n.node_id, merkle.root(leaves[::-1]), 2))


@pytest.mark.parametrize(
    "kwargs, code, fragment",
    [
        ({"prompt": "   "}, grpc.StatusCode.INVALID_ARGUMENT, "prompt is empty"),
        ({"prompt": "x" * 40_000}, grpc.StatusCode.INVALID_ARGUMENT, "limit is"),
        ({"model": "no-such-model"}, grpc.StatusCode.NOT_FOUND, "not served here"),
        ({"max_tokens": 5000}, grpc.StatusCode.INVALID_ARGUMENT, "max_tokens"),
        ({"temperature": 3.0}, grpc.StatusCode.INVALID_ARGUMENT, "temperature"),
        ({"nonce": b"short"}, grpc.StatusCode.INVALID_ARGUMENT, "nonce"),
        ({"round_id": ""}, grpc.StatusCode.INVALID_ARGUMENT, "round_id"),
    ],
)
def test_bad_generate_requests_get_clear_status_and_node_keeps_serving(node, kwargs, code, fragment) -> None:
    _, stub, _ = node
    base = {"round_id": "r1", "nonce": NONCE, "prompt": "hello", "max_tokens": 4}
    with pytest.raises(grpc.RpcError) as info:
        list(stub.Generate(pb.GenerateRequest(**{**base, **kwargs}), timeout=10))
    assert info.value.code() == code and fragment in info.value.details()
    assert generate(stub)[-1].candidate.text  # still serving


def test_bad_judge_batches(node) -> None:
    _, stub, _ = node
    own = generate(stub, prompt="Two plus")[-1].candidate.text

    def judge(*comparisons, question="Q?", round_id="r1"):
        return stub.Judge(pb.JudgeRequest(round_id=round_id, nonce=NONCE, question=question, comparisons=comparisons), timeout=10)

    cases = {
        "holds 1..": lambda: judge(),
        "appears twice": lambda: judge(pb.Comparison(comparison_id="a", answer_a="x", answer_b="y"),
                                       pb.Comparison(comparison_id="a", answer_a="x", answer_b="z")),
        "answer_b is empty": lambda: judge(pb.Comparison(comparison_id="a", answer_a="x", answer_b="")),
        "question is empty": lambda: judge(pb.Comparison(comparison_id="a", answer_a="x", answer_b="y"), question=""),
        "its own candidate": lambda: judge(pb.Comparison(comparison_id="a", answer_a="other", answer_b=own)),
        "holds 1..64": lambda: judge(*[pb.Comparison(comparison_id=str(i), answer_a="x", answer_b="y") for i in range(65)]),
    }
    for fragment, call in cases.items():
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT, fragment
        assert fragment in info.value.details()
    # Its own answer from another round is fine to judge: ownership is per round.
    assert len(judge(pb.Comparison(comparison_id="a", answer_a="other", answer_b=own), round_id="r2").verdicts) == 1
    # With generation nonces, ownership is by candidate: another node's identical text may be judged,
    # the candidate this node produced (generated under NONCE) may not.
    other_nonce = os.urandom(16)
    assert len(judge(pb.Comparison(comparison_id="a", answer_a="x", answer_b=own, nonce_a=other_nonce, nonce_b=other_nonce)).verdicts) == 1
    with pytest.raises(grpc.RpcError) as info:
        judge(pb.Comparison(comparison_id="a", answer_a="x", answer_b=own, nonce_a=other_nonce, nonce_b=NONCE))
    assert "its own candidate" in info.value.details()


def test_health_and_reflection(node) -> None:
    _, _, channel = node
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", "swarmrank.v1.Node"):
        assert health.Check(  # type: ignore[attr-defined]  # stubs lack it
            health_pb2.HealthCheckRequest(service=service), timeout=5).status == health_pb2.HealthCheckResponse.SERVING
    refl = reflection_pb2_grpc.ServerReflectionStub(channel)
    replies = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5))
    names = {s.name for s in replies[0].list_services_response.service}
    assert {"swarmrank.v1.Node", "grpc.health.v1.Health"} <= names
    replies = list(refl.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(file_containing_symbol="swarmrank.v1.Node")]), timeout=5))
    assert replies[0].file_descriptor_response.file_descriptor_proto


def test_cancellation_stops_the_model_and_full_queue_is_refused(bg, tmp_path, bigram_onnx) -> None:
    gate = threading.Event()
    backend = GatedBackend(OnnxBackend(bigram_onnx, name="bigram"), gate)
    n = RunningNode(bg, settings(tmp_path, max_queue=0), backend)
    try:
        with grpc.insecure_channel(n.address) as channel:
            stub = node_pb2_grpc.NodeStub(channel)
            call = stub.Generate(pb.GenerateRequest(round_id="r1", nonce=NONCE, prompt="The capital", max_tokens=50), timeout=30)
            assert backend.started.wait(10)
            # The only slot is taken and no queue is allowed: the next caller is refused at once.
            code = status_of(lambda: list(stub.Generate(pb.GenerateRequest(round_id="r2", nonce=NONCE, prompt="x", max_tokens=2), timeout=10)))
            assert code == grpc.StatusCode.RESOURCE_EXHAUSTED
            call.cancel()  # the caller goes away: the model must stop generating
            assert backend.stopped_early.wait(10)
            gate.set()
            # The slot is freed as soon as the model thread has returned.
            def served() -> bool:
                try:
                    return list(stub.Generate(pb.GenerateRequest(round_id="r3", nonce=NONCE, prompt="Two", max_tokens=3), timeout=30))[-1].HasField("candidate")
                except grpc.RpcError as exc:
                    assert exc.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
                    return False

            wait_for(served, timeout=10)
    finally:
        gate.set()
        n.stop()

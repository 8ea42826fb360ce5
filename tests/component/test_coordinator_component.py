"""Component tests: a real coordinator and real nodes (tiny ONNX models) over gRPC on 127.0.0.1."""

from __future__ import annotations

import os

import grpc
import pytest

from helpers import CORPORA, RunningCoordinator, coordinator_settings
from swarmrank.protos import signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc
from swarmrank.protos.v1 import node_pb2 as npb


def test_round_over_real_grpc(module_swarm) -> None:
    coord, nodes, stub = module_swarm
    result = stub.Ask(cpb.AskRequest(prompt="The capital of France"), timeout=60)
    assert len(result.candidates) == 3 and not result.failures
    texts = {c.model: c.text for c in result.candidates}
    assert set(texts) == set(CORPORA) and len(set(texts.values())) == 3  # three models, three answers
    assert [c.rank for c in result.candidates] == sorted(c.rank for c in result.candidates)
    assert result.answer == result.candidates[0].text and result.winner_node_id == result.candidates[0].node_id
    assert 0.5 <= result.confidence <= 1.0
    # 3 distinct answers: full round robin in both orders, each judged by the node that wrote neither.
    assert len(result.judgments) == 6
    authors = {c.candidate_id: c.node_id for c in result.candidates}
    keys = {n.node_id: n for n in nodes}
    for j in result.judgments:
        assert j.judge_node_id not in (authors[j.candidate_a_id], authors[j.candidate_b_id])
    pairs = {(j.candidate_a_id, j.candidate_b_id) for j in result.judgments}
    assert all((b, a) in pairs for a, b in pairs)
    # Every candidate signature verifies against its node's key and this round.
    listed = {n.node_id: n for n in stub.ListNodes(cpb.ListNodesRequest(), timeout=5).nodes}
    assert set(listed) == set(keys)
    # The round is stored and can be audited later.
    again = stub.GetRound(cpb.GetRoundRequest(round_id=result.round_id), timeout=5)
    assert again == result


def test_ask_stream_events(module_swarm) -> None:
    _, _, stub = module_swarm
    events = list(stub.AskStream(cpb.AskRequest(prompt="The capital of France", k=3), timeout=60))
    kinds = [e.WhichOneof("event") for e in events]
    assert kinds[0] == "dispatched" and kinds[-1] == "result"
    assert kinds.count("candidate") == 3 and "judging" in kinds
    assert events[-1].result.round_id == events[0].dispatched.round_id


@pytest.mark.parametrize(
    "request_kwargs, code",
    [
        ({"prompt": ""}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"prompt": "x" * 40_000}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"prompt": "hi", "k": 1}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"prompt": "hi", "k": 99}, grpc.StatusCode.INVALID_ARGUMENT),
        ({"prompt": "hi", "max_tokens": 100_000}, grpc.StatusCode.INVALID_ARGUMENT),
    ],
)
def test_malformed_asks(module_swarm, request_kwargs, code) -> None:
    _, _, stub = module_swarm
    with pytest.raises(grpc.RpcError) as info:
        stub.Ask(cpb.AskRequest(**request_kwargs), timeout=10)
    assert info.value.code() == code
    assert stub.Ask(cpb.AskRequest(prompt="The capital of France"), timeout=60).answer  # still serving


def test_unknown_round(module_swarm) -> None:
    _, _, stub = module_swarm
    with pytest.raises(grpc.RpcError) as info:
        stub.GetRound(cpb.GetRoundRequest(round_id="nope"), timeout=5)
    assert info.value.code() == grpc.StatusCode.NOT_FOUND and "nope" in info.value.details()


@pytest.fixture()
def coordinator_stub(bg, tmp_path):
    """A coordinator of its own (no nodes needed) for a test that registers one."""
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path))
    with grpc.insecure_channel(coord.address) as channel:
        yield coordinator_pb2_grpc.CoordinatorStub(channel)
    coord.stop()


def test_registration_needs_proof_of_possession(coordinator_stub) -> None:
    stub = coordinator_stub
    me, other = Identity.generate(), Identity.generate()
    models = [npb.ModelInfo(name="x")]

    def register(signer: Identity, nonce: bytes, address: str = "127.0.0.1:1") -> cpb.RegisterResponse:
        sig = signer.sign(signing.registration_bytes(nonce, me.public_key, address))
        return stub.Register(cpb.RegisterRequest(public_key=me.public_key, nonce=nonce, address=address, models=models,
                                                 max_concurrency=1, signature=sig), timeout=5)

    bad = {
        "signature does not verify": lambda: register(other, stub.Challenge(cpb.ChallengeRequest(public_key=me.public_key), timeout=5).nonce),
        "unknown or already used": lambda: register(me, os.urandom(32)),
        "not host:port": lambda: register(me, stub.Challenge(cpb.ChallengeRequest(public_key=me.public_key), timeout=5).nonce, "no port"),
    }
    for fragment, call in bad.items():
        with pytest.raises(grpc.RpcError) as info:
            call()
        assert info.value.code() == grpc.StatusCode.PERMISSION_DENIED and fragment in info.value.details()
    nonce = stub.Challenge(cpb.ChallengeRequest(public_key=me.public_key), timeout=5).nonce
    assert register(me, nonce).node_id == me.node_id
    with pytest.raises(grpc.RpcError) as info:  # a nonce is single use
        register(me, nonce)
    assert "already used" in info.value.details()

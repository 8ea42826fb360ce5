"""Misbehaving nodes on real gRPC: the round goes on, the fault is recorded and costs the node."""

from __future__ import annotations

import contextlib

import grpc
import pytest

from helpers import CORPORA, RunningCoordinator, RunningNode, build_bigram_onnx, coordinator_settings, wait_for
from swarmrank.coordinator import reputation
from swarmrank.node.backends.onnx import OnnxBackend
from swarmrank.node.registration import register_once
from swarmrank.node.service import NodeService
from swarmrank.node.servicer import NodeServicer
from swarmrank.node.settings import NodeSettings
from swarmrank.protos import limits
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc
from swarmrank.protos.v1 import node_pb2 as pb
from swarmrank.protos.v1 import node_pb2_grpc


class ForgingServicer(NodeServicer):
    """Signs its candidates with a key other than the one it registered."""

    def __init__(self, service: NodeService, forger: Identity) -> None:
        super().__init__(service)
        self._forger = forger

    async def Generate(self, request, context):
        async for event in super().Generate(request, context):
            if event.HasField("candidate"):
                event.candidate.signature = self._forger.sign(b"anything")
            yield event


class ReplayingServicer(NodeServicer):
    """Answers every request after its first with the signed candidate of its first one."""

    def __init__(self, service: NodeService) -> None:
        super().__init__(service)
        self._first: pb.Candidate | None = None

    async def Generate(self, request, context):
        async for event in super().Generate(request, context):
            if event.HasField("candidate"):
                if self._first is None:
                    self._first = pb.Candidate()
                    self._first.CopyFrom(event.candidate)
                else:
                    event.candidate.CopyFrom(self._first)
            yield event


class OverreachingServicer(NodeServicer):
    """Adds a verdict for a comparison it was never asked about."""

    async def Judge(self, request, context):
        reply = await super().Judge(request, context)
        reply.verdicts.add(comparison_id="not-asked", preference=pb.PREFERENCE_A)
        return reply


class FlippingServicer(NodeServicer):
    """Signs its Judge reply, then flips every verdict it sends (a man in the middle, or a node that
    reports other verdicts than it signed)."""

    async def Judge(self, request, context):
        reply = await super().Judge(request, context)
        flip = {pb.PREFERENCE_A: pb.PREFERENCE_B, pb.PREFERENCE_B: pb.PREFERENCE_A, pb.PREFERENCE_TIE: pb.PREFERENCE_A}
        for v in reply.verdicts:
            v.preference = flip[v.preference]
        return reply


def start_custom_node(bg, servicer_cls, identity: Identity, backend, coordinator: str, **kw):
    """A node whose gRPC servicer a test replaced, registered like any other node."""
    service = NodeService(identity, backend)

    async def start() -> grpc.aio.Server:
        server = grpc.aio.server(options=limits.GRPC_OPTIONS)
        node_pb2_grpc.add_NodeServicer_to_server(servicer_cls(service, **kw), server)
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        async with grpc.aio.insecure_channel(coordinator) as channel:
            await register_once(coordinator_pb2_grpc.CoordinatorStub(channel), identity, f"127.0.0.1:{port}", service.describe())
        return server

    return bg.run(start())


@pytest.fixture()
def coordinator(bg, tmp_path):
    # Long heartbeat interval: the custom nodes do not heartbeat, and must stay healthy for the test.
    c = RunningCoordinator(bg, coordinator_settings(tmp_path, heartbeat_interval=60, seed=3))
    yield c
    c.stop()


def honest_nodes(bg, tmp_path, coordinator, names):
    return [
        RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / f"{n}.key", model=n, coordinator=coordinator.address),
                    OnnxBackend(build_bigram_onnx(tmp_path / f"{n}.onnx", CORPORA[n]), name=n))
        for n in names
    ]


def ask(address: str, **kw) -> cpb.RoundResult:
    with grpc.insecure_channel(address) as channel:
        return coordinator_pb2_grpc.CoordinatorStub(channel).Ask(cpb.AskRequest(prompt="The capital of France", **kw), timeout=60)


def reputations(address: str) -> dict[str, float]:
    with grpc.insecure_channel(address) as channel:
        return {n.node_id: n.reputation for n in coordinator_pb2_grpc.CoordinatorStub(channel).ListNodes(cpb.ListNodesRequest(), timeout=5).nodes}


def test_candidate_signed_by_another_key_is_dropped_and_penalised(bg, tmp_path, coordinator) -> None:
    honest = honest_nodes(bg, tmp_path, coordinator, ["paris", "rome"])
    liar = Identity.generate()
    server = start_custom_node(bg, ForgingServicer, liar, OnnxBackend(build_bigram_onnx(tmp_path / "l.onnx", CORPORA["lyon"]), name="lyon"),
                               coordinator.address, forger=Identity.generate())
    try:
        wait_for(lambda: len(reputations(coordinator.address)) == 3)
        result = ask(coordinator.address, k=3)
        assert {c.node_id for c in result.candidates} == {n.node_id for n in honest}
        assert [(f.node_id, f.stage) for f in result.failures] == [(liar.node_id, "generate")]
        assert "signature" in result.failures[0].reason
        assert reputations(coordinator.address)[liar.node_id] < reputation.QUARANTINE  # its stake is gone: quarantined
    finally:
        bg.run(server.stop(0))
        for n in honest:
            n.stop()


@contextlib.contextmanager
def two_honest_and_one_misbehaving_judge(bg, tmp_path, coordinator, servicer_cls):
    """Two honest nodes and one whose servicer ``servicer_cls`` replaced, all registered."""
    honest = honest_nodes(bg, tmp_path, coordinator, ["paris", "rome"])
    judge = Identity.generate()
    server = start_custom_node(bg, servicer_cls, judge, OnnxBackend(build_bigram_onnx(tmp_path / "l.onnx", CORPORA["lyon"]), name="lyon"),
                               coordinator.address)
    try:
        wait_for(lambda: len(reputations(coordinator.address)) == 3)
        yield honest, judge
    finally:
        bg.run(server.stop(0))
        for n in honest:
            n.stop()


def test_verdict_for_unasked_pair_is_dropped_and_penalised(bg, tmp_path, coordinator) -> None:
    with two_honest_and_one_misbehaving_judge(bg, tmp_path, coordinator, OverreachingServicer) as (_, judge):
        result = ask(coordinator.address, k=3)
        assert len(result.candidates) == 3  # the round went on
        unasked = [f for f in result.failures if "not asked" in f.reason]
        assert unasked and all(f.node_id == judge.node_id and f.stage == "judge" for f in unasked)
        # its reply is signed as a whole, so none of it counts; the other judges' verdicts do
        assert result.judgments and all(j.judge_node_id != judge.node_id for j in result.judgments)


def test_verdicts_that_differ_from_what_the_judge_signed_are_dropped_and_penalised(bg, tmp_path, coordinator) -> None:
    with two_honest_and_one_misbehaving_judge(bg, tmp_path, coordinator, FlippingServicer) as (honest, judge):
        result = ask(coordinator.address, k=3)
        assert len(result.candidates) == 3  # the round went on
        bad = [f for f in result.failures if f.node_id == judge.node_id]
        assert bad and all(f.stage == "judge" and "signature does not verify" in f.reason for f in bad)
        assert result.judgments and all(j.judge_node_id != judge.node_id for j in result.judgments)
        assert reputations(coordinator.address)[judge.node_id] < reputations(coordinator.address)[honest[0].node_id]


def test_too_few_nodes_is_unavailable_with_a_clear_message(bg, tmp_path, coordinator) -> None:
    nodes = honest_nodes(bg, tmp_path, coordinator, ["paris"])
    try:
        wait_for(lambda: len(reputations(coordinator.address)) == 1)
        with pytest.raises(grpc.RpcError) as info:
            ask(coordinator.address)
        assert info.value.code() == grpc.StatusCode.UNAVAILABLE and "at least 2" in info.value.details()
    finally:
        for n in nodes:
            n.stop()


def test_coordinator_restart_remembers_the_swarm(bg, tmp_path) -> None:
    settings = coordinator_settings(tmp_path, heartbeat_interval=5.0, seed=1)  # a late heartbeat under load keeps a node
    first = RunningCoordinator(bg, settings)
    nodes = honest_nodes(bg, tmp_path, first, ["paris", "rome", "lyon"])
    try:
        wait_for(lambda: len(reputations(first.address)) == 3)
        round_id = ask(first.address).round_id
        before = reputations(first.address)
        first.stop()
        second = RunningCoordinator(bg, settings.model_copy(update={"listen": first.address}))
        try:
            assert reputations(second.address) == before  # nodes and reputations came back from the database
            with grpc.insecure_channel(second.address) as channel:
                stub = coordinator_pb2_grpc.CoordinatorStub(channel)
                assert stub.GetRound(cpb.GetRoundRequest(round_id=round_id), timeout=5).round_id == round_id
            wait_for(lambda: ask(second.address).answer != "")  # heartbeats resumed: rounds work
        finally:
            second.stop()
    finally:
        for n in nodes:
            n.stop()


def test_candidate_replayed_from_another_round_is_rejected_and_penalised(bg, tmp_path, coordinator) -> None:
    honest = honest_nodes(bg, tmp_path, coordinator, ["paris", "rome"])
    replayer = Identity.generate()
    server = start_custom_node(bg, ReplayingServicer, replayer,
                               OnnxBackend(build_bigram_onnx(tmp_path / "l.onnx", CORPORA["lyon"]), name="lyon"), coordinator.address)
    try:
        wait_for(lambda: len(reputations(coordinator.address)) == 3)
        # Its first Generate call was a calibration challenge at admission: every later answer is
        # that old signed candidate, which does not verify for a new round and nonce.
        result = ask(coordinator.address, k=3)
        replayed = [f for f in result.failures if f.node_id == replayer.node_id]
        assert replayed and "signature" in replayed[0].reason
        assert replayer.node_id not in {c.node_id for c in result.candidates} and len(result.candidates) == 2
        assert reputations(coordinator.address)[replayer.node_id] < reputation.QUARANTINE
    finally:
        bg.run(server.stop(0))
        for n in honest:
            n.stop()

"""End-to-end: coordinator and real-model nodes as separate processes on 127.0.0.1 (llama.cpp, GGUF)."""

from __future__ import annotations

import json
from collections.abc import Iterator
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

from conftest import requires_models
from swarmrank.client import Client, Completed, Dispatched
from swarmrank.cli.demo import REGISTER_CALLS, Child, wait_for_nodes
from swarmrank.cli.waiting import cpu_seconds, wait_while_progressing
from swarmrank.node.catalogue import CATALOGUE
from swarmrank.protos import merkle, signing
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc
from swarmrank.protos.v1 import node_pb2 as npb
from swarmrank.protos.v1 import node_pb2_grpc

pytestmark = [requires_models, pytest.mark.models]
MODELS = list(CATALOGUE)
OPEN_QUESTION = "Describe the sea in one short sentence."


class Swarm:
    def __init__(self, work: Path, models: list[str]) -> None:
        self.children: list[Child] = []
        coordinator = Child("coordinator", ["coordinator", "start", "--listen", "127.0.0.1:0", "--db", str(work / "c.db"),
                                            "--heartbeat-interval", "5", "--default-max-tokens", "48", "--seed", "1",
                                            "--key-path", str(work / "c.key"), "--calibration-threshold", "0",
                                            # no probation burst of spot checks: each would keep the three
                                            # models busy for tens of seconds behind the tests' own rounds
                                            "--probation-rate", "0",
                                            # deadlines a loaded 2-core machine keeps (a late node is penalised)
                                            "--generate-timeout", "1800", "--judge-timeout", "1800",
                                            "--calibration-timeout", "1800"],
                            work / "coordinator.log")
        self.children.append(coordinator)
        self.address = coordinator.wait_ready()
        self.nodes: dict[str, Child] = {}
        for name in models:
            child = Child(name, ["node", "start", "--model", name, "--listen", "127.0.0.1:0", "--coordinator", self.address,
                                 "--key-path", str(work / f"{name}.key"), "--n-threads", "1",
                                 "--register-timeout", str(1800 * REGISTER_CALLS)], work / f"{name}.log")
            self.children.append(child)
            self.nodes[name] = child
        for child in self.nodes.values():
            child.wait_ready()
        with Client(self.address) as client:  # registered once the coordinator says so, however long calibration takes
            wait_for_nodes(client, len(models), [c.proc.pid for c in self.nodes.values()], what=f"registration (logs in {work})")

    def stop(self) -> None:
        for child in reversed(self.children):
            child.stop()


@pytest.fixture(scope="module")
def swarm(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Swarm]:
    s = Swarm(tmp_path_factory.mktemp("swarm"), MODELS)
    yield s
    s.stop()


def test_each_model_streams_an_answer_and_gives_a_verdict(swarm: Swarm) -> None:
    for name, child in swarm.nodes.items():
        with grpc.insecure_channel(child.address) as channel:
            stub = node_pb2_grpc.NodeStub(channel)
            info = stub.Describe(npb.DescribeRequest(), timeout=10)
            assert info.models[0].name == name and info.models[0].runtime == "llama.cpp"
            nonce = os.urandom(16)
            events = list(stub.Generate(npb.GenerateRequest(round_id=f"e2e-{name}", nonce=nonce,
                                                            prompt="What is 2 + 2? Answer with a number.", max_tokens=24), timeout=1800))
            assert len(events) >= 2 and all(e.HasField("token") for e in events[:-1])
            c = events[-1].candidate
            assert c.text.strip() and c.completion_tokens > 0
            assert signing.verify(info.public_key, c.signature, signing.candidate_bytes(f"e2e-{name}", nonce, info.node_id, name, c.text))
            judged = stub.Judge(npb.JudgeRequest(round_id=f"e2e-j-{name}", nonce=nonce, question="What is 2 + 2?",
                                                 comparisons=[npb.Comparison(comparison_id="q", answer_a="4", answer_b="5")]),
                                timeout=1800)
            verdict = judged.verdicts[0]
            assert verdict.preference in (npb.PREFERENCE_A, npb.PREFERENCE_B, npb.PREFERENCE_TIE) and 0 < verdict.confidence <= 1
            leaf = signing.verdict_leaf(f"e2e-j-{name}", nonce, info.node_id, "q", signing.sha256("4"), signing.sha256("5"),
                                        verdict.preference)
            assert signing.verify(info.public_key, judged.signature,
                                  signing.verdicts_bytes(f"e2e-j-{name}", nonce, info.node_id, merkle.root([leaf]), 1))


def test_node_answers_health_and_reflection(swarm: Swarm) -> None:
    with grpc.insecure_channel(swarm.nodes["smollm2-135m"].address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        status = health.Check(health_pb2.HealthCheckRequest(), timeout=5).status  # type: ignore[attr-defined]  # stubs lack it
        assert status == health_pb2.HealthCheckResponse.SERVING
        replies = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=5)
        assert "swarmrank.v1.Node" in {s.name for s in next(iter(replies)).list_services_response.service}


def test_round_through_sdk_with_every_signature_checked(swarm: Swarm) -> None:
    with Client(swarm.address) as client:
        answer = client.ask(OPEN_QUESTION, timeout=3600)
    assert answer.text.strip() and answer.text == answer.candidates[0].text
    assert {c.model for c in answer.candidates} == set(MODELS) and not answer.failures
    assert [c.rank for c in answer.candidates] == sorted(c.rank for c in answer.candidates)
    strengths = [c.strength for c in answer.candidates]
    assert strengths == sorted(strengths, reverse=True) and 0.5 <= answer.confidence <= 1.0
    # Check every signature on the stored round against the keys the nodes publish themselves.
    keys = {}
    for child in swarm.nodes.values():
        with grpc.insecure_channel(child.address) as channel:
            d = node_pb2_grpc.NodeStub(channel).Describe(npb.DescribeRequest(), timeout=5)
            keys[d.node_id] = d.public_key
    with grpc.insecure_channel(swarm.address) as channel:
        r = coordinator_pb2_grpc.CoordinatorStub(channel).GetRound(cpb.GetRoundRequest(round_id=answer.round_id), timeout=5)
    text = {c.candidate_id: c.text for c in r.candidates}
    for c in r.candidates:
        assert signing.verify(keys[c.node_id], c.signature, signing.candidate_bytes(r.round_id, c.nonce, c.node_id, c.model, c.text))
    authors = {c.candidate_id: c.node_id for c in r.candidates}
    for j in r.judgments:
        assert j.judge_node_id not in (authors[j.candidate_a_id], authors[j.candidate_b_id])
        assert signing.verdict_is_signed(keys[j.judge_node_id], j.signature, list(j.proof), j.leaf_index, j.leaf_count,
                                        r.round_id, j.nonce, j.judge_node_id, j.comparison_id,
                                        text[j.candidate_a_id], text[j.candidate_b_id], j.preference)
    if len(set(text.values())) == 3:  # three distinct answers: full round robin, both orders
        assert len(r.judgments) == 6


def test_node_killed_mid_round_costs_only_its_candidate(tmp_path: Path) -> None:
    s = Swarm(tmp_path, MODELS)
    try:
        victim = s.nodes["qwen2.5-coder-0.5b"]
        answer = None
        with Client(s.address) as client:
            for event in client.stream("Write a long story about a lighthouse keeper.", max_tokens=400, timeout=3600):
                if isinstance(event, Dispatched):  # kill it once it is generating (burning CPU on the story)
                    before = cpu_seconds([victim.proc.pid])
                    wait_while_progressing(lambda: cpu_seconds([victim.proc.pid]) > before + 0.5, lambda: 0,
                                           what="the victim starting to generate", stall=300)
                    victim.proc.send_signal(signal.SIGKILL)
                if isinstance(event, Completed):
                    answer = event.answer
        assert answer is not None and answer.text.strip()
        assert {c.model for c in answer.candidates} == {"smollm2-135m", "gemma3-270m"}
        assert [f.stage for f in answer.failures if f.node_id not in {c.node_id for c in answer.candidates}] == ["generate"]
    finally:
        s.stop()


def test_sigterm_shuts_a_node_down_cleanly(tmp_path: Path) -> None:
    child = Child("node", ["node", "start", "--model", "smollm2-135m", "--listen", "127.0.0.1:0",
                           "--key-path", str(tmp_path / "k.key")], tmp_path / "node.log")
    child.wait_ready()
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(30) == 0
    assert "stopped" in (tmp_path / "node.log").read_text()
    assert (tmp_path / "k.key").stat().st_mode & 0o777 == 0o600


def _processes_mentioning(marker: str) -> list[int]:
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if marker in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def test_demo_json(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "demo", "--json", "--workdir", str(tmp_path), "--timeout", "1800",
                          "What is the capital of France?"], capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-2000:]
    data = json.loads(out.stdout)
    assert {"answer", "round_id", "winner_node", "candidates", "judgments"} <= set(data)
    assert data["answer"].strip() and isinstance(data["judgments"], int)
    assert {c["model"] for c in data["candidates"]} == set(MODELS)
    assert all({"node_id", "model", "text", "strength"} <= set(c) for c in data["candidates"])
    assert not _processes_mentioning(str(tmp_path))  # every child is gone


def test_ctrl_c_on_demo_leaves_no_orphans(tmp_path: Path) -> None:
    proc = subprocess.Popen([sys.executable, "-m", "swarmrank.cli", "demo", "--workdir", str(tmp_path),
                             "--max-tokens", "400", "Write a long story about a dragon."],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    assert proc.stderr is not None
    for line in proc.stderr:
        if "dispatched" in line:
            break
    assert len(_processes_mentioning(str(tmp_path))) >= 4  # coordinator + 3 nodes are running
    proc.send_signal(signal.SIGINT)
    assert proc.wait(60) == 130
    wait_while_progressing(lambda: not _processes_mentioning(str(tmp_path)), lambda: len(_processes_mentioning(str(tmp_path))),
                           what="the demo's children exiting", stall=120)


def test_sigterm_during_a_model_call_does_not_wait_for_it(tmp_path: Path) -> None:
    """llama.cpp cannot be interrupted while it reads a prompt: a node told to stop then abandons
    the call after its grace period instead of outliving it (it used to wait for the call)."""
    child = Child("node", ["node", "start", "--model", "smollm2-135m", "--listen", "127.0.0.1:0", "--key-path",
                           str(tmp_path / "k.key"), "--n-threads", "1", "--n-ctx", "12288", "--grace-seconds", "0"],
                  tmp_path / "node.log")
    address = child.wait_ready()
    # A prompt near the size limit: reading it is one long uninterruptible llama.cpp call (many
    # seconds on one thread), the part of a generate that no per-token stop check reaches.
    story = " ".join(f"The keeper climbed stair {i} and counted {i * 7 % 13} gulls." for i in range(500))
    prompt = story[: 31_000] + "\nSummarise the story."
    outcome: list[BaseException | None] = []
    before = cpu_seconds([child.proc.pid])

    def generate() -> None:
        with grpc.insecure_channel(address) as channel:
            try:
                for _ in node_pb2_grpc.NodeStub(channel).Generate(npb.GenerateRequest(
                        round_id="sigterm", nonce=os.urandom(16), prompt=prompt, max_tokens=64), timeout=3600):
                    pass
                outcome.append(None)
            except grpc.RpcError as exc:
                outcome.append(exc)

    caller = threading.Thread(target=generate, daemon=True)
    caller.start()
    wait_while_progressing(lambda: cpu_seconds([child.proc.pid]) > before + 1.0, lambda: 0,
                           what="the node reading the prompt", stall=300)
    child.proc.send_signal(signal.SIGTERM)
    assert child.proc.wait(600) == 0  # an overall limit for a loaded machine; the call alone takes longer there
    log = (tmp_path / "node.log").read_text()
    assert "abandoning them" in log and "stopped" in log, log[-2000:]
    caller.join(60)
    assert outcome and isinstance(outcome[0], grpc.RpcError)  # the caller hears of it instead of waiting

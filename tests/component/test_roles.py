"""Node roles and judge panels, through real gRPC: judge-only nodes (reward models) never write an
answer, generate-only nodes never judge, and a panel of judges compares each pair."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import grpc
import pytest

from helpers import RunningNode
from swarmrank.bench.local_swarm import LocalSwarm
from swarmrank.node.backends.replay import ANSWER_TEMPLATE, RecordedJudgeBackend, ReplayBackend
from swarmrank.node.settings import NodeSettings
from swarmrank.protos.types import Preference, Role
from swarmrank.protos.v1 import node_pb2 as pb
from swarmrank.protos.v1 import node_pb2_grpc

QUESTION = "What is 6 * 7? Answer with the number."
RIGHT, WRONG = ANSWER_TEMPLATE.format(answer="42"), ANSWER_TEMPLATE.format(answer="41")


def recorded_judge(name: str, right: bool = True) -> RecordedJudgeBackend:
    """A judge that prefers the right answer in both orders (or the wrong one)."""
    good, bad = (Preference.A, Preference.B) if right else (Preference.B, Preference.A)
    return RecordedJudgeBackend({(QUESTION, RIGHT, WRONG): good, (QUESTION, WRONG, RIGHT): bad}, name=name)


def test_role_is_declared_and_enforced_by_the_node(bg, tmp_path: Path) -> None:
    judge = RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / "j.key", model="rm"), recorded_judge("rm"))
    writer = RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / "w.key", model="w", role="generate"),
                         ReplayBackend({QUESTION: "42"}, name="w"))
    try:
        for node, role, refused in ((judge, pb.ROLE_JUDGE_ONLY, "generate"), (writer, pb.ROLE_GENERATE_ONLY, "judge")):
            with grpc.insecure_channel(node.address) as channel:
                stub = node_pb2_grpc.NodeStub(channel)
                assert stub.Describe(pb.DescribeRequest(), timeout=5).models[0].role == role
                with pytest.raises(grpc.RpcError) as info:
                    if refused == "generate":
                        list(stub.Generate(pb.GenerateRequest(round_id="r", nonce=os.urandom(16), prompt=QUESTION), timeout=5))
                    else:
                        stub.Judge(pb.JudgeRequest(round_id="r", nonce=os.urandom(16), question=QUESTION, comparisons=[
                            pb.Comparison(comparison_id="c", answer_a=RIGHT, answer_b=WRONG)]), timeout=5)
                assert info.value.code() == grpc.StatusCode.FAILED_PRECONDITION
                assert ("only judges" if refused == "generate" else "only generates") in info.value.details()
    finally:
        judge.stop()
        writer.stop()


def test_a_panel_of_judge_only_nodes_ranks_generate_only_nodes(tmp_path: Path) -> None:
    writers = [ReplayBackend({QUESTION: "42"}, name="right", role=Role.GENERATE_ONLY),
               ReplayBackend({QUESTION: "41"}, name="wrong", role=Role.GENERATE_ONLY)]
    judges = [recorded_judge("rm-1"), recorded_judge("rm-2"), recorded_judge("rm-3", right=False)]

    async def main() -> None:
        async with LocalSwarm(tmp_path, writers + judges, k=2, calibration_threshold=0.0, spot_check_rate=0.0,
                              judges_per_pair=3) as swarm:
            writer_ids, judge_ids = set(swarm.node_ids[:2]), set(swarm.node_ids[2:])
            async with swarm.client() as client:
                roles = {n.node_id: n.role for n in await client.nodes()}
                assert roles == {**{i: "generate" for i in writer_ids}, **{i: "judge" for i in judge_ids}}
                answer = await client.ask(QUESTION)
        assert {c.node_id for c in answer.candidates} == writer_ids  # judges never write
        assert {j.judge_node_id for j in answer.judgments} == judge_ids  # the whole panel, no writer
        assert len(answer.judgments) == 6  # one pair, both orders, three judges
        assert answer.text == RIGHT  # two right judges outvote one wrong one

    asyncio.run(main())

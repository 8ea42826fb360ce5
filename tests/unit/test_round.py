"""A whole round and admission against fake nodes (real keys and signatures, a real SQLite file, no
gRPC): orchestration, penalties, spot checks under the supervisor, serialised ledger commits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np
import pytest

from fake_nodes import FakeNode, FakeNodeClient, admit, prefers_containing
from swarmrank.coordinator import ledger, reputation
from swarmrank.coordinator.calibration import ChallengeBank, GenerationChallenge, PairwiseChallenge
from swarmrank.coordinator.domain import AskParams, Dispatched, Failure, RoundEvent, RoundResult
from swarmrank.coordinator.errors import QuorumNotReached, RegistrationRefused, UnknownRound
from swarmrank.coordinator.joining import Application, Gatekeeper
from swarmrank.coordinator.registry import Registry
from swarmrank.coordinator.rounds import RoundRunner
from swarmrank.coordinator.settings import CoordinatorSettings
from swarmrank.coordinator.store import Store
from swarmrank.coordinator.supervisor import Supervisor
from swarmrank.protos import signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.types import Preference


class Swarm:
    def __init__(self, tmp_path: Path, nodes: list[FakeNode], bank: ChallengeBank | None = None, **settings: object) -> None:
        self.key = Identity.generate()
        self.db = tmp_path / "c.db"
        self.store = Store(self.db, self.key)
        self.registry = Registry(self.store, heartbeat_interval=60.0)
        self.client = FakeNodeClient(nodes)
        values: dict[str, object] = {"generate_timeout": 30.0, "judge_timeout": 30.0, **settings}
        self.settings = CoordinatorSettings(db=self.db, key_path=tmp_path / "k", **values)  # type: ignore[arg-type]
        self.runner = RoundRunner(self.registry, self.store, self.client, self.settings, np.random.default_rng(1), bank)
        self.nodes = nodes

    async def close(self) -> None:
        await self.runner.close()
        self.store.close()


def honest(i: int, answer: str = "Paris") -> FakeNode:
    return FakeNode(f"10.0.0.{i}:1", answer)


@pytest.fixture()
async def swarm(tmp_path: Path) -> AsyncIterator[Swarm]:
    s = Swarm(tmp_path, [honest(1), honest(2), honest(3), honest(4, "Lyon")], spot_check_rate=0.0)
    await admit(s.registry, s.nodes)
    yield s
    await s.close()


async def test_a_round_picks_the_answer_the_judges_prefer_and_records_it(swarm: Swarm) -> None:
    events: list[RoundEvent] = []
    result = await swarm.runner.run(AskParams("Capital of France?", k=4), events.append)
    assert result.answer == "Paris" and result.winner_node_id != swarm.nodes[3].node_id
    assert result.candidates[-1].candidate.text == "Lyon" and result.confidence > 0.5
    assert result.judgments and not result.failures
    for j in result.judgments:  # nobody judged its own candidate; every verdict is the judge's signed one
        authors = {result.candidates[k].candidate.node_id for k in range(len(result.candidates))}
        assert j.judge_node_id in authors
    assert isinstance(events[-1], RoundResult) and events[-1] == result
    assert swarm.runner.get(result.round_id) == result
    check = ledger.verify(swarm.db, swarm.key.public_key)
    report = ledger.replay_and_compare(swarm.db)
    assert check.ok and report.mismatches == []
    rounds = swarm.registry.get(swarm.nodes[0].node_id)
    assert rounds is not None and rounds.rounds == 1


async def test_no_shows_and_forgers_are_penalised_and_the_round_goes_on(tmp_path: Path) -> None:
    nodes = [honest(1), honest(2), honest(3), FakeNode("10.0.0.4:1", "Paris", fail_generate="UNAVAILABLE"),
             FakeNode("10.0.0.5:1", "Paris", forge=True), FakeNode("10.0.0.6:1", "Paris", fail_generate="INVALID_ARGUMENT")]
    s = Swarm(tmp_path, nodes, spot_check_rate=0.0)
    try:
        await admit(s.registry, nodes)
        result = await s.runner.run(AskParams("Capital?", k=6))
        failures = {f.node_id: f for f in result.failures}
        assert set(failures) == {nodes[3].node_id, nodes[4].node_id, nodes[5].node_id}
        assert "signature" in failures[nodes[4].node_id].reason
        trust = {n.node_id: s.registry.get(n.node_id).trust for n in nodes}
        assert trust[nodes[3].node_id].generator == pytest.approx(reputation.PROBATION - reputation.PENALTY["no_show"])
        assert trust[nodes[4].node_id].generator == pytest.approx(reputation.PROBATION - reputation.PENALTY["bad_signature"])
        assert trust[nodes[5].node_id].generator == pytest.approx(reputation.PROBATION)  # refused: no stake lost
        assert s.registry.state(s.registry.get(nodes[3].node_id)) == "unhealthy"  # type: ignore[arg-type]
        assert s.runner.counters["generate_unavailable"] == 1 and s.runner.counters["bad_signature"] == 1
    finally:
        await s.close()


async def test_a_judge_that_answers_unasked_comparisons_is_penalised(tmp_path: Path) -> None:
    # Two different answers from nodes 1 and 2: only node 3 may judge them, and it cheats.
    nodes = [honest(1), honest(2, "Paris, France"), FakeNode("10.0.0.3:1", "Lyon", extra_verdict=True)]
    s = Swarm(tmp_path, nodes, spot_check_rate=0.0)
    try:
        await admit(s.registry, nodes)
        result = await s.runner.run(AskParams("Capital?", k=3))
        bad = [f for f in result.failures if f.node_id == nodes[2].node_id]
        assert bad and all("not asked" in f.reason for f in bad)
    finally:
        await s.close()


async def test_too_few_candidates_is_quorum_not_reached_and_still_costs_the_no_shows(tmp_path: Path) -> None:
    nodes = [honest(1), FakeNode("10.0.0.2:1", "x", fail_generate="DEADLINE_EXCEEDED"),
             FakeNode("10.0.0.3:1", "x", fail_generate="DEADLINE_EXCEEDED")]
    s = Swarm(tmp_path, nodes, spot_check_rate=0.0)
    try:
        await admit(s.registry, nodes)
        with pytest.raises(QuorumNotReached, match="1 of 3"):
            await s.runner.run(AskParams("Capital?", k=3))
        assert s.registry.get(nodes[1].node_id).trust.generator < reputation.PROBATION
    finally:
        await s.close()


async def test_too_few_answers_bring_one_more_wave_from_the_nodes_not_asked_yet(tmp_path: Path) -> None:
    empty, failing = FakeNode("10.0.0.3:1", ""), FakeNode("10.0.0.4:1", "x", fail_generate="UNAVAILABLE")
    nodes = [honest(1), honest(2), empty, failing]
    s = Swarm(tmp_path, nodes, spot_check_rate=0.0)
    try:
        await admit(s.registry, nodes)
        # The two bad nodes have the best records, so a client round goes to them first.
        await s.registry.record([reputation.Event("evidence", n.node_id, 1.0 + i, "spot_check", 1.0, f"r{i}", "generator")
                                 for n in (empty, failing) for i in range(20)])
        events: list[RoundEvent] = []
        result = await s.runner.run(AskParams("Capital?", k=2), events.append)
        waves = [e.node_ids for e in events if isinstance(e, Dispatched)]
        assert [set(w) for w in waves] == [{empty.node_id, failing.node_id}, {nodes[0].node_id, nodes[1].node_id}]
        assert result.answer == "Paris" and len(result.candidates) == 2
        assert {(f.node_id, f.reason) for f in result.failures} >= {(empty.node_id, "empty answer")}
    finally:
        await s.close()


async def test_a_hung_node_costs_only_its_candidate_after_the_deadline(tmp_path: Path) -> None:
    nodes = [honest(1), honest(2), FakeNode("10.0.0.3:1", "x", hang=True)]
    s = Swarm(tmp_path, nodes, spot_check_rate=0.0, generate_timeout=0.2)
    try:
        await admit(s.registry, nodes)
        events: list[RoundEvent] = []
        result = await s.runner.run(AskParams("Capital?", k=3), events.append)
        assert [f.node_id for f in result.failures] == [nodes[2].node_id]
        assert any(isinstance(e, Failure) and e.node_id == nodes[2].node_id for e in events)
    finally:
        await s.close()


async def test_penalties_that_quarantine_are_reported_by_the_registry(tmp_path: Path) -> None:
    s = Swarm(tmp_path, [honest(1)])
    try:
        await admit(s.registry, s.nodes)
        node_id = s.nodes[0].node_id
        first = await s.registry.record([reputation.Event("penalty", node_id, 1.0, "no_show")])
        second = await s.registry.record([reputation.Event("penalty", node_id, 2.0, "bad_signature")])
        third = await s.registry.record([reputation.Event("penalty", node_id, 3.0, "bad_signature")])
        assert (first, second, third) == ([], [node_id], [])  # newly quarantined once, not again
    finally:
        await s.close()


async def test_concurrent_records_commit_in_call_order(tmp_path: Path) -> None:
    s = Swarm(tmp_path, [honest(1)])
    try:
        await admit(s.registry, s.nodes)
        node_id = s.nodes[0].node_id
        values = [0.1 * i for i in range(10)]
        await asyncio.gather(*(s.registry.record([reputation.Event("evidence", node_id, 10.0 + i, "round", v, f"r{i}", "judge")])
                               for i, v in enumerate(values)))
        recorded = [e for e in ledger.events(s.db) if e.kind == "evidence"]
        assert [e.round_id for e in recorded] == [f"r{i}" for i in range(10)]
        assert ledger.replay_and_compare(s.db).mismatches == []
        assert s.registry.get(node_id).trust == reputation.replay(ledger.events(s.db))[node_id]
    finally:
        await s.close()


async def test_a_spot_check_follows_a_round_and_scores_judges_on_the_planted_pair(tmp_path: Path) -> None:
    question = "What is 2 + 2?"
    bank = ChallengeBank([GenerationChallenge(question, "4")], [PairwiseChallenge(question, "4", "5")])
    liar = FakeNode("10.0.0.4:1", "5", prefers=prefers_containing("5"))
    nodes = [FakeNode(f"10.0.0.{i}:1", "4", prefers=prefers_containing("4")) for i in (1, 2, 3)] + [liar]
    s = Swarm(tmp_path, nodes, bank, spot_check_rate=1.0, probation_rate=0.0)  # one spot check per round
    try:
        await admit(s.registry, nodes)
        await s.runner.run(AskParams("Anything?", k=4))
        await asyncio.wait_for(s.runner._spot_checks.wait(), 30)  # the hidden round it spawned
        assert s.runner.counters["spot_checks"] == 1
        hidden = {e.round_id for e in ledger.events(s.db) if e.source == "spot_check"}
        assert len(hidden) == 1
        evidence = [e for e in ledger.events(s.db) if e.source == "spot_check"]
        liar_values = {e.role: e.value for e in evidence if e.node_id == liar.node_id}
        assert liar_values == {"generator": 0.0, "judge": -1.0}  # wrong answer; preferred "5" on the planted pair too
        assert [e.value for e in evidence if e.node_id == nodes[0].node_id and e.role == "judge"] == [1.0]
        with pytest.raises(UnknownRound):
            s.runner.get(hidden.pop())  # spot checks stay hidden
    finally:
        await s.close()


async def test_a_spot_check_scores_judges_on_the_planted_pair_only_and_an_empty_answer_as_wrong(tmp_path: Path) -> None:
    question = "What is 2 + 2?"
    bank = ChallengeBank([GenerationChallenge(question, "4")], [PairwiseChallenge(question, "4, as planted", "5, as planted")])

    def fickle(q: str, a: str, b: str) -> Preference:  # right on the planted pair, wrong on the real answers
        if "planted" in a:
            return Preference.A if "4" in a else Preference.B
        return prefers_containing("5")(q, a, b)

    judge = FakeNode("10.0.0.3:1", "4", prefers=fickle)
    silent = FakeNode("10.0.0.4:1", "", prefers=prefers_containing("4"))
    nodes = [FakeNode("10.0.0.1:1", "4", prefers=prefers_containing("4")), FakeNode("10.0.0.2:1", "5", prefers=prefers_containing("5")),
             judge, silent]
    s = Swarm(tmp_path, nodes, bank, spot_check_rate=1.0, probation_rate=0.0)
    try:
        await admit(s.registry, nodes)
        await s.runner.run(AskParams("Anything?", k=4))
        await asyncio.wait_for(s.runner._spot_checks.wait(), 30)
        checked = [e for e in ledger.events(s.db) if e.source == "spot_check"]
        # Every judge sees the planted pair in both orders; the real pairs go to a few judges by
        # weight, so only the planted pair measures judges alike.
        assert [e.value for e in checked if e.node_id == judge.node_id and e.role == "judge"] == [1.0]
        # Silence is no way out of a hidden check: an empty answer is recorded as a wrong one.
        assert [e.value for e in checked if e.node_id == silent.node_id and e.role == "generator"] == [0.0]
    finally:
        await s.close()


async def test_a_fresh_swarm_draws_the_probation_budget_then_the_base_rate(tmp_path: Path) -> None:
    question = "What is 2 + 2?"
    bank = ChallengeBank([GenerationChallenge(question, "4")], [PairwiseChallenge(question, "4", "5")])
    nodes = [FakeNode(f"10.0.0.{i}:1", "4", prefers=prefers_containing("4")) for i in (1, 2, 3)]
    s = Swarm(tmp_path, nodes, bank, spot_check_rate=0.0001, probation_rate=3.0, probation_checks=2)
    try:
        await admit(s.registry, nodes)
        await s.runner.run(AskParams("Anything?", k=3))
        await asyncio.wait_for(s.runner._spot_checks.wait(), 30)
        assert s.runner.counters["spot_checks"] == 3  # every record short: a burst of 3
        assert all(n.trust.generator_n == 3 and n.trust.judge_n == 3 for n in s.registry.healthy())
        # Only the first found no voters; in the next two the voters (all right) agreed: conduct, not weight.
        sources = [e.source for e in ledger.events(s.db) if e.kind == "evidence" and e.role == "judge" and e.source != "round"]
        assert sources == ["spot_check"] * 3 + ["undisputed_check"] * 6
        assert all(n.trust.judge_disputed_n == 1 for n in s.registry.healthy())
        await s.runner.run(AskParams("Anything else?", k=3))
        await asyncio.wait_for(s.runner._spot_checks.wait(), 30)
        assert s.runner.counters["spot_checks"] == 3  # every record at least 2 long: the (tiny) base rate
    finally:
        await s.close()


async def test_close_cancels_a_running_spot_check(tmp_path: Path) -> None:
    bank = ChallengeBank([GenerationChallenge("What is 2 + 2?", "4")], [])
    nodes = [honest(1), honest(2), honest(3)]
    s = Swarm(tmp_path, nodes, bank, spot_check_rate=1.0)
    try:
        await admit(s.registry, nodes)
        first = await s.runner.run(AskParams("Capital?", k=3))
        assert first.answer == "Paris"
        for n in nodes:  # the spot check, spawned as the round ended, has not run yet: it will hang
            n.hang = True
        assert s.runner._spot_checks.busy == 1
        await asyncio.wait_for(s.runner.close(), 10)
        assert s.runner._spot_checks.busy == 0 and s.runner.counters["spot_checks"] == 0
    finally:
        await s.close()


async def test_the_supervisor_isolates_failures_and_cancels_on_close() -> None:
    sup = Supervisor("test")
    started = asyncio.Event()
    cancelled = asyncio.Event()

    async def fails() -> None:
        raise RuntimeError("boom")

    async def runs_forever() -> None:
        started.set()
        try:
            await asyncio.Event().wait()
        finally:
            cancelled.set()

    await sup.spawn(fails(), "fails")
    await sup.spawn(runs_forever(), "runs forever")
    await asyncio.wait_for(started.wait(), 10)
    assert sup.busy == 1  # the failure ended only its own task
    await asyncio.wait_for(sup.close(), 10)
    assert cancelled.is_set() and sup.busy == 0

    async def never() -> None:
        raise AssertionError("spawned after close")

    await sup.spawn(never(), "late")  # refused quietly: nothing runs after close
    assert sup.busy == 0


async def test_admission_uses_the_same_verification(tmp_path: Path) -> None:
    bank = ChallengeBank([GenerationChallenge("What is 2 + 2?", "4")], [PairwiseChallenge("What is 2 + 2?", "4", "5")])
    good = FakeNode("10.0.0.1:1", "4", prefers=prefers_containing("4"))
    forger = FakeNode("10.0.0.2:1", "4", prefers=prefers_containing("4"), forge=True)
    s = Swarm(tmp_path, [good, forger], bank, calibration_generation=1, calibration_pairwise=1)
    gate = Gatekeeper(s.registry, s.client, bank, s.settings, np.random.default_rng(0))
    try:
        for node in (good, forger):
            nonce, _ = gate.challenges.issue(node.identity.public_key, "peer")
            app = Application(node.identity.public_key, nonce, node.address, node.record(0).models, 1,
                              node.identity.sign(signing.registration_bytes(nonce, node.identity.public_key, node.address)),
                              f"{node.address.split(':')[0]}:9")
            if node is good:
                admitted = await gate.register(app)
                assert admitted.trust.status == "probation"
            else:
                with pytest.raises(RegistrationRefused, match="0/1 generation challenges, 0/1 pairwise"):
                    await gate.register(app)
    finally:
        await s.close()


def test_the_fake_judge_prefers_what_it_is_told() -> None:
    judge = prefers_containing("4")
    assert (judge("q", "4", "5"), judge("q", "5", "4"), judge("q", "5", "6")) == (Preference.A, Preference.B, Preference.TIE)


async def test_per_topic_records_survive_the_store_and_the_ledger_replays_them(tmp_path: Path) -> None:
    s = Swarm(tmp_path, [honest(1), honest(2)], spot_check_rate=0.0)
    try:
        await admit(s.registry, s.nodes)
        node_id = s.nodes[0].node_id
        await s.registry.record([reputation.Event("evidence", node_id, 10.0 + i, "spot_check", v, f"r{i}", "judge", topic)
                                 for i, (v, topic) in enumerate([(1.0, "law"), (-1.0, "law"), (1.0, "physics"), (1.0, "")])])
        await s.registry.record([reputation.Event("evidence", node_id, 20.0 + i, "spot_check", v, f"g{i}", "generator", topic)
                                 for i, (v, topic) in enumerate([(1.0, "law"), (0.0, "physics"), (1.0, "physics")])])
        stored = s.store.load_nodes()  # what a restarted coordinator reads back
        trust = next(n.trust for n in stored if n.node_id == node_id)
        assert trust.judge_topics == (("law", 0.0, 2), ("physics", 1.0, 1)) and trust.judge_n == 4
        assert trust.generator_topics == (("law", 1.0, 1), ("physics", 1.0, 2)) and trust.generator_n == 3
        assert ledger.replay_and_compare(s.db).mismatches == []
    finally:
        await s.close()

"""Unit tests of the coordinator's pure modules on hand-made cases with known outcomes."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace

import numpy as np
import pytest

from swarmrank.coordinator import consensus, dispatch, evidence, judging_plan
from swarmrank.coordinator.domain import Candidate, Judgment, NodeRecord
from swarmrank.coordinator.registry import node_state
from swarmrank.coordinator.trust import Trust
from swarmrank.protos.types import ModelInfo, Preference


def node(i: int, model: str = "", rep: float = 0.5, conc: int = 1) -> NodeRecord:
    return NodeRecord(f"n{i}", b"k" * 32, f"127.0.0.1:{i}", (ModelInfo(model or f"m{i}"),), conc, 0.0, 0.0,
                      Trust(rep, rep, "established", 0.0, 5))


# --- dispatch ---------------------------------------------------------------------------------

def test_dispatch_prefers_distinct_models() -> None:
    nodes = [node(0, "a"), node(1, "a"), node(2, "b"), node(3, "c")]
    for seed in range(20):
        chosen = dispatch.choose_generators(nodes, 3, np.random.default_rng(seed))
        assert sorted(n.model_name for n in chosen) == ["a", "b", "c"]


def test_dispatch_fills_with_copies_and_respects_capacity() -> None:
    nodes = [node(0, "a"), node(1, "a"), node(2, "a", conc=2)]
    chosen = dispatch.choose_generators(nodes, 5, np.random.default_rng(0), in_flight={"n0": 1, "n2": 1})
    assert sorted(n.node_id for n in chosen) == ["n1", "n2"]  # n0 is at capacity


def test_dispatch_weights_by_reputation_with_exploration() -> None:
    nodes = [node(0, rep=1.0), node(1, rep=0.01)]
    rng = np.random.default_rng(0)
    firsts = Counter(dispatch.choose_generators(nodes, 1, rng)[0].node_id for _ in range(2000))
    assert firsts["n0"] > 5 * firsts["n1"] > 0  # the weak node still gets explored


# --- judging plan -------------------------------------------------------------------------------

@pytest.mark.parametrize("n", [2, 3, 5, 6, 9, 16, 31])
def test_schedule_both_orders_connected_sparse(n: int) -> None:
    pairs = judging_plan.schedule(n, np.random.default_rng(n))
    assert len(set(pairs)) == len(pairs) and all(a != b for a, b in pairs)
    assert all((b, a) in pairs for a, b in pairs)  # both orders
    if n <= judging_plan.FULL_ROUND_ROBIN_MAX:
        assert len(pairs) == n * (n - 1)
    else:
        assert len(pairs) <= 3 * n + 2  # ~3n instead of n(n-1)
    # connected: every answer reachable from answer 0
    seen, frontier = {0}, [0]
    while frontier:
        a = frontier.pop()
        for x, y in pairs:
            if x == a and y not in seen:
                seen.add(y)
                frontier.append(y)
    assert seen == set(range(n))


def test_assignment_never_self_judges_and_is_balanced() -> None:
    n = 8
    authors = [frozenset({f"n{i}"}) for i in range(n)]
    judges = [f"n{i}" for i in range(n)]
    pairs = judging_plan.schedule(n, np.random.default_rng(1))
    planned, unassigned = judging_plan.assign(pairs, authors, judges, np.random.default_rng(2), round_tag="t")
    assert not unassigned and len(planned) == len(pairs)
    for p in planned:
        assert p.judge not in authors[p.answer_a] | authors[p.answer_b]
    load = Counter(p.judge for p in planned)
    assert max(load.values()) - min(load.values()) <= 2  # pairs are assigned whole: both orders
    # the two orders of a pair go to the same judge, so its position bias cancels out
    by_pair: dict[tuple[int, int], set[str]] = {}
    for p in planned:
        by_pair.setdefault((min(p.answer_a, p.answer_b), max(p.answer_a, p.answer_b)), set()).add(p.judge)
    assert all(len(js) == 1 for js in by_pair.values())


def test_a_panel_judges_each_pair_in_both_orders_without_authors() -> None:
    authors = [frozenset({"a"}), frozenset({"b"}), frozenset({"c"})]
    judges = ["a", "b", "c", "j1", "j2", "j3"]
    pairs = judging_plan.schedule(3, np.random.default_rng(1))
    planned, unassigned = judging_plan.assign(pairs, authors, judges, np.random.default_rng(2), round_tag="t", per_pair=3)
    assert not unassigned and len({p.comparison_id for p in planned}) == len(planned) == 3 * len(pairs)
    per_pair: dict[tuple[int, int], Counter[str]] = {}
    for p in planned:
        assert p.judge not in authors[p.answer_a] | authors[p.answer_b]
        per_pair.setdefault((min(p.answer_a, p.answer_b), max(p.answer_a, p.answer_b)), Counter())[p.judge] += 1
    assert all(len(c) == 3 and set(c.values()) == {2} for c in per_pair.values())  # 3 judges, each both orders
    # a panel larger than the eligible judges gets every eligible judge
    planned, _ = judging_plan.assign([(0, 1), (1, 0)], authors, ["a", "b", "j1"], np.random.default_rng(0), round_tag="t", per_pair=5)
    assert {p.judge for p in planned} == {"j1"} and len(planned) == 2


def test_assignment_reports_pairs_without_eligible_judge() -> None:
    authors = [frozenset({"x", "y"}), frozenset({"z"})]
    planned, unassigned = judging_plan.assign([(0, 1), (1, 0)], authors, ["x", "y", "z"], np.random.default_rng(0), round_tag="t")
    assert planned == [] and unassigned == [(0, 1), (1, 0)]


def test_batches_split_per_judge() -> None:
    planned = [judging_plan.PlannedComparison(str(i), 0, 1, "j" if i < 5 else "k") for i in range(7)]
    b = judging_plan.batches(planned, 2)
    assert [len(x) for x in b["j"]] == [2, 2, 1] and [len(x) for x in b["k"]] == [2]


# --- consensus --------------------------------------------------------------------------------

def judgment(a: int, b: int, pref: Preference, judge: str = "j", weight: float = 1.0) -> Judgment:
    return Judgment(judge, f"{a}{b}{judge}", a, b, pref, 0.0, "", weight, b"", b"")


def test_aggregate_known_winner() -> None:
    js = [judgment(0, 1, Preference.A), judgment(1, 0, Preference.B), judgment(0, 2, Preference.A),
          judgment(2, 0, Preference.B), judgment(1, 2, Preference.A), judgment(2, 1, Preference.B)]
    c = consensus.aggregate(3, js, [1, 1, 1])
    assert c.ranking == [0, 1, 2] and c.confidence > 0.5
    assert c.win_probability[c.winner] == pytest.approx(0.5)


def test_position_bias_cancels_out() -> None:
    # An always-"A" judge says nothing once both orders are judged.
    js = [judgment(0, 1, Preference.A), judgment(1, 0, Preference.A)]
    c = consensus.aggregate(2, js, [1, 1])
    assert c.strengths[0] == pytest.approx(c.strengths[1]) and c.confidence == pytest.approx(0.5)


def test_reputation_weights_decide_between_disagreeing_judges() -> None:
    js = [judgment(0, 1, Preference.A, "good", 0.9), judgment(1, 0, Preference.B, "good", 0.9),
          judgment(0, 1, Preference.B, "bad", 0.1), judgment(1, 0, Preference.A, "bad", 0.1)]
    assert consensus.aggregate(2, js, [1, 1]).winner == 0


def test_no_judgments_falls_back_to_votes() -> None:
    c = consensus.aggregate(3, [], [0.5, 1.5, 0.7])
    assert c.ranking == [1, 2, 0]


def test_support_counts_every_author_of_the_same_text() -> None:
    cands = [Candidate(f"c{i}", f"n{i}", "m", t, b"", b"") for i, t in enumerate(["Paris", " Paris\n", "Rome"])]
    trusts = {f"n{i}": Trust(0.5, 0.5, "probation", 0.0, 0) for i in range(3)}
    groups = consensus.text_groups(cands)
    votes = consensus.generator_votes(cands, groups, trusts)
    assert groups == [0, 0, 1] and votes == [0.0, 0.0]  # no record, no vote
    assert consensus.support(cands, groups, votes, trusts) == pytest.approx([1e-3, 0.5e-3])


def proven(right: int, n: int, topics: tuple[tuple[str, float, int], ...] = ()) -> Trust:
    return Trust(0.9, 0.9, "established", 0.0, 50, float(right), n, 0.0, 0, 0, (), topics)


def test_generator_votes_are_evidence_weights_of_the_top_voters_on_the_topic(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(consensus, "TOP_VOTERS", 3)
    texts = ["(A)", "(B)", "(A)", "(C)", "(D)", "(B)"]
    cands = [Candidate(f"c{i}", f"n{i}", "m", t, b"", b"") for i, t in enumerate(texts)]
    groups = consensus.text_groups(cands)
    rights = [80, 80, 75, 70, 60, 95]  # of 100 spot checks: n2, n3 and n4 are not among the top three voters
    trusts = {f"n{i}": proven(r, 100) for i, r in enumerate(rights)}
    w = {i: consensus.generator_weight(trusts[f"n{i}"], 0.25) for i in range(6)}
    assert w[5] > w[0] == w[1] > w[2] > w[3] > w[4] > 0
    question = "Which?\n\nOptions:\nA) w\nB) x\nC) y\nD) z"  # four options: chance 0.25
    assert consensus.generator_votes(cands, groups, trusts, question) == pytest.approx([w[0], w[1] + w[5], 0.0, 0.0])
    # On law n2 has been right every time and n5 never: n2 votes there, n5 does not.
    trusts["n2"] = proven(75, 100, (("law", 40.0, 40),))
    trusts["n5"] = proven(95, 100, (("law", 0.0, 40),))
    law = consensus.generator_votes(cands, groups, trusts, "Subject: law\n\n" + question)
    assert law == pytest.approx([w[0] + consensus.generator_weight(trusts["n2"], 0.25, "law"), w[1], 0.0, 0.0])
    assert consensus.generator_weight(trusts["n2"], 0.25, "law") > w[0] > consensus.generator_weight(trusts["n5"], 0.25, "law")
    # On probation a vote is squeezed below the cap; quarantined, it is gone.
    assert 0 < consensus.generator_weight(replace(trusts["n0"], status="probation"), 0.25) < evidence.PROBATION_WEIGHT_CAP
    assert consensus.generator_weight(replace(trusts["n0"], status="quarantined"), 0.25) == 0.0


def test_proven_generators_outvote_an_unproven_one_without_judges() -> None:
    cands = [Candidate(f"c{i}", f"n{i}", "m", t, b"", b"") for i, t in enumerate(["42", "41", "42"])]
    trusts = {"n0": proven(70, 100), "n1": proven(90, 100), "n2": proven(70, 100)}
    c = consensus.rank_candidates(cands, [], trusts, prompt="What is six times seven?")
    assert c.winner == 0 and c.ranks == [1, 2, 1]  # two proven votes beat one stronger one
    trusts["n2"] = Trust(0.5, 0.5, "probation", 0.0, 0)
    assert consensus.rank_candidates(cands, [], trusts, prompt="What is six times seven?").winner == 1


def test_judges_still_decide_between_answers_of_equally_proven_generators() -> None:
    # Free-form answers of two generators with the same record: their votes cancel, the judges decide;
    # a stronger writer's vote does not outweigh a proven judge's verdicts in both orders.
    cands = [Candidate(f"c{i}", f"n{i}", "m", t, b"", b"") for i, t in enumerate(["41", "42"])]
    trusts = {"n0": proven(70, 100), "n1": proven(70, 100)}
    judged = [judgment(0, 1, Preference.B, "j", 2.0), judgment(1, 0, Preference.A, "j", 2.0)]
    assert consensus.rank_candidates(cands, judged, trusts, prompt="What is six times seven?").winner == 1
    assert consensus.rank_candidates(cands, [], trusts, prompt="What is six times seven?").confidence == pytest.approx(0.5)
    trusts["n0"] = proven(75, 100)
    assert consensus.rank_candidates(cands, judged, trusts, prompt="What is six times seven?").winner == 1


def test_node_state_from_heartbeats() -> None:
    n = node(0)
    assert node_state(n, now=2.0, interval=1.0) == "healthy"
    assert node_state(n, now=5.0, interval=1.0) == "unhealthy"
    assert node_state(n, now=50.0, interval=1.0) == "gone"
    failed = NodeRecord(**{**n.__dict__, "failed_unix": 1.0})
    assert node_state(failed, now=1.5, interval=1.0) == "unhealthy"


# --- consensus v2: hierarchy, selection, evidence ------------------------------------------------

def test_hierarchy_a_proven_judge_outweighs_correlated_weak_ones_and_its_silence_hands_over() -> None:
    cands = [Candidate(f"c{i}", f"g{i}", "m", t, b"", b"") for i, t in enumerate(["right", "wrong", "other"])]
    strong = [judgment(0, 1, Preference.A, "strong", 1.0), judgment(1, 0, Preference.B, "strong", 1.0)]
    weak = [judgment(a, b, p, f"weak{k}", 0.3) for k in range(5) for a, b, p in ((0, 1, Preference.B), (1, 0, Preference.A))]
    # five weak judges (3 x 0.3 > 1.0 in a plain weighted sum) agree on the wrong answer: the strong judge leads
    assert consensus.rank_candidates(cands, strong + weak, {}).winner == 0
    # the strong judge is position-biased on the pair: it says nothing, the weak tier decides
    biased = [judgment(0, 1, Preference.A, "strong", 1.0), judgment(1, 0, Preference.A, "strong", 1.0)]
    weighted = consensus.hierarchical(biased + weak, [0, 1, 2])
    assert all(j.weight == 0.0 for j in weighted if j.judge_node_id == "strong")
    assert consensus.rank_candidates(cands, biased + weak, {}).winner == 1


def test_client_rounds_go_to_the_strongest_proven_generators() -> None:
    def proven(i: int, right: int, n: int) -> NodeRecord:
        return NodeRecord(f"n{i}", b"k" * 32, "", (ModelInfo(f"m{i}"),), 1, 0.0, 0.0,
                          Trust(0.5, 0.5, "established", 0.0, 5, float(right), n))
    nodes = [proven(0, 2, 10), proven(1, 9, 10), proven(2, 90, 100), proven(3, 5, 10)]
    for seed in range(5):
        chosen = dispatch.choose_generators(nodes, 2, np.random.default_rng(seed), explore=False)
        assert [n.node_id for n in chosen] == ["n2", "n1"]  # 90/100 is surer than 9/10
    explored = {n.node_id for seed in range(50)
                for n in dispatch.choose_generators(nodes, 2, np.random.default_rng(seed), probation_checks=10)}
    assert explored == {"n0", "n1", "n2", "n3"}  # once past probation, spot checks reach everyone


def test_spot_checks_go_to_short_records_first() -> None:
    def measured(i: int, n: int, rep: float) -> NodeRecord:
        return NodeRecord(f"n{i}", b"k" * 32, "", (ModelInfo(f"m{i}"),), 1, 0.0, 0.0,
                          Trust(rep, rep, "established", 0.0, 5, float(n // 2), n))
    # two newcomers with no reputation yet, and six measured nodes with a high one
    nodes = [measured(i, 100, 0.9) for i in range(6)] + [measured(6, 0, 0.0), measured(7, 3, 0.0)]
    for seed in range(20):
        chosen = {n.node_id for n in dispatch.choose_generators(nodes, 3, np.random.default_rng(seed), probation_checks=10)}
        assert {"n6", "n7"} <= chosen  # the short records are measured first
    # without a probation length the weights (exploration + reputation) decide, as before
    rare = Counter(n.node_id for seed in range(200)
                   for n in dispatch.choose_generators(nodes, 3, np.random.default_rng(seed), probation_checks=0))
    assert rare["n6"] + rare["n7"] < 100


def test_judge_weights_keep_the_top_few_and_fall_back_to_equal_at_the_start() -> None:
    from swarmrank.coordinator import reputation

    def judge(right: int, n: int) -> Trust:
        return Trust(0.5, 0.5, "established", 0.0, 5, 0.0, 0, float(2 * right - n), n,
                     judge_disputed_sum=float(2 * right - n), judge_disputed_n=n)
    trusts = {"a": judge(95, 100), "b": judge(80, 100), "c": judge(70, 100), "d": judge(50, 100)}
    w = reputation.judge_weights(trusts, sorted(trusts), top=2)
    assert w["a"] > w["b"] > 0 and w["c"] == 0 and w["d"] == 0
    fresh = {j: Trust(0.2, 0.2, "probation", 0.0, 0) for j in "xyz"}
    assert set(reputation.judge_weights(fresh, sorted(fresh), top=2).values()) == {reputation.UNPROVEN_WEIGHT}


def test_numbers_with_thousands_separators_compare_as_numbers() -> None:
    from swarmrank.protos.answers import same_answer
    from swarmrank.node.backends.adversarial import wrong_answer

    assert same_answer("The answer is 1600.", "1,600") and same_answer("so 1,600 in all", "1600")
    assert wrong_answer("1,600") == "1601" and not same_answer("1601", "1,600")


def test_likelihood_verdicts_have_no_position() -> None:
    from swarmrank.node.backends.judging import verdict_from_likelihoods

    ab, ba = verdict_from_likelihoods(-1.2, -2.0), verdict_from_likelihoods(-2.0, -1.2)
    assert (ab.preference, ba.preference) == (Preference.A, Preference.B)
    assert ab.confidence == pytest.approx(ba.confidence) and ab.confidence > 0.5
    assert verdict_from_likelihoods(-1.0, -1.01).preference == Preference.TIE


def test_probation_weights_stay_capped_but_keep_their_order() -> None:
    from swarmrank.coordinator import evidence
    assert 0 < evidence.on_probation(0.5) < evidence.on_probation(2.0) < evidence.PROBATION_WEIGHT_CAP
    fresh = Trust(0.5, 0.5, "probation", 0.0, 0, 0.0, 0, 100.0, 100, judge_disputed_sum=100.0, judge_disputed_n=100)
    assert 0 < consensus.judge_weight(fresh) < evidence.PROBATION_WEIGHT_CAP



def test_voters_disagree_only_when_the_round_s_voters_back_different_answers() -> None:
    def proven(right: int) -> Trust:
        return Trust(0.9, 0.9, "established", 0.0, 50, float(right), 100)
    prompt = "Q?\nA) x\nB) y\nC) z\nD) w"
    cands = [Candidate(f"c{i}", f"n{i}", "m", text, b"", b"") for i, text in enumerate(["A", "A", "B"])]
    trusts = {"n0": proven(80), "n1": proven(70), "n2": proven(10)}  # n2 no better than chance: no vote
    assert not consensus.voters_disagree(cands, trusts, prompt)
    trusts["n2"] = proven(60)
    assert consensus.voters_disagree(cands, trusts, prompt)
    assert consensus.voters_disagree(cands, {}, prompt)  # nobody votes yet: judges decide everything
    assert consensus.voters_disagree(cands, {"n0": proven(80)}, prompt)  # one vote is not an agreement


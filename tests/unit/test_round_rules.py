"""The rules a round applies, each on its own: verification, ask validation, failed calls, spot-check
planting, the ledger's round summary, win probability."""

from __future__ import annotations

import numpy as np
import pytest

from swarmrank.coordinator import failed_calls, ledger, spot_checks
from swarmrank.coordinator.ask_params import normalise
from swarmrank.coordinator.calibration import ChallengeBank, GenerationChallenge, PairwiseChallenge
from swarmrank.coordinator.domain import AskParams, Candidate, Judgment, RankedCandidate, RoundResult
from swarmrank.coordinator.errors import InvalidAsk
from swarmrank.coordinator.node_client import JudgeReply, NodeCallError, ReceivedCandidate, ReceivedVerdict
from swarmrank.coordinator.settings import CoordinatorSettings
from swarmrank.coordinator.verification import candidate_is_signed, check_verdicts
from swarmrank.kernels import fit, p_beats, win_probability
from swarmrank.protos import merkle, signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.types import Preference

NODE = Identity.generate()
OTHER = Identity.generate()
NONCE = b"n" * 16


def candidate(signer: Identity = NODE, *, node_id: str = NODE.node_id, round_id: str = "r1", nonce: bytes = NONCE,
              text: str = "Paris") -> ReceivedCandidate:
    signature = signer.sign(signing.candidate_bytes(round_id, nonce, node_id, "m", text))
    return ReceivedCandidate(round_id, nonce, node_id, "m", text, 1, 0.1, signature)


# --- verification --------------------------------------------------------------------------------

def test_a_candidate_signed_by_its_node_for_this_round_verifies() -> None:
    assert candidate_is_signed(NODE.public_key, NODE.node_id, "r1", NONCE, candidate())


@pytest.mark.parametrize("got", [
    candidate(OTHER),                         # another key signed it
    candidate(node_id=OTHER.node_id),         # names another node
    candidate(round_id="r0"),                 # replayed from another round
    candidate(nonce=b"o" * 16),               # answers another request
])
def test_a_candidate_for_another_node_round_or_nonce_is_rejected(got: ReceivedCandidate) -> None:
    assert not candidate_is_signed(NODE.public_key, NODE.node_id, "r1", NONCE, got)


def verdict(cid: str, preference: Preference | None = Preference.A) -> ReceivedVerdict:
    return ReceivedVerdict(cid, preference, 0.9, "")


def reply(*signed: tuple[ReceivedVerdict, tuple[str, str]], signer: Identity = NODE, judge: str = NODE.node_id,
          round_id: str = "r1") -> JudgeReply:
    """A judge's reply: the verdicts, each with the texts it was signed over, under one signature."""
    leaves = [signing.verdict_leaf(round_id, NONCE, NODE.node_id, v.comparison_id, signing.sha256(a), signing.sha256(b),
                                   int(v.preference or 0))
              for v, (a, b) in signed]
    payload = signing.verdicts_bytes(round_id, NONCE, NODE.node_id, merkle.root(leaves), len(leaves))
    return JudgeReply(judge, tuple(v for v, _ in signed), signer.sign(payload))


ASKED = {"q0": ("a", "b"), "q1": ("b", "a"), "q2": ("a", "c")}
DIGESTS = {cid: (signing.sha256(a), signing.sha256(b)) for cid, (a, b) in ASKED.items()}  # what check_verdicts is given


def test_a_signed_reply_is_accepted_whole_and_each_verdict_audits_alone() -> None:
    checked = check_verdicts(NODE.public_key, NODE.node_id, "r1", NONCE,
                             reply((verdict("q0"), ASKED["q0"]), (verdict("q1", Preference.TIE), ASKED["q1"]),
                                   (verdict("q2", Preference.B), ASKED["q2"])), DIGESTS)
    assert not checked.rejected and [a.verdict.comparison_id for a in checked.accepted] == ["q0", "q1", "q2"]
    signature = reply((verdict("q0"), ASKED["q0"]), (verdict("q1", Preference.TIE), ASKED["q1"]),
                      (verdict("q2", Preference.B), ASKED["q2"])).signature
    for a in checked.accepted:
        texts = ASKED[a.verdict.comparison_id]
        fields = ("r1", NONCE, NODE.node_id, a.verdict.comparison_id, *texts)
        assert signing.verdict_is_signed(NODE.public_key, signature, a.proof, a.leaf_index, a.leaf_count, *fields,
                                         int(a.verdict.preference or 0))
        # the same proof does not vouch for another preference, other texts or another position
        assert not signing.verdict_is_signed(NODE.public_key, signature, a.proof, a.leaf_index, a.leaf_count, *fields, 9)
        assert not signing.verdict_is_signed(NODE.public_key, signature, a.proof, a.leaf_index, a.leaf_count,
                                             *fields[:4], "X", texts[1], int(a.verdict.preference or 0))
        assert not signing.verdict_is_signed(NODE.public_key, signature, a.proof, (a.leaf_index + 1) % 3, a.leaf_count,
                                             *fields, int(a.verdict.preference or 0))
        assert not signing.verdict_is_signed(NODE.public_key, signature, a.proof, a.leaf_index, a.leaf_count + 1,
                                             *fields, int(a.verdict.preference or 0))


@pytest.mark.parametrize("bad, penalty", [
    (reply((verdict("q0"), ASKED["q0"]), (verdict("zz"), ("a", "b"))), "unasked_verdict"),    # never asked
    (reply((verdict("q0"), ASKED["q0"]), (verdict("q0"), ASKED["q0"])), "unasked_verdict"),   # the same comparison twice
    (reply((verdict("q0"), ASKED["q0"]), signer=OTHER), "bad_signature"),                      # forged
    (reply((verdict("q0"), ("a", "X"))), "bad_signature"),                                     # signed over other texts
    (reply((verdict("q0"), ASKED["q0"]), round_id="r0"), "bad_signature"),                     # replayed from another round
    (reply((verdict("q0", None), ASKED["q0"])), "bad_signature"),                              # a preference outside the enum
    (reply((verdict("q0"), ASKED["q0"]), judge=OTHER.node_id), "bad_signature"),               # in another judge's name
])
def test_a_bad_reply_is_rejected_whole_with_one_penalty(bad: JudgeReply, penalty: str) -> None:
    checked = check_verdicts(NODE.public_key, NODE.node_id, "r1", NONCE, bad, DIGESTS)
    assert not checked.accepted and [r.penalty for r in checked.rejected] == [penalty]


# --- ask validation ------------------------------------------------------------------------------

def test_an_ask_gets_the_defaults_of_the_settings() -> None:
    s = CoordinatorSettings(k=3, default_max_tokens=50, system_prompt="be brief")
    assert normalise(AskParams("Hi?"), s) == AskParams("Hi?", 3, 50, 0.0, "be brief")
    assert normalise(AskParams("Hi?", k=4, max_tokens=9, system="x"), s) == AskParams("Hi?", 4, 9, 0.0, "x")


@pytest.mark.parametrize("params, fragment", [
    (AskParams(""), "prompt"),
    (AskParams("Hi?", k=1), "k must be"),
    (AskParams("Hi?", k=99), "k must be"),
    (AskParams("Hi?", max_tokens=100_000), "max_tokens"),
    (AskParams("Hi?", temperature=-1.0), "temperature"),
])
def test_a_bad_ask_names_its_problem(params: AskParams, fragment: str) -> None:
    with pytest.raises(InvalidAsk, match=fragment):
        normalise(params, CoordinatorSettings())


# --- failed calls --------------------------------------------------------------------------------

@pytest.mark.parametrize("exc, code, penalty", [
    (NodeCallError("DEADLINE_EXCEEDED", "slow"), "DEADLINE_EXCEEDED", "no_show"),
    (NodeCallError("UNAVAILABLE", "gone"), "UNAVAILABLE", "no_show"),
    (TimeoutError(), "TIMEOUT", "no_show"),
    (NodeCallError("INVALID_ARGUMENT", "refused"), "INVALID_ARGUMENT", None),
    (NodeCallError("RESOURCE_EXHAUSTED", "busy"), "RESOURCE_EXHAUSTED", None),
])
def test_only_a_no_show_costs_a_penalty(exc: NodeCallError | TimeoutError, code: str, penalty: str | None) -> None:
    failure = failed_calls.classify(exc)
    assert (failure.code, failure.penalty, failure.no_show) == (code, penalty, penalty is not None)
    assert failure.reason


# --- spot checks ---------------------------------------------------------------------------------

def cand(i: int, text: str) -> Candidate:
    return Candidate(f"c{i}", f"n{i}", "m", text, bytes([i]) * 16, b"sig")


def test_the_known_pair_is_planted_for_every_judge_in_both_orders_without_author() -> None:
    known = PairwiseChallenge("2+2?", "4", "5")
    planting = spot_checks.plant([cand(0, "4"), cand(1, "5")], ["j2", "j1"], known)
    assert [c.text for c in planting.items] == ["4", "5", "4", "5"]
    assert planting.items[2].node_id == planting.items[3].node_id == ""  # no author: nobody is excluded
    assert planting.items[2].nonce != planting.items[0].nonce  # a fresh nonce, even for the same text
    assert planting.planted == ((2, 3, "j1"), (3, 2, "j1"), (2, 3, "j2"), (3, 2, "j2"))
    assert spot_checks.plant([cand(0, "4")], ["j1"], None) == spot_checks.Planting((cand(0, "4"),), ())


def judgment(a: int, b: int) -> Judgment:
    return Judgment("j", f"{a}-{b}", a, b, Preference.A, 1.0, "", 1.0, b"", b"")


def test_planted_judgments_are_set_apart() -> None:
    real, planted = spot_checks.split([judgment(0, 1), judgment(2, 3), judgment(1, 0), judgment(3, 2)], 2)
    assert [j.comparison_id for j in real] == ["0-1", "1-0"] and [j.comparison_id for j in planted] == ["2-3", "3-2"]


def test_spot_checks_follow_the_rate_once_every_record_is_long_and_score_planted_answers() -> None:
    bank = ChallengeBank.arithmetic(size=10)
    rng = np.random.default_rng(0)
    long = {"a": 50, "b": 40}  # every record at least probation_checks (40) long: the base rate
    assert spot_checks.Plan([], spot_checks.Schedule(1.0)).after_round(long, rng) == []  # no bank, no spot check
    assert spot_checks.Plan(bank.generation, spot_checks.Schedule(0.0)).after_round({"a": 0}, rng) == []  # 0: off
    plan = spot_checks.Plan(bank.generation, spot_checks.Schedule(0.3))
    assert spot_checks.Plan(bank.generation, spot_checks.Schedule(1.0)).after_round(long, rng)[0] in bank.generation
    picks = sum(len(plan.after_round(long, rng)) for _ in range(2000))
    assert 450 < picks < 750
    challenge = GenerationChallenge("2+2?", "4")
    assert spot_checks.correctness([cand(0, "4"), cand(1, "The answer is 5")], challenge) == [True, False, True, False]


def test_a_short_record_opens_the_probation_budget_until_it_is_long_or_the_cap_is_spent() -> None:
    bank = ChallengeBank.arithmetic(size=10)
    rng = np.random.default_rng(1)
    plan = spot_checks.Plan(bank.generation, spot_checks.Schedule(0.05, probation_rate=2.0, probation_checks=10))
    assert plan.short({"old": 10, "new": 3}) == ["new"]
    assert [len(plan.after_round({"old": 10, "new": n}, rng)) for n in range(3)] == [2, 2, 2]  # a burst per round
    half = spot_checks.Plan(bank.generation, spot_checks.Schedule(0.0001, probation_rate=0.5, probation_checks=1000))
    assert 400 < sum(len(half.after_round({"new": 0}, rng)) for _ in range(1000)) < 600  # a fractional rate: on average
    # A node that never gives evidence (say, a judge that always abstains) keeps the budget open
    # only for PROBATION_CAP x probation_checks spot checks; then the base rate holds.
    silent = spot_checks.Plan(bank.generation, spot_checks.Schedule(0.0001, probation_rate=1.0, probation_checks=10))
    spent = [len(silent.after_round({"silent": 0}, rng)) for _ in range(spot_checks.PROBATION_CAP * 10 + 20)]
    assert sum(spent[: spot_checks.PROBATION_CAP * 10]) == spot_checks.PROBATION_CAP * 10 and sum(spent[-20:]) == 0
    off = spot_checks.Plan(bank.generation, spot_checks.Schedule(0.0001, probation_rate=0.0))
    assert sum(len(off.after_round({"new": 0}, rng)) for _ in range(100)) == 0  # no probation budget: the base rate


def test_spot_check_questions_are_dealt_without_repeats_within_a_pass() -> None:
    bank = ChallengeBank.arithmetic(size=7)
    plan = spot_checks.Plan(bank.generation, spot_checks.Schedule(1.0))
    rng = np.random.default_rng(2)
    first, second = [plan.draw(rng) for _ in range(7)], [plan.draw(rng) for _ in range(7)]
    assert sorted(c.question for c in first) == sorted(c.question for c in second) == sorted(c.question for c in bank.generation)
    assert first != second  # each pass in a fresh order
    again = spot_checks.Plan(bank.generation, spot_checks.Schedule(1.0))
    assert [again.draw(np.random.default_rng(2)) for _ in range(1)] == first[:1]  # seeded: the same deal


def test_a_node_is_measured_by_the_shorter_record_of_the_roles_it_plays() -> None:
    from swarmrank.coordinator.domain import NodeRecord
    from swarmrank.coordinator.trust import Trust
    from swarmrank.protos.types import ModelInfo, Role

    def node(role: Role) -> NodeRecord:
        trust = Trust(0.5, 0.5, "probation", 0.0, 0, 30.0, 40, 10.0, 12, judge_biased=3)
        return NodeRecord("n", b"k" * 32, "", (ModelInfo("m", role=role),), 1, 0.0, 0.0, trust)
    assert spot_checks.measured(node(Role.GENERATE_AND_JUDGE)) == 15  # 12 decided + 3 position-biased verdicts
    assert spot_checks.measured(node(Role.GENERATE_ONLY)) == 40
    assert spot_checks.measured(node(Role.JUDGE_ONLY)) == 15


# --- ledger summary ------------------------------------------------------------------------------

def test_a_round_summary_names_the_answer_by_hash_and_sorts_generators() -> None:
    winner = cand(1, "Paris")
    result = RoundResult("r1", "Capital?", "Paris", "n1", "c1", 0.91234567,
                         (RankedCandidate(winner, 1.0, 0.1, 0.5, 1),), (), (), 1.0, 2.0)
    body = ledger.round_summary(result, 5.0, spot_check=False, generators=["n2", "n1"], judgments=4, failures=1)
    assert body == {"kind": "round", "round": "r1", "ts": 5.0, "spot_check": False,
                    "answer_sha256": signing.sha256("Paris").hex(), "winner": "n1", "confidence": 0.912346,
                    "generators": ["n1", "n2"], "judgments": 4, "failures": 1}
    assert "Paris" not in str({k: v for k, v in body.items() if k != "answer_sha256"})  # no texts in the ledger


# --- win probability -----------------------------------------------------------------------------

def test_win_probability_is_the_bradley_terry_probability_of_the_leader() -> None:
    theta = np.array([0.0, 1.0, -1.0])
    p = win_probability(theta, 1)
    assert p[1] == pytest.approx(0.5)
    assert p[0] == pytest.approx(np.exp(1.0) / (np.exp(1.0) + 1.0))
    assert p[2] == pytest.approx(np.exp(1.0) / (np.exp(1.0) + np.exp(-1.0)))
    e = np.exp(1.0)
    assert p_beats(np.array([1.0, 0.0]), np.array([0.0, 1.0])) == pytest.approx([e / (e + 1.0), 1.0 / (e + 1.0)])
    result = fit(3, [(1, 0, 1.0), (1, 2, 1.0), (0, 2, 1.0)])
    assert np.allclose(result.win_probability, win_probability(result.strengths, result.leader))

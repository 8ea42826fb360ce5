"""From signed verdicts to a ranking (pure): weighted Bradley-Terry over the distinct answers.

Judging happens per candidate: a node may judge another node's candidate even when its own text is
identical (otherwise an honest majority that agrees could never judge its own answer). Aggregation
happens per distinct answer: candidates with the same text are one Bradley-Terry item, so every
comparison won by any of them counts for all.

Generators vote too (``generator_votes``): writing an answer is evidence that it is right, worth the
log-odds of the generator's accuracy above chance for the question's format and topic (its record on
the topic, shrunk toward its overall one), the same units as a judge's verdict weight (log-odds of
its accuracy on a pair). Only the ``TOP_VOTERS`` generators with the most evidence vote, as only the
top judges count: a few strong, proven members decide, weak correlated ones do not dilute them. Each
vote enters the fit as wins of the answer over every other answer (measured in the MMLU-Pro replay:
README, "Consensus quality on real answers", also the variants tried). An answer's "support" (those
votes, then its generators' running scores) breaks remaining ties. A judge's weight comes from the
spot checks whose voters disputed the answer (``voters_disagree``): where its verdicts can change one.

Judging is hierarchical (``hierarchical``): a judge that preferred the same position in both
orders of a pair said nothing about the answers and counts for nothing there; on each pair of
answers, the most reliable judge decides when it has a verdict (judges within ``LEAD`` of its
weight vote beside it), and when it has none (a tie, or position bias) every other judge votes with
its weight. Correlated weak judges cannot outvote a proven one, and a proven judge's silence hands
the pair to the rest of the panel instead of to a coin.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from swarmrank.kernels import DEFAULT_PRIOR, fit, win_probability
from swarmrank.protos.types import Preference

from . import evidence
from .domain import Candidate, Judgment
from .trust import Trust

OUTCOME = {Preference.A: 1.0, Preference.B: 0.0, Preference.TIE: 0.5}
LEAD = 1.0  # when a pair's heaviest judge speaks, judges weighing at least this fraction of it vote beside it
TOP_VOTERS = 4  # generators whose answers count as votes in a round (like ``reputation.TOP_JUDGES``)


@dataclass(frozen=True)
class Consensus:
    strengths: np.ndarray        # per candidate
    standard_errors: np.ndarray
    win_probability: np.ndarray  # P(winner beats candidate i)
    ranking: list[int]           # candidate indices, best first
    confidence: float            # P(winner beats runner-up); 1.0 with a single answer
    ranks: list[int] | None = None  # per item: 1 + position of its answer (identical answers share a rank)

    @property
    def winner(self) -> int:
        return self.ranking[0]


def text_groups(candidates: Sequence[Candidate]) -> list[int]:
    """For each candidate, the index of its distinct (trimmed) text, in order of first appearance."""
    index: dict[str, int] = {}
    return [index.setdefault(c.text.strip(), len(index)) for c in candidates]


def generator_weight(t: Trust | None, chance: float, topic: str = "") -> float:
    """Log-odds of the generator record's lower confidence bound above ``chance`` (0 without confident
    evidence), on the question's ``topic`` (``Trust.generator_record_on``), squeezed below the cap
    while on probation."""
    if t is None or not t.eligible:
        return 0.0
    w = evidence.weight(*t.generator_record_on(topic), chance)
    return evidence.on_probation(w) if t.status == "probation" else w


def _voter_weights(candidates: Sequence[Candidate], trusts: Mapping[str, Trust], prompt: str) -> dict[str, float]:
    """Per generator of the round: its vote's weight (0 outside the ``TOP_VOTERS`` heaviest)."""
    chance = evidence.chance_of(prompt) if prompt else evidence.FREE_FORM_CHANCE
    topic = evidence.topic_of(prompt)
    return evidence.select({c.node_id: generator_weight(trusts.get(c.node_id), chance, topic) for c in candidates}, TOP_VOTERS)


def generator_votes(candidates: Sequence[Candidate], group_of: Sequence[int], trusts: Mapping[str, Trust],
                    prompt: str = "") -> list[float]:
    """Per distinct answer: the summed weights of the ``TOP_VOTERS`` heaviest generators that wrote it."""
    weights = _voter_weights(candidates, trusts, prompt)
    votes = [0.0] * (max(group_of) + 1 if group_of else 0)
    for c, g in zip(candidates, group_of):
        votes[g] += weights[c.node_id]
    return votes


def voters_disagree(candidates: Sequence[Candidate], trusts: Mapping[str, Trust], prompt: str = "") -> bool:
    """Is the answer open after the round's votes: fewer than two voters, or voters backing more than
    one answer? Judging changes a round's answer only then, so only then does a spot check measure a
    judge where its verdicts count (``reputation.spot_check_events``)."""
    weights = _voter_weights(candidates, trusts, prompt)
    voters = [c.text.strip() for c in candidates if weights[c.node_id] > 0]
    return len(voters) < 2 or len(set(voters)) > 1


def support(candidates: Sequence[Candidate], group_of: Sequence[int], votes: Sequence[float],
            trusts: Mapping[str, Trust]) -> list[float]:
    """Per distinct answer, to order answers of equal strength: its generator ``votes``, plus a
    thousandth of the running scores of the eligible nodes that wrote it."""
    out = list(votes)
    for c, g in zip(candidates, group_of):
        t = trusts.get(c.node_id)
        if t is not None and t.eligible:
            out[g] += 1e-3 * t.generator
    return out


def judge_weight(t: Trust | None, topic: str = "") -> float:
    """Log-odds of the judge record's lower confidence bound above a coin (0 without confident
    evidence), on the question's ``topic`` (``Trust.judge_record_on``), squeezed below the cap while
    on probation."""
    if t is None or not t.eligible:
        return 0.0
    w = evidence.weight(*t.judge_record_on(topic), evidence.PAIRWISE_CHANCE)
    return evidence.on_probation(w) if t.status == "probation" else w


def _sign(preference: Preference, a: int, b: int) -> int:
    """+1 if a verdict on (a, b) prefers the lower-numbered answer of the two, -1 the other, 0 a tie."""
    if preference == Preference.TIE:
        return 0
    return 1 if (preference == Preference.A) == (a < b) else -1


def hierarchical(judgments: Sequence[Judgment], group_of: Sequence[int]) -> list[Judgment]:
    """The judgments with the weights they carry: 0 for a judge's verdicts on a candidate pair where
    it preferred the same position in both orders, and 0 on a pair of answers for judges lighter
    than ``LEAD`` times the heaviest judge with a verdict on it (``judgments`` use candidate indices)."""
    position: dict[tuple[str, int, int], list[Judgment]] = {}
    for j in judgments:
        position.setdefault((j.judge_node_id, min(j.answer_a, j.answer_b), max(j.answer_a, j.answer_b)), []).append(j)
    biased = {key for key, js in position.items()
              if len(js) == 2 and js[0].answer_a != js[1].answer_a and js[0].preference == js[1].preference != Preference.TIE}
    net: dict[tuple[int, int], dict[str, int]] = {}
    for key, js in position.items():
        if key in biased:
            continue
        pair = (min(group_of[key[1]], group_of[key[2]]), max(group_of[key[1]], group_of[key[2]]))
        signs = net.setdefault(pair, {})
        signs[key[0]] = signs.get(key[0], 0) + sum(_sign(j.preference, group_of[j.answer_a], group_of[j.answer_b]) for j in js)
    weight_of = {j.judge_node_id: j.weight for j in judgments}
    heaviest: dict[tuple[int, int], tuple[float, bool]] = {}  # per pair: the heaviest judge's weight, and did it speak
    for key, js in position.items():
        pair = (min(group_of[key[1]], group_of[key[2]]), max(group_of[key[1]], group_of[key[2]]))
        spoke = key not in biased and net.get(pair, {}).get(key[0], 0) != 0
        heaviest[pair] = max(heaviest.get(pair, (-1.0, False)), (weight_of[key[0]], spoke))
    lead = {pair: w if spoke else 0.0 for pair, (w, spoke) in heaviest.items()}
    out = []
    for j in judgments:
        a, b = group_of[j.answer_a], group_of[j.answer_b]
        pair = (min(a, b), max(a, b))
        key = (j.judge_node_id, min(j.answer_a, j.answer_b), max(j.answer_a, j.answer_b))
        keep = key not in biased and j.weight >= LEAD * lead.get(pair, 0.0)
        out.append(j if keep else replace(j, weight=0.0))
    return out


def rank_candidates(candidates: Sequence[Candidate], judgments: Sequence[Judgment], trusts: Mapping[str, Trust], *,
                    prior: float = DEFAULT_PRIOR, prompt: str = "") -> Consensus:
    """Fit over distinct answers, then give every candidate its answer's strength (ranking: by answer
    rank, then candidate order). Judgments keep their candidate indices."""
    group_of = text_groups(candidates)
    weighted = hierarchical(judgments, group_of)
    votes = generator_votes(candidates, group_of, trusts, prompt)
    rows = [(group_of[j.answer_a], group_of[j.answer_b], OUTCOME[j.preference]) for j in weighted]
    weights = [j.weight for j in weighted]
    for answer, v in enumerate(votes):
        if v > 0:  # a vote for an answer: wins over every other answer, worth the voters' weight
            rows += [(answer, other, 1.0) for other in range(len(votes)) if other != answer]
            weights += [v] * (len(votes) - 1)
    answers = _fit_answers(len(votes), rows, weights, support(candidates, group_of, votes, trusts), prior)
    place = {g: position for position, g in enumerate(answers.ranking)}
    g = np.asarray(group_of)
    ranking = sorted(range(len(candidates)), key=lambda i: (place[group_of[i]], i))
    return Consensus(answers.strengths[g], answers.standard_errors[g], answers.win_probability[g], ranking,
                     answers.confidence, [place[x] + 1 for x in group_of])


def aggregate(n_candidates: int, judgments: Sequence[Judgment], votes: Sequence[float], *, prior: float = DEFAULT_PRIOR) -> Consensus:
    """The Bradley-Terry consensus over ``n_candidates`` items from judgments between them (each
    weighted by its ``weight``); ``votes`` break ties in strength."""
    return _fit_answers(n_candidates, [(j.answer_a, j.answer_b, OUTCOME[j.preference]) for j in judgments],
                        [j.weight for j in judgments], votes, prior)


def _fit_answers(n_candidates: int, rows: Sequence[tuple[int, int, float]], weights: Sequence[float],
                 votes: Sequence[float], prior: float) -> Consensus:
    if n_candidates == 1:
        return Consensus(np.zeros(1), np.zeros(1), np.full(1, 0.5), [0], 1.0)
    comparisons = np.array(rows, dtype=np.float64).reshape(-1, 3)
    result = fit(n_candidates, comparisons, weights=np.array(weights, dtype=np.float64) if rows else None, prior=prior)
    theta = result.strengths
    # Strongest first; equal strengths (to 1e-9) fall back to votes, then to the answer's index.
    ranking = [int(i) for i in np.lexsort((np.arange(n_candidates), -np.asarray(votes, dtype=np.float64), -np.round(theta, 9)))]
    winner, runner_up = ranking[0], ranking[1]
    win = win_probability(theta, winner)
    return Consensus(theta, result.standard_errors, win, ranking, float(win[runner_up]))

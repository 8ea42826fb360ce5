"""From signed verdicts to a ranking (pure): weighted Bradley-Terry over the distinct answers.

Judging happens per candidate: a node may judge another node's candidate even when its own text is
identical (otherwise an honest majority that agrees could never judge its own answer). Aggregation
happens per distinct answer: candidates with the same text are one Bradley-Terry item, so every
comparison won by any of them counts for all. An answer's "support" (the summed generator scores of
the nodes that wrote it) breaks ties in strength, e.g. when no comparison could be judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np

from swarmrank.kernels import DEFAULT_PRIOR, fit, win_probability
from swarmrank.protos.types import Preference

from .domain import Candidate, Judgment
from .trust import Trust

OUTCOME = {Preference.A: 1.0, Preference.B: 0.0, Preference.TIE: 0.5}


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


def support(candidates: Sequence[Candidate], group_of: Sequence[int], trusts: Mapping[str, Trust]) -> list[float]:
    """Per distinct answer: the summed generator score of every node that wrote it."""
    votes = [0.0] * (max(group_of) + 1 if group_of else 0)
    for c, g in zip(candidates, group_of):
        votes[g] += trusts[c.node_id].generator if c.node_id in trusts else 0.0
    return votes


def rank_candidates(candidates: Sequence[Candidate], judgments: Sequence[Judgment], trusts: Mapping[str, Trust], *,
                    prior: float = DEFAULT_PRIOR) -> Consensus:
    """Fit over distinct answers, then give every candidate its answer's strength (ranking: by answer
    rank, then candidate order). Judgments keep their candidate indices."""
    group_of = text_groups(candidates)
    by_answer = [replace(j, answer_a=group_of[j.answer_a], answer_b=group_of[j.answer_b]) for j in judgments]
    answers = aggregate(max(group_of) + 1, by_answer, support(candidates, group_of, trusts), prior=prior)
    place = {g: position for position, g in enumerate(answers.ranking)}
    g = np.asarray(group_of)
    ranking = sorted(range(len(candidates)), key=lambda i: (place[group_of[i]], i))
    return Consensus(answers.strengths[g], answers.standard_errors[g], answers.win_probability[g], ranking,
                     answers.confidence, [place[x] + 1 for x in group_of])


def aggregate(n_candidates: int, judgments: Sequence[Judgment], votes: Sequence[float], *, prior: float = DEFAULT_PRIOR) -> Consensus:
    if n_candidates == 1:
        return Consensus(np.zeros(1), np.zeros(1), np.full(1, 0.5), [0], 1.0)
    comparisons = np.array([(j.answer_a, j.answer_b, OUTCOME[j.preference]) for j in judgments], dtype=np.float64)
    weights = np.array([j.weight for j in judgments], dtype=np.float64)
    result = fit(n_candidates, comparisons.reshape(-1, 3), weights=weights if len(judgments) else None, prior=prior)
    theta = result.strengths
    # Strongest first; equal strengths (to 1e-9) fall back to votes, then to the answer's index.
    ranking = [int(i) for i in np.lexsort((np.arange(n_candidates), -np.asarray(votes, dtype=np.float64), -np.round(theta, 9)))]
    winner, runner_up = ranking[0], ranking[1]
    win = win_probability(theta, winner)
    return Consensus(theta, result.standard_errors, win, ranking, float(win[runner_up]))

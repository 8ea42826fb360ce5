"""From signed verdicts to a ranking (pure): fit weighted Bradley-Terry over the candidates, rank.

Each candidate is an item, even when its text equals another's: merging them would leave only
nodes outside the majority to judge the majority's answer. Identical candidates are not compared
with each other (nothing to judge) and share their "support" (the summed reputations of the nodes
that wrote that text), which breaks ties in strength, e.g. when no comparison could be judged.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from swarmrank.kernels import fit
from swarmrank.protos.types import Preference

from .domain import Candidate, Judgment
from .trust import Trust

OUTCOME = {Preference.A: 1.0, Preference.B: 0.0, Preference.TIE: 0.5}
DEFAULT_PRIOR = 0.1


@dataclass(frozen=True)
class Consensus:
    strengths: np.ndarray        # per candidate
    standard_errors: np.ndarray
    win_probability: np.ndarray  # P(winner beats candidate i)
    ranking: list[int]           # candidate indices, best first
    confidence: float            # P(winner beats runner-up); 1.0 with a single candidate

    @property
    def winner(self) -> int:
        return self.ranking[0]


def support(candidates: Sequence[Candidate], trusts: Mapping[str, Trust]) -> list[float]:
    """Per candidate: the summed reputation of every node that wrote the same text."""
    by_text: dict[str, float] = {}
    for c in candidates:
        by_text[c.text.strip()] = by_text.get(c.text.strip(), 0.0) + (trusts[c.node_id].score if c.node_id in trusts else 0.0)
    return [by_text[c.text.strip()] for c in candidates]


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
    win = 1.0 / (1.0 + np.exp(theta - theta[winner]))
    return Consensus(theta, result.standard_errors, win, ranking, float(win[runner_up]))

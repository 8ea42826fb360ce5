"""From signed verdicts to a ranking (pure): group answers, fit weighted Bradley-Terry, rank.

Candidates with the same text (after trimming) are one answer: identical answers should not
compete, and a judge must not judge an answer it wrote under another candidate's name. An answer's
"votes" are the summed reputations of its authors; they only break ties in strength (for example
when no comparison could be judged).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from swarmrank.kernels import fit
from swarmrank.protos.types import Preference

from .domain import Candidate, Judgment

OUTCOME = {Preference.A: 1.0, Preference.B: 0.0, Preference.TIE: 0.5}
DEFAULT_PRIOR = 0.1


@dataclass(frozen=True)
class Answer:
    text: str
    candidate_indices: tuple[int, ...]
    authors: frozenset[str]


@dataclass(frozen=True)
class Consensus:
    strengths: np.ndarray        # per answer
    standard_errors: np.ndarray
    win_probability: np.ndarray  # P(winner beats answer i)
    ranking: list[int]           # answer indices, best first
    confidence: float            # P(winner beats runner-up); 1.0 with a single answer

    @property
    def winner(self) -> int:
        return self.ranking[0]


def group_answers(candidates: Sequence[Candidate]) -> list[Answer]:
    by_text: dict[str, list[int]] = {}
    for i, c in enumerate(candidates):
        by_text.setdefault(c.text.strip(), []).append(i)
    return [
        Answer(text, tuple(idx), frozenset(candidates[i].node_id for i in idx)) for text, idx in by_text.items()
    ]


def aggregate(n_answers: int, judgments: Sequence[Judgment], votes: Sequence[float], *, prior: float = DEFAULT_PRIOR) -> Consensus:
    if n_answers == 1:
        return Consensus(np.zeros(1), np.zeros(1), np.full(1, 0.5), [0], 1.0)
    comparisons = np.array([(j.answer_a, j.answer_b, OUTCOME[j.preference]) for j in judgments], dtype=np.float64)
    weights = np.array([j.weight for j in judgments], dtype=np.float64)
    result = fit(n_answers, comparisons.reshape(-1, 3), weights=weights if len(judgments) else None, prior=prior)
    theta = result.strengths
    # Strongest first; equal strengths (to 1e-9) fall back to votes, then to the answer's index.
    ranking = [int(i) for i in np.lexsort((np.arange(n_answers), -np.asarray(votes, dtype=np.float64), -np.round(theta, 9)))]
    winner, runner_up = ranking[0], ranking[1]
    win = 1.0 / (1.0 + np.exp(theta - theta[winner]))
    return Consensus(theta, result.standard_errors, win, ranking, float(win[runner_up]))

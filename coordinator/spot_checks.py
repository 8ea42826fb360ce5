"""Hidden spot checks (pure): when to run them, which questions, and the known pair planted among
their comparisons.

A spot check is a calibration question sent as an ordinary round. When the bank knows a better and
a worse answer to it, every judge also gets that pair in both orders, mixed anonymously into its
batch: the planted answers have no author (every node may judge them) and fresh nonces like any
candidate's (a node that wrote the same text must still judge them).

**When** (``Schedule``): a node's weight comes from its ground-truth record, so a node whose record
is short is a node the swarm cannot yet use well. While some eligible node has fewer than
``probation_checks`` ground-truth observations in a role it plays (``measured``), rounds are followed
by ``probation_rate`` spot checks on average (a probation budget: the swarm learns whom to follow in
tens of rounds instead of hundreds); afterwards by one with probability ``rate``. Spot-check dispatch
puts short records first (``dispatch``). A node that gives no evidence (a judge that always
abstains) keeps the probation budget open for at most ``PROBATION_CAP`` times ``probation_checks``
spot checks, so no node can hold the swarm at the probation rate. A rate of 0 turns spot checks off.

**Which** (``Plan``): questions are dealt from the bank like cards, each pass in a fresh seeded
order: no question repeats before every other has been asked (a repeated question with deterministic
answers is the same evidence twice, and makes a record look surer than it is).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

import numpy as np

from .calibration import GenerationChallenge, PairwiseChallenge, is_correct
from .domain import Candidate, Judgment, NodeRecord

# Ground-truth observations per role before a node stops drawing probation spot checks (the
# coordinator's --probation-checks; dispatch puts nodes with a shorter generator record first).
PROBATION_CHECKS = 40
PROBATION_RATE = 4.0  # spot checks per round while some node is short (--probation-rate): a short burst
PROBATION_CAP = 4     # probation spot checks a node may cause, in units of PROBATION_CHECKS

T = TypeVar("T")


@dataclass(frozen=True)
class Schedule:
    rate: float                               # spot checks per round once every record is long enough
    probation_rate: float = PROBATION_RATE    # spot checks per round while some record is short (may exceed 1)
    probation_checks: int = PROBATION_CHECKS  # ground-truth observations that end a node's probation budget


def measured(node: NodeRecord) -> int:
    """A node's ground-truth observations in the roles it plays (the fewer of them): spot checks as
    a generator; decided or position-biased spot checks as a judge."""
    t, role = node.trust, node.role
    counts = ([t.generator_n] if role.generates else []) + ([t.judge_n + t.judge_biased] if role.judges else [])
    return min(counts, default=0)


class Plan(Generic[T]):
    """The spot checks that follow each round: how many (``Schedule``) and which questions (dealt
    from ``questions`` without repeats within a pass). Holds the deal and, per node, the probation
    spot checks it has caused; every decision draws on the caller's seeded ``rng``."""

    def __init__(self, questions: Sequence[T], schedule: Schedule) -> None:
        self.questions = list(questions)
        self.schedule = schedule
        self._deck: list[int] = []
        self._charged: Counter[str] = Counter()

    def short(self, measured_by_node: Mapping[str, int]) -> list[str]:
        """The nodes (of ``measured_by_node``: eligible nodes and their ``measured``) that keep the
        probation budget open, in id order."""
        s = self.schedule
        cap = PROBATION_CAP * s.probation_checks
        return sorted(n for n, m in measured_by_node.items() if m < s.probation_checks and self._charged[n] < cap)

    def count(self, measured_by_node: Mapping[str, int], rng: np.random.Generator) -> int:
        """How many spot checks follow a round now."""
        s = self.schedule
        if not self.questions or s.rate <= 0:
            return 0
        short = self.short(measured_by_node) if s.probation_rate > 0 else []
        rate = max(s.probation_rate, s.rate) if short else s.rate
        whole = int(rate)
        n = whole + int(rng.random() < rate - whole)
        for node in short:
            self._charged[node] += n
        return n

    def draw(self, rng: np.random.Generator) -> T:
        """The next question: the bank in a seeded order, reshuffled after each pass."""
        if not self._deck:
            self._deck = [int(i) for i in rng.permutation(len(self.questions))[::-1]]
        return self.questions[self._deck.pop()]

    def after_round(self, measured_by_node: Mapping[str, int], rng: np.random.Generator) -> list[T]:
        """The questions of the spot checks that follow a round (often none)."""
        return [self.draw(rng) for _ in range(self.count(measured_by_node, rng))]


@dataclass(frozen=True)
class Planting:
    items: tuple[Candidate, ...]              # the round's candidates, then the better and the worse answer
    planted: tuple[tuple[int, int, str], ...]  # (answer a, answer b, judge) for every judge, both orders


def plant(candidates: Sequence[Candidate], judges: Sequence[str], known: PairwiseChallenge | None) -> Planting:
    """The answers judges compare: the candidates, plus (with ``known``) the planted pair at indices
    n (better) and n + 1 (worse), given to every judge in both orders."""
    if known is None:
        return Planting(tuple(candidates), ())
    better, worse = len(candidates), len(candidates) + 1
    items = (*candidates, Candidate("", "", "", known.better, os.urandom(16), b""),
             Candidate("", "", "", known.worse, os.urandom(16), b""))
    planted = tuple((a, b, j) for j in sorted(judges) for a, b in ((better, worse), (worse, better)))
    return Planting(items, planted)


def split(judgments: Sequence[Judgment], n_candidates: int) -> tuple[list[Judgment], list[Judgment]]:
    """(judgments of real candidates, judgments of the planted pair)."""
    return ([j for j in judgments if j.answer_a < n_candidates and j.answer_b < n_candidates],
            [j for j in judgments if j.answer_a >= n_candidates or j.answer_b >= n_candidates])


def correctness(candidates: Sequence[Candidate], challenge: GenerationChallenge) -> list[bool]:
    """Per answer of a spot check, right or wrong; the planted better and worse answers come last."""
    return [is_correct(c.text, challenge) for c in candidates] + [True, False]

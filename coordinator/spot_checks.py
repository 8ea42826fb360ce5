"""Hidden spot checks (pure): when to run one, and the known pair planted among its comparisons.

A spot check is a calibration question sent as an ordinary round. When the bank knows a better and
a worse answer to it, every judge also gets that pair in both orders, mixed anonymously into its
batch: the planted answers have no author (every node may judge them) and fresh nonces like any
candidate's (a node that wrote the same text must still judge them).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from .calibration import ChallengeBank, GenerationChallenge, PairwiseChallenge, is_correct
from .domain import Candidate, Judgment


def choose(bank: ChallengeBank | None, rng: np.random.Generator, rate: float) -> GenerationChallenge | None:
    """With probability ``rate``, the question of the next spot check."""
    if bank is None or rng.random() >= rate:
        return None
    return bank.generation[int(rng.integers(0, len(bank.generation)))]


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

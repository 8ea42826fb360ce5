"""Calibration challenges: questions whose answers the coordinator knows (pure).

Two kinds: *generation* challenges (a question with a checkable answer: a number or an option
letter) and *pairwise* challenges (a question with a known better and a known worse answer, judged
in both orders). The default bank is arithmetic the project generates itself (seeded, unbounded);
operators should point ``calibration_bank`` at a JSONL file of questions that look like their real
traffic, so that spot checks cannot be told apart from it. Lines of that file are either
``{"question": ..., "answer": ...}`` or ``{"question": ..., "better": ..., "worse": ...}``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from swarmrank.protos.answers import same_answer


@dataclass(frozen=True)
class GenerationChallenge:
    question: str
    answer: str  # a number ("42", "-3.5") or an option letter ("C")


@dataclass(frozen=True)
class PairwiseChallenge:
    question: str
    better: str
    worse: str


Challenge = GenerationChallenge | PairwiseChallenge

def is_correct(text: str, challenge: GenerationChallenge) -> bool:
    return same_answer(text, challenge.answer)


class ChallengeBank:
    def __init__(self, generation: list[GenerationChallenge], pairwise: list[PairwiseChallenge]) -> None:
        if not generation:
            raise ValueError("a challenge bank needs at least one generation challenge")
        self.generation = generation
        self.pairwise = pairwise
        self._pair_by_question = {p.question: p for p in pairwise}

    @classmethod
    def arithmetic(cls, size: int = 500, seed: int = 0) -> ChallengeBank:
        """The default bank: small sums, differences and products, with a near-miss wrong answer."""
        rng = np.random.default_rng(seed)
        generation, pairwise = [], []
        for _ in range(size):
            a, b = (int(x) for x in rng.integers(2, 50, size=2))
            op = ["+", "-", "*"][int(rng.integers(0, 3))]
            value = a + b if op == "+" else a - b if op == "-" else a * b
            question = f"What is {a} {op} {b}? Answer with the number."
            generation.append(GenerationChallenge(question, str(value)))
            wrong = value + int(rng.choice([-2, -1, 1, 2, 10]))
            pairwise.append(PairwiseChallenge(question, f"{a} {op} {b} = {value}.", f"{a} {op} {b} = {wrong}."))
        return cls(generation, pairwise)

    @classmethod
    def from_file(cls, path: Path) -> ChallengeBank:
        generation, pairwise = [], []
        for number, line in enumerate(Path(path).read_text().splitlines(), 1):
            if not line.strip():
                continue
            try:
                item = json.loads(line)
                if "answer" in item:
                    generation.append(GenerationChallenge(str(item["question"]), str(item["answer"])))
                else:
                    pairwise.append(PairwiseChallenge(str(item["question"]), str(item["better"]), str(item["worse"])))
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(f"{path}:{number}: not a challenge ({exc})") from None
        return cls(generation, pairwise)

    def pairwise_for(self, question: str) -> PairwiseChallenge | None:
        """A known better/worse pair for ``question``, to plant among a spot check's comparisons."""
        return self._pair_by_question.get(question)

    def sample(self, rng: np.random.Generator, generation: int, pairwise: int) -> tuple[list[GenerationChallenge], list[PairwiseChallenge]]:
        g = [self.generation[int(i)] for i in rng.choice(len(self.generation), size=min(generation, len(self.generation)), replace=False)]
        p = ([self.pairwise[int(i)] for i in rng.choice(len(self.pairwise), size=min(pairwise, len(self.pairwise)), replace=False)]
             if self.pairwise else [])
        return g, p


def pairwise_score(prefers_better_in_order: list[tuple[bool | None, bool | None]]) -> float:
    """Chance-corrected pairwise accuracy: each pair is judged in both orders; a pair counts only
    when both verdicts pick the better answer (an always-"A" judge scores 0, a coin flips 25%)."""
    if not prefers_better_in_order:
        return 0.0
    return sum(1.0 for first, second in prefers_better_in_order if first and second) / len(prefers_better_in_order)

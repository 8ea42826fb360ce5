"""A backend that answers and judges at once, deterministic by seed: the coordinator's own cost,
isolated from any model's.

It is a real node behind a real gRPC server; only the model is replaced. Answers: arithmetic
questions in the calibration bank's form ("What is 12 + 7?") are answered correctly (so instant
nodes pass admission like honest models), anything else gets a text derived from (seed, prompt),
so nodes with different seeds write different answers and the coordinator has pairs to judge.
Judging: a correct arithmetic answer wins; otherwise the answer with the larger hash wins. That
"quality" depends on the text only, so every instant judge agrees and both orders of a pair agree
(no position bias, no reputation drift in long load runs).
"""

from __future__ import annotations

import hashlib
import re
import time
from collections.abc import Callable, Iterator

from swarmrank.protos.answers import same_answer
from swarmrank.protos.types import ModelInfo, Preference, Role

from .base import Completion, GenerationParams, PairVerdict

_ARITHMETIC = re.compile(r"What is (-?\d+) ([-+*]) (-?\d+)\?")


def arithmetic_answer(question: str) -> str | None:
    """The value of a calibration-style arithmetic question, or None when it is not one."""
    m = _ARITHMETIC.search(question)
    if m is None:
        return None
    a, op, b = int(m.group(1)), m.group(2), int(m.group(3))
    return str(a + b if op == "+" else a - b if op == "-" else a * b)


def _quality(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.strip().encode()).digest()[:8], "big")


class InstantBackend:
    def __init__(self, *, name: str = "instant", seed: int = 0, max_concurrency: int = 64, words: int = 12,
                 delay_seconds: float = 0.0, role: Role = Role.GENERATE_AND_JUDGE) -> None:
        self.max_concurrency = max_concurrency
        self._seed = seed
        self._words = words
        self._delay = delay_seconds  # 0: instant; > 0 only to make rounds last (chaos tests)
        self.info = ModelInfo(name=name, family="instant", runtime="instant", device="cpu", role=role)

    def answer_text(self, prompt: str) -> str:
        value = arithmetic_answer(prompt)
        if value is not None:
            return f"The answer is {value}."
        digest = hashlib.sha256(f"{self._seed}\0{prompt}".encode()).hexdigest()
        return " ".join(["Answer", digest[:8]] + [digest[8 + 4 * i: 12 + 4 * i] for i in range(self._words - 2)])

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        if self._delay:
            time.sleep(self._delay)
        words = self.answer_text(params.prompt).split(" ")[: params.max_tokens]
        if should_stop():
            yield Completion("", 0, 0, "cancelled")
            return
        text = " ".join(words)
        yield text
        yield Completion(text, len(params.prompt.split()), len(words), "stop")

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        if self._delay:
            time.sleep(self._delay)
        value = arithmetic_answer(question)
        if value is not None:
            a_ok, b_ok = same_answer(answer_a, value), same_answer(answer_b, value)
            if a_ok != b_ok:
                return PairVerdict(Preference.A if a_ok else Preference.B, 1.0, "the right value")
            if a_ok:
                return PairVerdict(Preference.TIE, 1.0, "both right")
        qa, qb = _quality(answer_a), _quality(answer_b)
        if qa == qb:
            return PairVerdict(Preference.TIE, 1.0, "same answer")
        return PairVerdict(Preference.A if qa > qb else Preference.B, 1.0, "higher hash")

    def close(self) -> None:
        pass

"""Misbehaving nodes, for benchmarks and tests of the trust layer (never for production use).

Each wraps an honest backend and changes one behaviour:
- ``random``: judges by coin flip;
- ``always-a``: always prefers the first answer shown (pure position bias);
- ``colluding`` / ``sybil``: a clique that answers a shared wrong answer, phrased differently by
  each member so their candidates stay distinct, and judges in favour of the clique's answer
  (a Sybil wave is a colluding clique of fresh identities);
- ``lazy``: answers junk;
- ``two-faced``: colluding, after behaving honestly for its first ``honest_calls`` calls.

Any kind can be given ``honest_calls`` (e.g. the number of admission challenges) so that it passes
calibration and misbehaves only in traffic: then only hidden spot checks and the consensus can
catch it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

from swarmrank.protos.types import Preference

from swarmrank.protos.answers import answer_kind, same_answer
from .base import Backend, Completion, GenerationParams, PairVerdict

KINDS = ("random", "always-a", "colluding", "sybil", "lazy", "two-faced")


def wrong_answer(reference: str) -> str:
    """A deterministic wrong answer every clique member agrees on."""
    kind = answer_kind(reference)
    if kind == "number":
        value = float(reference.replace(",", ""))  # answer_kind accepts thousands separators
        return str(int(value) + 1) if value.is_integer() else str(value + 1.0)
    if kind == "letter":
        return "ABCDEFGHIJ"[("ABCDEFGHIJ".index(reference.upper()) + 1) % 10]
    return reference + " (not)"


class Adversary:
    def __init__(self, honest: Backend, kind: str, *, member: int = 0, seed: int = 0, honest_calls: int = 0,
                 recorded: Callable[[str], str] | None = None) -> None:
        if kind not in KINDS:
            raise ValueError(f"unknown adversary kind {kind!r}; choose from {', '.join(KINDS)}")
        self._honest = honest
        self.kind = kind
        self._member = member
        self._rng = random.Random(seed)
        self._honest_calls = honest_calls
        self._calls = 0
        # what the honest model would answer (its recorded answer), to know what to lie about
        self._recorded: Callable[[str], str] = recorded or getattr(honest, "recorded", None) or (lambda q: "")
        self.info = honest.info
        self.max_concurrency = honest.max_concurrency

    def _acting(self) -> str:
        """How to behave on this call: honest for the first ``honest_calls`` calls, then as its kind."""
        self._calls += 1
        if self._calls <= self._honest_calls:
            return "honest"
        return "colluding" if self.kind in ("sybil", "two-faced") else self.kind

    def _clique_answer(self, question: str) -> str:
        reference = self._recorded(question)
        return wrong_answer(reference) if reference else "42"

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        mode = self._acting()
        if mode == "lazy":
            text = "lorem ipsum " * 3
        elif mode == "colluding":
            text = f"After careful thought (#{self._member}), the answer is {self._clique_answer(params.prompt)}."
        else:
            yield from self._honest.stream(params, should_stop)
            return
        yield text
        yield Completion(text, 0, len(text.split()), "stop")

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        mode = self._acting()
        if mode == "random":
            return PairVerdict(self._rng.choice([Preference.A, Preference.B]), 1.0, "coin flip")
        if mode == "always-a":
            return PairVerdict(Preference.A, 1.0, "first is best")
        if mode == "colluding":
            clique = self._clique_answer(question)
            a, b = same_answer(answer_a, clique), same_answer(answer_b, clique)
            if a != b:
                return PairVerdict(Preference.A if a else Preference.B, 1.0, "obviously right")
            return PairVerdict(Preference.TIE, 1.0, "same")
        return self._honest.judge(question, answer_a, answer_b)

    def close(self) -> None:
        self._honest.close()

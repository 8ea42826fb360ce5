"""A backend that answers with recorded answers: real answers of real models, replayed.

Used by the replay benchmark (answers of large models on MMLU-Pro, GSM8K, MATH) and by the trust
layer's tests. As a judge it is *reference-guided*: it prefers the candidate whose final answer
matches its own recorded answer and says tie when neither or both match. That is a proxy for a
judge that solves the question itself, as good as the model's own answer and no better.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from swarmrank.protos.types import ModelInfo, Preference

from ..answers import same_answer
from .base import Completion, GenerationParams, PairVerdict

ANSWER_TEMPLATE = "The answer is {answer}."


class ReplayBackend:
    max_concurrency = 16

    def __init__(self, answers: Mapping[str, str], *, name: str, fallback: str = "I do not know.",
                 template: str = ANSWER_TEMPLATE) -> None:
        self._answers = answers  # question text -> recorded final answer ("" = none)
        self._fallback = fallback
        self._template = template
        self.info = ModelInfo(name=name, family="replay", runtime="replay", device="cpu")

    def recorded(self, question: str) -> str:
        return self._answers.get(question.strip(), "")

    def answer_text(self, question: str) -> str:
        recorded = self.recorded(question)
        return self._template.format(answer=recorded) if recorded else self._fallback

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        words = self.answer_text(params.prompt).split(" ")
        for i, word in enumerate(words[: params.max_tokens]):
            if should_stop():
                yield Completion(" ".join(words[:i]), 0, i, "cancelled")
                return
            yield word if i == 0 else " " + word
        n = min(len(words), params.max_tokens)
        yield Completion(" ".join(words[:n]), len(params.prompt.split()), n, "stop" if n == len(words) else "length")

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        reference = self.recorded(question)
        a_ok = bool(reference) and same_answer(answer_a, reference)
        b_ok = bool(reference) and same_answer(answer_b, reference)
        if a_ok == b_ok:
            return PairVerdict(Preference.TIE, 1.0, "both or neither match my answer")
        return PairVerdict(Preference.A if a_ok else Preference.B, 1.0, "matches my answer")

    def close(self) -> None:
        pass

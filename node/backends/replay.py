"""Backends that replay what real models recorded: their answers, and real judges' verdicts.

Used by the replay benchmark (MMLU-Pro, GSM8K, MATH answers; JudgeBench responses and verdicts) and
by the trust layer's tests. As a judge, ``ReplayBackend`` is *reference-guided*: it prefers the
candidate whose final answer matches its own recorded answer and says tie when neither or both
match. That is a proxy for a judge that solves the question itself, as good as the model's own
answer and no better. ``RecordedJudgeBackend`` replays a real judge's verdicts exactly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping

from swarmrank.protos.types import ModelInfo, Preference, Role

from swarmrank.protos.answers import same_answer
from .base import Completion, GenerationParams, PairVerdict

ANSWER_TEMPLATE = "The answer is {answer}."


class ReplayBackend:
    max_concurrency = 16

    def __init__(self, answers: Mapping[str, str], *, name: str, fallback: str = "I do not know.",
                 template: str = ANSWER_TEMPLATE, role: Role = Role.GENERATE_AND_JUDGE) -> None:
        self._answers = answers  # question text -> recorded final answer ("" = none)
        self._fallback = fallback
        self._template = template
        self.info = ModelInfo(name=name, family="replay", runtime="replay", device="cpu", role=role)

    def recorded(self, question: str) -> str:
        return self._answers.get(question.strip(), "")

    def answer_text(self, question: str) -> str:
        """The recorded answer in the template; nothing where the model recorded no answer to a question
        of its table ("" there: it committed to none); the fallback for a question not in the table."""
        recorded = self._answers.get(question.strip())
        if recorded is None:
            return self._fallback
        return self._template.format(answer=recorded) if recorded else ""

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


class RecordedJudgeBackend:
    """A judge-only node that answers with a real judge's recorded verdicts (JudgeBench), looked up
    by the exact question and the two answers in the order shown. Unrecorded pairs get a tie with
    confidence 0: it has no opinion, and says so."""

    max_concurrency = 16

    def __init__(self, verdicts: Mapping[tuple[str, str, str], Preference], *, name: str) -> None:
        self._verdicts = verdicts  # (question, answer shown first, answer shown second) -> verdict
        self.info = ModelInfo(name=name, family="replay", runtime="replay", device="cpu", role=Role.JUDGE_ONLY)

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        raise RuntimeError("a recorded judge does not generate")  # the node refuses before calling this

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        verdict = self._verdicts.get((question.strip(), answer_a.strip(), answer_b.strip()))
        if verdict is None:
            return PairVerdict(Preference.TIE, 0.0, "no recorded verdict")
        return PairVerdict(verdict, 1.0, "recorded verdict")

    def close(self) -> None:
        pass

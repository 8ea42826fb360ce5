"""The instant backend: deterministic by seed, right on arithmetic, consistent as a judge."""

from __future__ import annotations

from swarmrank.coordinator.calibration import ChallengeBank, is_correct
from swarmrank.node.backends.base import Completion, GenerationParams
from swarmrank.node.backends.instant import InstantBackend
from swarmrank.protos.types import Preference


def _text(backend: InstantBackend, prompt: str) -> str:
    *_, done = backend.stream(GenerationParams(prompt), lambda: False)
    assert isinstance(done, Completion) and done.finish_reason == "stop"
    return done.text


def test_same_seed_same_answer_other_seed_other_answer() -> None:
    a, b, c = InstantBackend(seed=1), InstantBackend(seed=1), InstantBackend(seed=2)
    assert _text(a, "Why is the sky blue?") == _text(b, "Why is the sky blue?")
    assert _text(a, "Why is the sky blue?") != _text(c, "Why is the sky blue?")
    assert _text(a, "Why is the sky blue?") != _text(a, "Why is grass green?")


def test_passes_the_arithmetic_calibration_bank() -> None:
    bank = ChallengeBank.arithmetic(size=50)
    node = InstantBackend(seed=3)
    assert all(is_correct(_text(node, c.question), c) for c in bank.generation)
    for p in bank.pairwise:
        assert node.judge(p.question, p.better, p.worse).preference == Preference.A
        assert node.judge(p.question, p.worse, p.better).preference == Preference.B


def test_judges_agree_across_orders_and_seeds() -> None:
    x, y = _text(InstantBackend(seed=1), "q"), _text(InstantBackend(seed=2), "q")
    first = InstantBackend(seed=5).judge("q", x, y).preference
    assert first != Preference.TIE
    assert InstantBackend(seed=9).judge("q", y, x).preference == (Preference.B if first == Preference.A else Preference.A)
    assert InstantBackend().judge("q", x, x).preference == Preference.TIE


def test_stops_when_asked_and_respects_max_tokens() -> None:
    node = InstantBackend(words=12)
    *_, done = node.stream(GenerationParams("q"), lambda: True)
    assert isinstance(done, Completion) and done.finish_reason == "cancelled"
    assert len(_text(node, "q").split()) == 12
    *_, short = node.stream(GenerationParams("q", max_tokens=3), lambda: False)
    assert isinstance(short, Completion) and short.completion_tokens == 3

"""The replay backend's answers: what a model recorded, nothing where it recorded no answer."""

from __future__ import annotations

from swarmrank.node.backends.base import Completion, GenerationParams
from swarmrank.node.backends.replay import ReplayBackend


def test_a_recorded_answer_a_missing_one_and_an_unknown_question() -> None:
    backend = ReplayBackend({"Q1": "B", "Q2": ""}, name="m")
    assert backend.answer_text("Q1") == "The answer is B."
    # The model committed to no answer: it says nothing (the coordinator drops an empty answer and,
    # on a spot check, records it as wrong), rather than text that could compete as an answer.
    assert backend.answer_text(" Q2 ") == ""
    assert backend.answer_text("Q3") == "I do not know."  # not a question of its table


def test_an_empty_answer_streams_as_an_empty_completion() -> None:
    out = list(ReplayBackend({"Q": ""}, name="m").stream(GenerationParams(prompt="Q", max_tokens=16), lambda: False))
    assert isinstance(out[-1], Completion) and out[-1].text == ""

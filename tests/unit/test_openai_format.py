"""The OpenAI wire format <-> round conversions (pure)."""

from __future__ import annotations

from typing import Any

import pytest

from swarmrank.coordinator import openai_format as fmt
from swarmrank.coordinator.domain import Candidate, Judgment, RankedCandidate, RoundResult
from swarmrank.protos.types import Preference

USER = [{"role": "user", "content": "What is 2+2?"}]


def parse(**body: Any) -> fmt.ChatRequest:
    return fmt.parse_chat_request({"model": "swarm", "messages": USER, **body}, {"qwen"}, max_k=16)


def test_a_plain_request_becomes_a_round() -> None:
    chat = parse(max_tokens=64, temperature=0.2, user="u1", n=1, top_p=1, stream=True,
                 stream_options={"include_usage": True}, swarm={"k": 3})
    assert chat.params.prompt == "What is 2+2?" and chat.params.max_tokens == 64 and chat.params.k == 3
    assert chat.params.temperature == 0.2 and chat.params.model == "" and chat.stream and chat.include_usage


def test_system_and_history_are_kept() -> None:
    chat = fmt.parse_chat_request({"model": "qwen", "messages": [
        {"role": "system", "content": "Be terse."}, {"role": "developer", "content": "No jokes."},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
        {"role": "user", "content": [{"type": "text", "text": "Sum "}, {"type": "text", "text": "2+2"}]}]}, {"qwen"}, 16)
    assert chat.params.system == "Be terse.\n\nNo jokes." and chat.params.model == "qwen"
    assert chat.params.prompt == "User: Hi\n\nAssistant: Hello\n\nUser: Sum 2+2\n\nAssistant:"
    assert parse(max_completion_tokens=9, max_tokens=100).params.max_tokens == 9


@pytest.mark.parametrize("body, param, code", [
    ({"n": 2}, "n", "unsupported_parameter"),
    ({"tools": []}, "tools", "tools_not_supported"),
    ({"function_call": "auto"}, "function_call", "tools_not_supported"),
    ({"response_format": {"type": "json_object"}}, "response_format", "unsupported_parameter"),
    ({"stop": ["\n"]}, "stop", "unsupported_parameter"),
    ({"frequency_penalty": 0.5}, "frequency_penalty", "unsupported_parameter"),
    ({"whatever": 1}, "whatever", "unknown_field"),
    ({"model": "gpt-4"}, "model", "model_not_found"),
    ({"model": ""}, "model", "invalid_request"),
    ({"messages": [{"role": "assistant", "content": "x"}]}, "messages", "invalid_request"),
    ({"messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_request"),
    ({"messages": "hi"}, "messages", "invalid_request"),
    ({"max_tokens": "10"}, "max_tokens", "invalid_request"),
    ({"max_tokens": True}, "max_tokens", "invalid_request"),
    ({"temperature": -1}, "temperature", "invalid_request"),
    ({"stream": "yes"}, "stream", "invalid_request"),
    ({"swarm": {"k": 1}}, "k", "invalid_request"),
    ({"swarm": {"judges": 3}}, "swarm", "invalid_request"),
    ({"stream_options": {"x": 1}}, "stream_options", "invalid_request"),
])
def test_refusals_name_the_parameter(body: dict[str, Any], param: str, code: str) -> None:
    with pytest.raises(fmt.RequestProblem) as info:
        parse(**body)
    assert info.value.param == param and info.value.code == code


def test_body_must_be_an_object() -> None:
    with pytest.raises(fmt.RequestProblem):
        fmt.parse_chat_request([1, 2], set(), 16)


def result() -> RoundResult:
    c0 = Candidate("c0", "n0", "qwen", "Four.", b"\0" * 16, b"s0", 3, 0.1)
    c1 = Candidate("c1", "n1", "gemma", "Five.", b"\1" * 16, b"s1", 4, 0.1)
    j = Judgment("n2", "x1", 0, 1, Preference.A, 0.9, "", 0.5, b"\2" * 16, b"s")
    return RoundResult("r1", "What is 2+2?", "Four.", "n0", "c0", 0.8,
                       (RankedCandidate(c0, 1.0, 0.1, 0.8, 1), RankedCandidate(c1, -1.0, 0.1, 0.2, 2)), (j,), (), 0.5, 1700000000.0)


def test_completion_carries_the_swarm_extension() -> None:
    body = fmt.completion(result(), "swarm")
    assert body["id"] == "chatcmpl-r1" and body["choices"][0]["message"] == {"role": "assistant", "content": "Four."}
    assert body["usage"]["completion_tokens"] == 3
    ext = body["swarm"]
    assert ext["round_id"] == "r1" and ext["confidence"] == 0.8 and ext["judges"] == ["n2"]
    assert [r["candidate_id"] for r in ext["ranking"]] == ["c0", "c1"]
    assert ext["judgments"] == [{"judge_node_id": "n2", "a": "c0", "b": "c1", "preference": "a", "weight": 0.5}]


def test_stream_chunks_rebuild_the_answer() -> None:
    r = result()
    chunks = fmt.answer_chunks(r, "chatcmpl-r1", 1, "swarm", include_usage=True)
    assert "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"]) == "Four."
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop" and chunks[-2]["swarm"]["round_id"] == "r1"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["total_tokens"] == 3
    assert fmt.models_list(["qwen"], 5)["data"][1]["id"] == "qwen"

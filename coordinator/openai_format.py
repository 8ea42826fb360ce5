"""OpenAI chat-completions wire format <-> a swarm round (pure: plain dicts in, plain dicts out).

A request is checked field by field so a client hears exactly what is wrong: an unknown field, a
parameter we do not support (named), ``n > 1``, tools. The answer is an ordinary
``chat.completion`` (or a stream of ``chat.completion.chunk``) plus one extension field, ``swarm``:
the round id, confidence, the ranking and who judged what, for clients that want to audit.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from swarmrank.protos.types import Preference

from .domain import AskParams, CandidateArrived, Dispatched, Failure, JudgingProgress, RoundEvent, RoundResult, candidate_label

SWARM_MODEL = "swarm"
MAX_MESSAGES = 256
STREAM_PIECE_CHARS = 24  # the answer exists whole once the round is decided; it is sent in small pieces

# Fields we honour. `swarm` is our extension: {"k": generators}.
SUPPORTED = {"model", "messages", "max_tokens", "max_completion_tokens", "temperature", "stream", "stream_options",
             "n", "user", "swarm", "top_p", "presence_penalty", "frequency_penalty", "logprobs", "stop", "seed"}
# Parameters of OpenAI's API we accept only at their neutral value (the value says why not otherwise).
NEUTRAL: dict[str, Any] = {"top_p": 1, "presence_penalty": 0, "frequency_penalty": 0, "logprobs": False, "stop": None,
                           "seed": None}
TOOLS = {"tools", "tool_choice", "functions", "function_call", "parallel_tool_calls"}
UNSUPPORTED = {"logit_bias", "top_logprobs", "response_format", "audio", "modalities", "prediction", "store",
               "metadata", "reasoning_effort", "service_tier", "web_search_options", "verbosity", "prompt_cache_key",
               "safety_identifier"}
ROLES = {"system", "developer", "user", "assistant"}


class RequestProblem(Exception):
    """A request we refuse (HTTP 400), with the offending parameter when there is one."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_request") -> None:
        super().__init__(message)
        self.param = param
        self.code = code


@dataclass(frozen=True)
class ChatRequest:
    params: AskParams
    model: str       # as asked: "swarm" or a member model
    stream: bool
    include_usage: bool


def _text(content: Any, where: str) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                kind = part.get("type") if isinstance(part, dict) else type(part).__name__
                raise RequestProblem(f"{where}: only text content is supported, got a {kind!r} part", where,
                                     "unsupported_content")
            parts.append(part["text"])
        return "".join(parts)
    raise RequestProblem(f"{where}.content must be a string or a list of text parts", where)


def _number(body: dict[str, Any], name: str, kind: type, low: float, high: float) -> Any:
    value = body.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)):
        raise RequestProblem(f"{name} must be {'an integer' if kind is int else 'a number'}, got {value!r}", name)
    if not low <= value <= high:
        raise RequestProblem(f"{name} must be between {low:g} and {high:g}, got {value!r}", name)
    return value


def parse_chat_request(body: Any, models: set[str], max_k: int) -> ChatRequest:
    """The round a chat-completions request asks for; ``RequestProblem`` says what is wrong with it.
    ``models`` are the member models a client may name besides ``swarm``."""
    if not isinstance(body, dict):
        raise RequestProblem("the request body must be a JSON object")
    tools = sorted(TOOLS & body.keys())
    if tools:
        raise RequestProblem(f"tool and function calling are not supported (got {', '.join(tools)})", tools[0],
                             "tools_not_supported")
    unsupported = sorted(UNSUPPORTED & body.keys())
    if unsupported:
        raise RequestProblem(f"unsupported parameter: {unsupported[0]}", unsupported[0], "unsupported_parameter")
    unknown = sorted(body.keys() - SUPPORTED)
    if unknown:
        raise RequestProblem(f"unknown field: {unknown[0]}", unknown[0], "unknown_field")
    for name, neutral in NEUTRAL.items():
        if body.get(name, neutral) not in (neutral, None):
            raise RequestProblem(f"unsupported parameter: {name} (only {neutral!r} is supported)", name,
                                 "unsupported_parameter")
    n = _number(body, "n", int, 1, 128)
    if n is not None and n != 1:
        raise RequestProblem("n > 1 is not supported: the swarm returns one consensus answer", "n", "unsupported_parameter")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestProblem("model is required (use 'swarm', or a member model from GET /v1/models)", "model")
    if model != SWARM_MODEL and model not in models:
        raise RequestProblem(f"the model {model!r} does not exist or no node serves it", "model", "model_not_found")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise RequestProblem("messages must be a non-empty list", "messages")
    if len(messages) > MAX_MESSAGES:
        raise RequestProblem(f"at most {MAX_MESSAGES} messages", "messages")
    system: list[str] = []
    turns: list[tuple[str, str]] = []
    for i, message in enumerate(messages):
        where = f"messages[{i}]"
        if not isinstance(message, dict):
            raise RequestProblem(f"{where} must be an object", where)
        role = message.get("role")
        if role == "tool" or "tool_calls" in message or "function_call" in message:
            raise RequestProblem(f"{where}: tool and function calling are not supported", where, "tools_not_supported")
        if role not in ROLES:
            raise RequestProblem(f"{where}.role must be one of {', '.join(sorted(ROLES))}", f"{where}.role")
        extra = sorted(message.keys() - {"role", "content", "name"})
        if extra:
            raise RequestProblem(f"unknown field: {where}.{extra[0]}", f"{where}.{extra[0]}", "unknown_field")
        text = _text(message.get("content"), where)
        if role in ("system", "developer"):
            system.append(text)
        else:
            turns.append((role, text))
    if not turns or turns[-1][0] != "user":
        raise RequestProblem("the last message must come from the user", "messages")
    # One question per round: earlier turns become context the nodes read in the prompt.
    prompt = turns[-1][1] if len(turns) == 1 else "\n\n".join(
        f"{'User' if role == 'user' else 'Assistant'}: {text}" for role, text in turns) + "\n\nAssistant:"
    max_tokens = _number(body, "max_completion_tokens", int, 1, 1 << 20) or _number(body, "max_tokens", int, 1, 1 << 20)
    temperature = _number(body, "temperature", float, 0, 2)
    stream = body.get("stream", False)
    if not isinstance(stream, bool):
        raise RequestProblem("stream must be true or false", "stream")
    options = body.get("stream_options") or {}
    if not isinstance(options, dict) or options.keys() - {"include_usage"}:
        raise RequestProblem("stream_options supports only include_usage", "stream_options")
    swarm = body.get("swarm") or {}
    if not isinstance(swarm, dict) or swarm.keys() - {"k"}:
        raise RequestProblem("swarm supports only k (generators per round)", "swarm")
    k = _number(swarm, "k", int, 2, max_k) or 0
    if "user" in body and not isinstance(body["user"], str):
        raise RequestProblem("user must be a string", "user")
    params = AskParams(prompt=prompt, k=k, max_tokens=max_tokens or 0, temperature=float(temperature or 0.0),
                       system="\n\n".join(system), model="" if model == SWARM_MODEL else model)
    return ChatRequest(params, model, stream, bool(options.get("include_usage")))


def swarm_extension(r: RoundResult) -> dict[str, Any]:
    """The documented ``swarm`` field: enough to audit the round (GetRound has the signatures)."""
    return {
        "round_id": r.round_id,
        "confidence": r.confidence,
        "winner": {"candidate_id": r.winner_candidate_id, "node_id": r.winner_node_id},
        "ranking": [{"rank": rc.rank, "candidate_id": rc.candidate.candidate_id, "node_id": rc.candidate.node_id,
                     "model": rc.candidate.model, "strength": rc.strength, "win_probability": rc.win_probability,
                     "completion_tokens": rc.candidate.completion_tokens} for rc in r.candidates],
        "judgments": [{"judge_node_id": j.judge_node_id, "a": candidate_label(j.answer_a), "b": candidate_label(j.answer_b),
                       "preference": Preference(j.preference).name.lower(), "weight": j.weight} for j in r.judgments],
        "judges": sorted({j.judge_node_id for j in r.judgments}),
        "failures": [{"node_id": f.node_id, "stage": f.stage, "reason": f.reason} for f in r.failures],
        "elapsed_seconds": r.elapsed_seconds,
    }


def _usage(r: RoundResult) -> dict[str, int]:
    winner = r.candidates[0].candidate.completion_tokens if r.candidates else 0
    return {"prompt_tokens": 0, "completion_tokens": winner, "total_tokens": winner}


def completion(r: RoundResult, model: str) -> dict[str, Any]:
    return {
        "id": f"chatcmpl-{r.round_id}",
        "object": "chat.completion",
        "created": int(r.created_unix),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": r.answer}, "finish_reason": "stop",
                     "logprobs": None}],
        "usage": _usage(r),
        "swarm": swarm_extension(r),
    }


def chunk(completion_id: str, created: int, model: str, delta: dict[str, Any] | None, finish: str | None = None,
          **extra: Any) -> dict[str, Any]:
    """A ``chat.completion.chunk``; ``delta=None`` makes a chunk with no choices (progress, usage)."""
    choices = [] if delta is None else [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}]
    return {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model,
            "choices": choices, **extra}


def progress(event: RoundEvent) -> dict[str, Any] | None:
    """A round event as the ``swarm`` field of a choice-less chunk (None: not shown to clients)."""
    if isinstance(event, Dispatched):
        return {"event": "dispatched", "round_id": event.round_id, "generators": len(event.node_ids)}
    if isinstance(event, CandidateArrived):
        return {"event": "candidate", "node_id": event.node_id, "model": event.model}
    if isinstance(event, JudgingProgress):
        return {"event": "judging", "done": event.done, "total": event.total}
    if isinstance(event, Failure):
        return {"event": "failure", "node_id": event.node_id, "stage": event.stage}
    return None


def answer_chunks(r: RoundResult, completion_id: str, created: int, model: str, include_usage: bool) -> list[dict[str, Any]]:
    """The decided answer as content chunks, then the final chunk (finish_reason, the swarm field),
    then usage when asked for."""
    text = r.answer
    pieces = [text[i:i + STREAM_PIECE_CHARS] for i in range(0, len(text), STREAM_PIECE_CHARS)] or [""]
    out = [chunk(completion_id, created, model, {"content": piece}) for piece in pieces]
    out.append(chunk(completion_id, created, model, {}, "stop", swarm=swarm_extension(r)))
    if include_usage:
        out.append(chunk(completion_id, created, model, None, usage=_usage(r)))
    return out


def error_body(message: str, kind: str, code: str | None = None, param: str | None = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def models_list(models: list[str], created: int) -> dict[str, Any]:
    return {"object": "list", "data": [{"id": m, "object": "model", "created": created, "owned_by": "swarmrank"}
                                       for m in [SWARM_MODEL, *models]]}

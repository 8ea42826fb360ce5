"""A node that forwards to an OpenAI-compatible server (vLLM, Ollama, llama-server, ...).

This is how a node with a real GPU serves a big model: the heavy runtime runs next to it and the
node adds identity, signing, admission control and judging. Streaming uses server-sent events of
``/v1/chat/completions``; judging asks for one token with logprobs and falls back to parsing text
when the server does not return logprobs.
"""

from __future__ import annotations

import json
import math
from typing import Any
from collections.abc import Callable, Iterator

import httpx

from swarmrank.protos.types import ModelInfo

from ..errors import BackendFailure, ModelUnavailable
from .judging import JUDGE_SYSTEM, judge_user_message, parse_verdict, verdict_from_logprobs
from .base import Completion, GenerationParams, PairVerdict


class OpenAIHTTPBackend:
    def __init__(
        self,
        base_url: str,
        model: str,
        *,
        api_key: str = "",
        name: str = "",
        max_concurrency: int = 4,
        timeout_seconds: float = 120.0,
    ) -> None:
        self._model = model
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self._http = httpx.Client(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=httpx.Timeout(timeout_seconds, connect=10.0),
        )
        self.max_concurrency = max_concurrency
        self.info = ModelInfo(name=name or model, runtime="openai-http", device="remote", chat=True)

    def _messages(self, params: GenerationParams) -> list[dict[str, str]]:
        messages = [{"role": "system", "content": params.system}] if params.system else []
        return messages + [{"role": "user", "content": params.prompt}]

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        body = {
            "model": self._model,
            "messages": self._messages(params),
            "max_tokens": params.max_tokens,
            "temperature": params.temperature,
            "seed": params.seed,
            "stream": True,
            "stream_options": {"include_usage": True},
        }
        pieces: list[str] = []
        finish, usage = "stop", dict[str, Any]()
        try:
            with self._http.stream("POST", "/chat/completions", json=body) as resp:
                if resp.status_code != 200:
                    raise BackendFailure(f"upstream answered HTTP {resp.status_code}")
                for line in resp.iter_lines():
                    if should_stop():
                        finish = "cancelled"
                        break
                    if not line.startswith("data:"):
                        continue
                    data = line[5:].strip()
                    if data == "[DONE]":
                        break
                    event = json.loads(data)
                    usage = event.get("usage") or usage
                    for choice in event.get("choices", []):
                        piece = (choice.get("delta") or {}).get("content") or ""
                        if piece:
                            pieces.append(piece)
                            yield piece
                        finish = choice.get("finish_reason") or finish
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"upstream {self._http.base_url} unreachable: {exc}") from exc
        yield Completion(
            text="".join(pieces),
            prompt_tokens=int(usage.get("prompt_tokens", 0)),
            completion_tokens=int(usage.get("completion_tokens", len(pieces))),
            finish_reason=finish,
        )

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        body = {
            "model": self._model,
            "messages": [
                {"role": "system", "content": JUDGE_SYSTEM},
                {"role": "user", "content": judge_user_message(question, answer_a, answer_b)},
            ],
            "max_tokens": 1,
            "temperature": 0.0,
            "logprobs": True,
            "top_logprobs": 10,
        }
        try:
            resp = self._http.post("/chat/completions", json=body)
        except httpx.HTTPError as exc:
            raise ModelUnavailable(f"upstream {self._http.base_url} unreachable: {exc}") from exc
        if resp.status_code != 200:
            raise BackendFailure(f"upstream answered HTTP {resp.status_code}")
        choice = resp.json()["choices"][0]
        content = (choice.get("logprobs") or {}).get("content") or []
        if content and content[0].get("top_logprobs"):
            best = {"A": -math.inf, "B": -math.inf, "T": -math.inf}
            for alt in content[0]["top_logprobs"]:
                token = alt["token"].strip().upper()[:1]
                if token in best:
                    best[token] = max(best[token], float(alt["logprob"]))
            return verdict_from_logprobs(best["A"], best["B"], best["T"])
        return parse_verdict(choice["message"]["content"] or "")

    def close(self) -> None:
        self._http.close()

"""llama.cpp backend (llama-cpp-python): GGUF models on the CPU, or offloaded to a GPU.

Chat models are prompted through the chat template stored in their GGUF file; base models (no
template) get a plain "Question:/Answer:" completion prompt. Judging scores the first verdict token
with one forward pass over the judge prompt (no sampling), so a verdict costs about as much as
reading the two answers.
"""

from __future__ import annotations

import contextlib
import math
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from swarmrank.protos.types import ModelInfo

from ..catalogue import CatalogueEntry
from ..errors import ModelUnavailable
from .judging import (
    JUDGE_SYSTEM, MAX_JUDGED_ANSWER_CHARS, MAX_SCORED_ANSWER_TOKENS, judge_completion_prompt, judge_user_message,
    verdict_from_likelihoods, verdict_from_logprobs,
)
from .base import Completion, GenerationParams, PairVerdict

_VERDICT_SPELLINGS = {
    "A": ("A", " A"),
    "B": ("B", " B"),
    "T": ("T", " T", "Tie", " Tie", "tie", " tie"),
}


JUDGE_MODES = ("verdict", "likelihood")  # score the verdict token of a judge prompt, or each answer alone


class LlamaCppBackend:
    max_concurrency = 1  # a llama.cpp context is not re-entrant

    def __init__(
        self,
        model_path: Path,
        entry: CatalogueEntry | None = None,
        *,
        n_ctx: int = 2048,
        n_threads: int | None = None,
        n_gpu_layers: int = 0,
        judge_mode: str = "verdict",
    ) -> None:
        if judge_mode not in JUDGE_MODES:
            raise ValueError(f"judge_mode must be one of {', '.join(JUDGE_MODES)}, got {judge_mode!r}")
        self._judge_mode = judge_mode
        self._likelihoods: dict[tuple[str, str], float] = {}  # (question, answer) -> mean log-prob, both orders share it
        try:
            import llama_cpp
            from llama_cpp.llama_chat_format import Jinja2ChatFormatter
        except ImportError as exc:
            raise ModelUnavailable("the llama.cpp backend needs llama-cpp-python (pip install 'swarmrank[models]')") from exc
        self._llama_cpp = llama_cpp
        self._llm = llama_cpp.Llama(
            model_path=str(model_path),
            n_ctx=n_ctx,
            n_threads=n_threads or os.cpu_count() or 1,
            n_gpu_layers=n_gpu_layers,
            verbose=False,
        )
        template = self._llm.metadata.get("tokenizer.chat_template")
        self._formatter = None
        if template:
            eos_id, bos_id = self._llm.token_eos(), self._llm.token_bos()
            self._formatter = Jinja2ChatFormatter(
                template=template,
                eos_token=self._llm._model.token_get_text(eos_id) if eos_id != -1 else "",
                bos_token=self._llm._model.token_get_text(bos_id) if bos_id != -1 else "",
                stop_token_ids=[eos_id],
            )
        self._verdict_ids = {
            key: sorted({self._llm.tokenize(s.encode(), add_bos=False, special=False)[0] for s in spellings})
            for key, spellings in _VERDICT_SPELLINGS.items()
        }
        gpu = n_gpu_layers != 0 and bool(llama_cpp.llama_supports_gpu_offload())
        self.info = ModelInfo(
            name=entry.name if entry else Path(model_path).stem,
            family=entry.family if entry else str(self._llm.metadata.get("general.architecture", "")),
            parameters=entry.parameters if entry else "",
            quantization=entry.quantization if entry else "",
            runtime="llama.cpp",
            device="cuda" if gpu else "cpu",
            chat=self._formatter is not None,
            context_length=n_ctx,
        )

    def _format(self, system: str, user: str) -> tuple[str, list[str]]:
        """The prompt text and stop strings for one user turn."""
        if self._formatter is not None:
            messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user}]
            r = self._formatter(messages=messages)  # type: ignore[arg-type]  # plain dicts are its chat messages
            stop = [r.stop] if isinstance(r.stop, str) else list(r.stop or [])
            return r.prompt, stop
        head = f"{system}\n\n" if system else ""
        return f"{head}Question: {user}\nAnswer:", ["\nQuestion:", "\n\n\n"]

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        prompt, stop = self._format(params.system, params.prompt)
        n_prompt = len(self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True))
        pieces: list[str] = []
        finish = "stop"
        chunks: Any = self._llm.create_completion(
            prompt=prompt,
            max_tokens=params.max_tokens,
            temperature=params.temperature,
            seed=params.seed,
            stop=stop,
            stream=True,
        )
        try:
            for chunk in chunks:
                if should_stop():
                    finish = "cancelled"
                    break
                choice = chunk["choices"][0]
                if choice.get("text"):
                    pieces.append(choice["text"])
                    yield choice["text"]
                finish = choice.get("finish_reason") or finish
        finally:
            with contextlib.suppress(Exception):
                chunks.close()
        text = "".join(pieces)
        # A streamed chunk is one sampled token, except where a multi-byte character spans two.
        n_completion = len(self._llm.tokenize(text.encode("utf-8"), add_bos=False, special=False)) if text else 0
        yield Completion(text.strip(), n_prompt, n_completion, finish)

    def next_token_logprobs(self, prompt: str) -> np.ndarray:
        """Log-probabilities of the token after ``prompt`` (one forward pass, no sampling)."""
        tokens = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        limit = self._llm.n_ctx() - 1
        if len(tokens) > limit:  # keep the end: it holds the instruction and answer B
            tokens = tokens[:1] + tokens[-(limit - 1) :]
        self._llm.reset()  # type: ignore[no-untyped-call]  # untyped in llama-cpp-python
        self._llm.eval(tokens)
        ptr = self._llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).astype(np.float64)
        m = logits.max()
        return np.asarray(logits - m - math.log(np.exp(logits - m).sum()), dtype=np.float64)

    def _logprobs_after_eval(self, tokens: list[int]) -> np.ndarray:
        """Feed ``tokens`` after what the context holds; log-probabilities of the next token."""
        self._llm.eval(tokens)
        ptr = self._llama_cpp.llama_get_logits_ith(self._llm.ctx, -1)
        logits = np.ctypeslib.as_array(ptr, shape=(self._llm.n_vocab(),)).astype(np.float64)
        m = logits.max()
        return np.asarray(logits - m - math.log(np.exp(logits - m).sum()), dtype=np.float64)

    def answer_likelihood(self, question: str, answer: str) -> float:
        """Mean log-probability per token of ``answer`` as this model's reply to ``question``: the
        question once, then one incremental step per answer token (first MAX_SCORED_ANSWER_TOKENS)."""
        key = (question, answer)
        if key in self._likelihoods:
            return self._likelihoods[key]
        prompt = self._format("", question)[0] if self._formatter is not None else f"Question: {question}\nAnswer:"
        prefix = self._llm.tokenize(prompt.encode("utf-8"), add_bos=True, special=True)
        scored = self._llm.tokenize((" " + answer.strip()[:MAX_JUDGED_ANSWER_CHARS]).encode("utf-8"), add_bos=False,
                                    special=False)[:MAX_SCORED_ANSWER_TOKENS]
        room = self._llm.n_ctx() - len(scored) - 1
        prefix = prefix[:1] + prefix[-(room - 1):] if len(prefix) > room else prefix
        self._llm.reset()  # type: ignore[no-untyped-call]  # untyped in llama-cpp-python
        total, lp = 0.0, self._logprobs_after_eval(prefix)
        for token in scored:
            total += float(lp[token])
            lp = self._logprobs_after_eval([token])
        mean = total / max(len(scored), 1)
        if len(self._likelihoods) > 256:
            self._likelihoods.clear()
        self._likelihoods[key] = mean
        return mean

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        if self._judge_mode == "likelihood":
            return verdict_from_likelihoods(self.answer_likelihood(question, answer_a), self.answer_likelihood(question, answer_b))
        if self._formatter is not None:
            prompt, _ = self._format(JUDGE_SYSTEM, judge_user_message(question, answer_a, answer_b))
        else:
            prompt = judge_completion_prompt(question, answer_a, answer_b)
        lp = self.next_token_logprobs(prompt)
        a, b, t = (float(np.logaddexp.reduce(lp[self._verdict_ids[k]])) for k in ("A", "B", "T"))
        return verdict_from_logprobs(a, b, t)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._llm.close()

"""ONNX Runtime backend for a small causal language model exported to ONNX.

Contract of the model file: one input ``input_ids`` (int64, [batch, sequence]) and a first output
of logits (float, [batch, sequence, vocab]). Tokenisation is byte-level (vocab 256, token i is byte
i), which every exporter can target; decoding is greedy at temperature 0, else seeded sampling.
Runs on CUDA when onnxruntime-gpu provides the CUDA execution provider, otherwise on the CPU.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from swarmrank.protos.types import ModelInfo

from ..errors import ModelUnavailable
from .judging import judge_completion_prompt, verdict_from_logprobs
from .base import Completion, GenerationParams, PairVerdict

VOCAB = 256


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max()
    return np.asarray(x - m - math.log(np.exp(x - m).sum()), dtype=np.float64)


class OnnxBackend:
    max_concurrency = 1

    def __init__(self, model_path: Path, *, name: str = "", device: str = "auto", context_length: int = 512) -> None:
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelUnavailable("the ONNX backend needs onnxruntime (pip install 'swarmrank[onnx]')") from exc
        if not Path(model_path).is_file():
            raise ModelUnavailable(f"ONNX model {model_path} does not exist")
        available = ort.get_available_providers()
        want_cuda = device in ("auto", "cuda") and "CUDAExecutionProvider" in available
        if device == "cuda" and not want_cuda:
            raise ModelUnavailable("device=cuda but onnxruntime has no CUDAExecutionProvider (install onnxruntime-gpu)")
        providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if want_cuda else ["CPUExecutionProvider"]
        self._session = ort.InferenceSession(str(model_path), providers=providers)
        self._input = self._session.get_inputs()[0].name
        self._context = context_length
        self.info = ModelInfo(
            name=name or Path(model_path).stem,
            family="onnx-bytelevel",
            quantization="fp32",
            runtime="onnxruntime",
            device="cuda" if want_cuda else "cpu",
            chat=False,
            context_length=context_length,
        )

    @property
    def providers(self) -> list[str]:
        return list(self._session.get_providers())

    def _next_logits(self, ids: list[int]) -> np.ndarray:
        window = np.asarray([ids[-self._context :]], dtype=np.int64)
        return np.asarray(self._session.run(None, {self._input: window})[0][0, -1])

    def _prompt(self, params: GenerationParams) -> str:
        head = f"{params.system}\n\n" if params.system else ""
        return f"{head}{params.prompt}"

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        ids = list(self._prompt(params).encode("utf-8"))
        n_prompt = len(ids)
        rng = np.random.default_rng(params.seed)
        out = bytearray()
        finish = "length"
        pending = b""
        for _ in range(params.max_tokens):
            if should_stop():
                finish = "cancelled"
                break
            logits = self._next_logits(ids)
            if params.temperature <= 0:
                token = int(np.argmax(logits))
            else:
                p = np.exp(_log_softmax(logits / params.temperature))
                token = int(rng.choice(VOCAB, p=p / p.sum()))
            if token == 0:  # byte 0 is end-of-text
                finish = "stop"
                break
            ids.append(token)
            out.append(token)
            pending += bytes([token])
            try:
                piece = pending.decode("utf-8")
            except UnicodeDecodeError:
                continue  # wait for the rest of a multi-byte character
            pending = b""
            yield piece
        yield Completion(out.decode("utf-8", errors="replace"), n_prompt, len(out), finish)

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        ids = list((judge_completion_prompt(question, answer_a, answer_b) + " ").encode("utf-8"))
        lp = _log_softmax(self._next_logits(ids))
        return verdict_from_logprobs(lp[ord("A")], lp[ord("B")], lp[ord("T")])

    def close(self) -> None:
        pass

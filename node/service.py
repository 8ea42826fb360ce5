"""The node's async service: admission control, model calls off the event loop, signing.

Transport-free: the gRPC servicer converts protobuf to the dataclasses below and back.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, replace
from typing import Any, TypeVar

from swarmrank.protos import limits, merkle, signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.types import ModelInfo, Preference, Role

from .backends.base import Backend, Completion, GenerationParams
from .errors import BackendFailure, InvalidRequest, Overloaded, UnknownModel, WrongRole

log = logging.getLogger("swarmrank.node")

T = TypeVar("T")


@dataclass(frozen=True)
class GenerateCall:
    round_id: str
    nonce: bytes
    model: str
    prompt: str
    system: str = ""
    max_tokens: int = 0
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class SignedCandidate:
    round_id: str
    nonce: bytes
    node_id: str
    model: str
    text: str
    prompt_tokens: int
    completion_tokens: int
    elapsed_seconds: float
    finish_reason: str
    signature: bytes


@dataclass(frozen=True)
class ComparisonItem:
    comparison_id: str
    answer_a: str
    answer_b: str
    nonce_a: bytes = b""  # nonce of the Generate request behind each answer (empty: unknown)
    nonce_b: bytes = b""


@dataclass(frozen=True)
class JudgeCall:
    round_id: str
    nonce: bytes
    model: str
    question: str
    comparisons: tuple[ComparisonItem, ...]


@dataclass(frozen=True)
class Verdict:
    comparison_id: str
    preference: Preference
    confidence: float
    rationale: str


@dataclass(frozen=True)
class SignedVerdicts:
    """A Judge call's verdicts and one signature over all of them (a Merkle root: ``signing.verdicts_bytes``)."""

    verdicts: tuple[Verdict, ...]
    signature: bytes


@dataclass(frozen=True)
class Description:
    node_id: str
    public_key: bytes
    models: tuple[ModelInfo, ...]
    max_concurrency: int
    max_queue: int


class Admission:
    """At most ``concurrency`` calls run and ``max_queue`` wait; the next one is refused at once."""

    def __init__(self, concurrency: int, max_queue: int) -> None:
        self._slots = asyncio.Semaphore(concurrency)
        self._max_queue = max_queue
        self._waiting = 0
        self.running = 0

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        if self._slots.locked() and self._waiting >= self._max_queue:
            raise Overloaded(f"node is busy: {self.running} running, {self._waiting} queued (limit {self._max_queue})")
        self._waiting += 1
        try:
            await self._slots.acquire()
        finally:
            self._waiting -= 1
        self.running += 1
        try:
            yield
        finally:
            self.running -= 1
            self._slots.release()

    @property
    def in_flight(self) -> int:
        return self.running + self._waiting


_DONE = object()


def _check_id(name: str, value: str) -> None:
    if not value or len(value) > limits.MAX_ID_CHARS:
        raise InvalidRequest(f"{name} must be 1..{limits.MAX_ID_CHARS} characters")


def _check_nonce(nonce: bytes) -> None:
    if not limits.MIN_NONCE_BYTES <= len(nonce) <= limits.MAX_NONCE_BYTES:
        raise InvalidRequest(f"nonce must be {limits.MIN_NONCE_BYTES}..{limits.MAX_NONCE_BYTES} bytes, got {len(nonce)}")


class NodeService:
    def __init__(
        self,
        identity: Identity,
        backend: Backend,
        *,
        max_queue: int = 8,
        default_max_tokens: int = 256,
        max_tokens_limit: int = 1024,
        executor: ThreadPoolExecutor | None = None,
        role: Role | None = None,
    ) -> None:
        self.identity = identity
        self.backend = backend
        self.info = backend.info if role is None else replace(backend.info, role=role)  # what the node advertises
        self.default_max_tokens = default_max_tokens
        self.max_tokens_limit = min(max_tokens_limit, limits.MAX_TOKENS_LIMIT)
        self.admission = Admission(backend.max_concurrency, max_queue)
        self._max_queue = max_queue
        self._executor = executor or ThreadPoolExecutor(max_workers=backend.max_concurrency, thread_name_prefix="model")
        self._model_calls: set[Future[Any]] = set()  # submitted to the executor and not yet finished
        # What this node produced, per round: the nonces it generated for and the hashes of its
        # answers. A judge batch must not contain them.
        self._produced: OrderedDict[str, set[bytes]] = OrderedDict()

    def describe(self) -> Description:
        return Description(
            node_id=self.identity.node_id,
            public_key=self.identity.public_key,
            models=(self.info,),
            max_concurrency=self.backend.max_concurrency,
            max_queue=self._max_queue,
        )

    def _resolve_model(self, name: str) -> str:
        if name and name != self.backend.info.name:
            raise UnknownModel(f"model {name!r} is not served here; this node serves {self.backend.info.name!r}")
        return self.backend.info.name

    def _validate_generate(self, call: GenerateCall) -> GenerationParams:
        if not self.info.role.generates:
            raise WrongRole("this node only judges")
        _check_id("round_id", call.round_id)
        _check_nonce(call.nonce)
        self._resolve_model(call.model)
        problem = limits.generation_problem(call.prompt, call.system, call.max_tokens, self.max_tokens_limit, call.temperature)
        if problem:
            raise InvalidRequest(problem)
        return GenerationParams(
            prompt=call.prompt,
            system=call.system,
            max_tokens=call.max_tokens or self.default_max_tokens,
            temperature=call.temperature,
            seed=call.seed,
        )

    async def generate(self, call: GenerateCall) -> AsyncIterator[str | SignedCandidate]:
        """Stream text pieces, then one signed candidate. Cancelling the iteration stops the model."""
        params = self._validate_generate(call)
        model = self.backend.info.name
        async with self.admission.slot():
            started = time.perf_counter()
            completion: Completion | None = None
            async for item in self._stream_in_thread(params):
                if isinstance(item, Completion):
                    completion = item
                else:
                    yield item
            if completion is None:
                raise BackendFailure("backend ended without a completion")
            elapsed = time.perf_counter() - started
        self._remember(call.round_id, call.nonce, completion.text)
        signature = self.identity.sign(
            signing.candidate_bytes(call.round_id, call.nonce, self.identity.node_id, model, completion.text)
        )
        log.info(
            "generated round=%s tokens=%d seconds=%.2f finish=%s",
            call.round_id, completion.completion_tokens, elapsed, completion.finish_reason,
        )
        yield SignedCandidate(
            round_id=call.round_id,
            nonce=call.nonce,
            node_id=self.identity.node_id,
            model=model,
            text=completion.text,
            prompt_tokens=completion.prompt_tokens,
            completion_tokens=completion.completion_tokens,
            elapsed_seconds=elapsed,
            finish_reason=completion.finish_reason,
            signature=signature,
        )

    async def _stream_in_thread(self, params: GenerationParams) -> AsyncIterator[str | Completion]:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[object] = asyncio.Queue()
        stop = threading.Event()

        def put(item: object) -> None:
            with contextlib.suppress(RuntimeError):  # loop already closed at shutdown
                loop.call_soon_threadsafe(queue.put_nowait, item)

        def work() -> None:
            try:
                for item in self.backend.stream(params, stop.is_set):
                    put(item)
            except Exception as exc:  # reported to the caller as BackendFailure below
                put(exc)
            finally:
                put(_DONE)

        worker = self._in_model_thread(work)
        try:
            while (item := await queue.get()) is not _DONE:
                if isinstance(item, Exception):
                    log.error("backend failed: %r", item)
                    raise BackendFailure("the model failed to generate") from item
                yield item  # type: ignore[misc]
        finally:
            # Keep the slot until the model is really free: backends are not re-entrant.
            stop.set()
            with contextlib.suppress(Exception):
                await asyncio.shield(worker)

    def _remember(self, round_id: str, nonce: bytes, text: str) -> None:
        self._produced.setdefault(round_id, set()).update((b"nonce:" + nonce, b"text:" + signing.sha256(text)))
        self._produced.move_to_end(round_id)
        while len(self._produced) > 4096:
            self._produced.popitem(last=False)

    def _validate_judge(self, call: JudgeCall) -> None:
        if not self.info.role.judges:
            raise WrongRole("this node only generates")
        _check_id("round_id", call.round_id)
        _check_nonce(call.nonce)
        self._resolve_model(call.model)
        if not call.question.strip():
            raise InvalidRequest("question is empty")
        if len(call.question) > limits.MAX_PROMPT_CHARS:
            raise InvalidRequest(f"question is longer than {limits.MAX_PROMPT_CHARS} characters")
        if not 1 <= len(call.comparisons) <= limits.MAX_COMPARISONS_PER_JUDGE_CALL:
            raise InvalidRequest(f"a judge batch holds 1..{limits.MAX_COMPARISONS_PER_JUDGE_CALL} comparisons, got {len(call.comparisons)}")
        seen: set[str] = set()
        own = self._produced.get(call.round_id, set())
        for c in call.comparisons:
            _check_id("comparison_id", c.comparison_id)
            if c.comparison_id in seen:
                raise InvalidRequest(f"comparison id {c.comparison_id!r} appears twice")
            seen.add(c.comparison_id)
            for side, answer, nonce in (("a", c.answer_a, c.nonce_a), ("b", c.answer_b, c.nonce_b)):
                if not answer.strip():
                    raise InvalidRequest(f"comparison {c.comparison_id!r}: answer_{side} is empty")
                if len(answer) > limits.MAX_ANSWER_CHARS:
                    raise InvalidRequest(f"comparison {c.comparison_id!r}: answer_{side} is longer than {limits.MAX_ANSWER_CHARS} characters")
                # With a nonce, "own" means this node's candidate; another node's identical text is
                # fair to judge. Without one, any answer this node wrote in the round counts as its own.
                mine = (b"nonce:" + nonce) in own if nonce else (b"text:" + signing.sha256(answer)) in own
                if mine:
                    raise InvalidRequest(f"comparison {c.comparison_id!r} asks this node to judge its own candidate")

    async def judge(self, call: JudgeCall) -> SignedVerdicts:
        self._validate_judge(call)
        verdicts: list[Verdict] = []
        leaves: list[bytes] = []
        async with self.admission.slot():
            for c in call.comparisons:  # one at a time so a cancelled caller frees the model early
                try:
                    # The executor has one worker per model slot, so a call abandoned by a cancelled
                    # caller still finishes before the next one starts on the same model.
                    v = await self._in_model_thread(functools.partial(self.backend.judge, call.question, c.answer_a, c.answer_b))
                except Exception as exc:
                    log.error("judge backend failed: %r", exc)
                    raise BackendFailure("the model failed to judge") from exc
                leaves.append(signing.verdict_leaf(call.round_id, call.nonce, self.identity.node_id, c.comparison_id,
                                                   signing.sha256(c.answer_a), signing.sha256(c.answer_b), int(v.preference)))
                verdicts.append(Verdict(c.comparison_id, v.preference, v.confidence, v.rationale[:200]))
        log.info("judged round=%s comparisons=%d", call.round_id, len(verdicts))
        root = merkle.root(leaves) if leaves else b""
        return SignedVerdicts(tuple(verdicts), self.identity.sign(
            signing.verdicts_bytes(call.round_id, call.nonce, self.identity.node_id, root, len(leaves))))

    def _in_model_thread(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """``fn`` on the executor, tracked until it returns so ``close`` knows whether the model is free."""
        future = self._executor.submit(fn)
        self._model_calls.add(future)
        future.add_done_callback(self._model_calls.discard)
        return asyncio.wrap_future(future)

    def close(self, timeout: float | None = None) -> bool:
        """Stop taking model calls, give the running ones ``timeout`` seconds (None: as long as they
        take), then free the model. True when it was freed; False when a call still runs: llama.cpp
        cannot be interrupted mid-evaluation, so the model is left to that thread, and the process
        should exit without waiting for it (``daemon.run`` does)."""
        self._executor.shutdown(wait=False, cancel_futures=True)
        _, running = wait(list(self._model_calls), timeout)
        if running:
            log.warning("%d model call(s) still running after %.1fs; abandoning them", len(running), timeout or 0.0)
            return False
        self.backend.close()
        return True

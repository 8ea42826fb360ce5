"""A ``RoundRunner`` that reports what its rounds do: metrics per round and stage, and a feed of
answered rounds for the dashboard's live updates. It only watches: every decision stays in
``rounds.RoundRunner``."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .calibration import ChallengeBank, GenerationChallenge
from .domain import AskParams, Dispatched, JudgingProgress, RoundEvent, RoundResult
from .errors import InvalidAsk, QuorumNotReached, RateLimited
from .metered_client import MeteredNodeClient
from .metrics import CoordinatorMetrics
from .node_client import NodeClient
from .registry import Registry
from .rounds import Emit, RoundRunner
from .settings import CoordinatorSettings
from .store import Store

log = logging.getLogger("swarmrank.coordinator")

OUTCOME_FOR_ERROR: tuple[tuple[type[BaseException], str], ...] = (
    (InvalidAsk, "invalid"), (QuorumNotReached, "no_quorum"), (RateLimited, "rate_limited"),
    (asyncio.CancelledError, "cancelled"),
)


@dataclass
class _Tracker:
    """When the stages of one round began (``time.perf_counter``)."""
    started: float
    dispatched: float = 0.0
    judging: float = 0.0
    judged: float = 0.0
    round_id: str = ""


_current: contextvars.ContextVar[_Tracker | None] = contextvars.ContextVar("swarmrank_round_tracker", default=None)


class ObservedRoundRunner(RoundRunner):
    def __init__(self, registry: Registry, store: Store, client: NodeClient, settings: CoordinatorSettings,
                 rng: np.random.Generator | None = None, bank: ChallengeBank | None = None, *,
                 metrics: CoordinatorMetrics, metered: MeteredNodeClient | None = None) -> None:
        super().__init__(registry, store, client, settings, rng, bank, on_stage=self._on_stage)
        self._metrics = metrics
        self._metered = metered
        self._listeners: list[Callable[[RoundResult], None]] = []
        metrics.watch(self._registry, self.counters)

    def subscribe(self, listener: Callable[[RoundResult], None]) -> Callable[[], None]:
        """Call ``listener`` with every answered client round (never spot checks); returns an unsubscribe."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def _on_stage(self, name: str, seconds: float) -> None:
        tracker = _current.get()
        if name == "fit" and tracker is not None and tracker.judging:
            tracker.judged = time.perf_counter() - seconds
            self._metrics.stage_seconds.labels("judge").observe(tracker.judged - tracker.judging)
        self._metrics.stage_seconds.labels(name).observe(seconds)

    async def run(self, params: AskParams, emit: Emit = lambda e: None, *,
                  spot_check: GenerationChallenge | None = None) -> RoundResult:
        m = self._metrics
        kind = "spot_check" if spot_check is not None else "client"
        tracker = _Tracker(time.perf_counter())
        token = _current.set(tracker)

        def watch(event: RoundEvent) -> None:
            now = time.perf_counter()
            if isinstance(event, Dispatched) and not tracker.dispatched:  # a second wave (too few answers) is not a stage
                tracker.dispatched, tracker.round_id = now, event.round_id
                m.stage_seconds.labels("dispatch").observe(now - tracker.started)
            elif isinstance(event, JudgingProgress) and not tracker.judging:
                tracker.judging = now
                m.stage_seconds.labels("generate").observe(now - tracker.dispatched)
            emit(event)

        m.rounds_in_progress.inc()
        outcome = "error"
        try:
            result = await super().run(params, watch, spot_check=spot_check)
            outcome = "answered"
        except BaseException as exc:
            outcome = next((name for kind_, name in OUTCOME_FOR_ERROR if isinstance(exc, kind_)), "error")
            if outcome in ("invalid", "no_quorum", "rate_limited"):
                m.rejections.labels(outcome).inc()
            raise
        finally:
            _current.reset(token)
            m.rounds_in_progress.dec()
            m.rounds.labels(kind, outcome).inc()
            m.round_seconds.observe(time.perf_counter() - tracker.started)
            calls = self._metered.judge_calls.pop(tracker.round_id, 0) if self._metered and tracker.round_id else 0
            if tracker.round_id and outcome == "answered":
                m.judge_calls_per_round.observe(calls)
        m.candidates.observe(len(result.candidates))
        m.judgments.observe(len(result.judgments))
        if spot_check is None:
            for listener in list(self._listeners):
                try:
                    listener(result)
                except Exception:  # a broken listener must not fail the round
                    log.exception("round listener failed")
        return result

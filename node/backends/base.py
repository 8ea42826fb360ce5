"""The one interface every model backend implements.

Backends are synchronous and are called from worker threads (model calls must stay off the event
loop). A backend that is not thread-safe says so with ``max_concurrency = 1``; the node's service
never runs more calls at once than that.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from swarmrank.protos.types import ModelInfo, Preference


@dataclass(frozen=True)
class GenerationParams:
    prompt: str
    system: str = ""
    max_tokens: int = 256
    temperature: float = 0.0
    seed: int = 0


@dataclass(frozen=True)
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop", "length" or "cancelled"


@dataclass(frozen=True)
class PairVerdict:
    preference: Preference
    confidence: float  # probability the judge puts on its preference; 0 when unknown
    rationale: str = ""


class Backend(Protocol):
    info: ModelInfo
    max_concurrency: int

    def stream(self, params: GenerationParams, should_stop: Callable[[], bool]) -> Iterator[str | Completion]:
        """Yield text pieces as they are produced, then exactly one ``Completion``.

        ``should_stop`` is polled between tokens; when it returns True the backend stops early and
        yields a Completion with finish_reason "cancelled".
        """
        ...

    def judge(self, question: str, answer_a: str, answer_b: str) -> PairVerdict:
        """Compare two anonymised answers to ``question``."""
        ...

    def close(self) -> None: ...

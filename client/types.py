"""The SDK's public values and errors: plain dataclasses, no protobuf types."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from swarmrank.protos.types import Dispatched as Dispatched
from swarmrank.protos.types import JudgingProgress as JudgingProgress


@dataclass(frozen=True)
class Candidate:
    candidate_id: str
    node_id: str
    model: str
    text: str
    strength: float         # Bradley-Terry log-strength (centred)
    rank: int               # 1 = best; identical answers share a rank
    win_probability: float  # P(the winner beats this candidate)
    standard_error: float
    completion_tokens: int
    elapsed_seconds: float


@dataclass(frozen=True)
class Judgment:
    judge_node_id: str
    candidate_a_id: str
    candidate_b_id: str
    preference: str  # "A", "B" or "tie"
    confidence: float
    rationale: str
    weight: float


@dataclass(frozen=True)
class NodeFailure:
    node_id: str
    stage: str
    reason: str


@dataclass(frozen=True)
class Answer:
    round_id: str
    prompt: str
    text: str
    winner_node_id: str
    confidence: float  # P(winner beats runner-up)
    candidates: tuple[Candidate, ...]
    judgments: tuple[Judgment, ...]
    failures: tuple[NodeFailure, ...]
    elapsed_seconds: float

    @property
    def winner(self) -> Candidate:
        return self.candidates[0]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    address: str
    models: tuple[str, ...]
    state: str  # "healthy", "unhealthy" or "gone"
    reputation: float
    rounds: int
    last_seen_unix: float
    role: str = "both"  # "both", "generate" (answers only) or "judge" (verdicts only)


# Round events, in the order AskStream sends them (Dispatched and JudgingProgress: protos.types).
@dataclass(frozen=True)
class CandidateReceived:
    node_id: str
    model: str
    completion_tokens: int


@dataclass(frozen=True)
class Completed:
    answer: Answer


Event = Dispatched | CandidateReceived | NodeFailure | JudgingProgress | Completed


class SwarmrankError(Exception):
    """Any error from the swarm; ``code`` is the gRPC status name."""

    def __init__(self, message: str, code: str = "UNKNOWN") -> None:
        super().__init__(message)
        self.code = code


class InvalidRequest(SwarmrankError):
    """The request was malformed or out of range; retrying will not help."""


class NotFound(SwarmrankError):
    """No such round (or model)."""


class Unavailable(SwarmrankError):
    """The coordinator is unreachable or too few nodes are healthy; retry later."""


class DeadlineExceeded(SwarmrankError):
    """The round did not finish within the timeout."""


class PermissionDenied(SwarmrankError):
    """Authentication or authorisation failed."""


class Unauthenticated(PermissionDenied):
    """No API key, or a malformed, unknown or revoked one."""


class RateLimited(SwarmrankError):
    """The API key is over its rate (or the swarm is overloaded); retry later."""

"""Plain values the coordinator's modules pass around (no protobuf, no I/O)."""

from __future__ import annotations

from dataclasses import dataclass

from swarmrank.protos.types import Dispatched as Dispatched
from swarmrank.protos.types import JudgingProgress as JudgingProgress
from swarmrank.protos.types import ModelInfo, Preference, Role

from .trust import Trust


@dataclass(frozen=True)
class NodeRecord:
    node_id: str
    public_key: bytes
    address: str
    models: tuple[ModelInfo, ...]
    max_concurrency: int
    registered_unix: float
    last_seen_unix: float
    trust: Trust
    rounds: int = 0
    failed_unix: float = 0.0  # last failed call; the node gets no work until it heartbeats again

    @property
    def model_name(self) -> str:
        return self.models[0].name if self.models else ""

    @property
    def role(self) -> Role:
        return self.models[0].role if self.models else Role.GENERATE_AND_JUDGE

    @property
    def sole_role(self) -> str:
        """"generator" or "judge" for a node that plays one role only, else ""."""
        return {Role.GENERATE_ONLY: "generator", Role.JUDGE_ONLY: "judge"}.get(self.role, "")

    @property
    def reputation(self) -> float:
        """The worse score of the roles it plays (a judge-only node is not held to a generator score);
        a judge is counted by its reliability, as in its weight and its quarantine."""
        role, t = self.role, self.trust
        return min(t.generator if role.generates else 1.0, max(0.0, t.judge_reliability) if role.judges else 1.0)


@dataclass(frozen=True)
class Candidate:
    candidate_id: str  # anonymised label, "c0", "c1", ...
    node_id: str
    model: str
    text: str
    nonce: bytes
    signature: bytes
    completion_tokens: int = 0
    elapsed_seconds: float = 0.0


@dataclass(frozen=True)
class Judgment:
    judge_node_id: str
    comparison_id: str
    answer_a: int  # index of a candidate of the round
    answer_b: int
    preference: Preference
    confidence: float
    rationale: str
    weight: float
    nonce: bytes
    signature: bytes  # the judge's signature over its whole reply; with the three fields below it audits
    proof: tuple[bytes, ...] = ()  # this verdict alone (signing.verdict_is_signed)
    leaf_index: int = 0
    leaf_count: int = 1


@dataclass(frozen=True)
class Failure:
    node_id: str
    stage: str  # "generate" or "judge"
    reason: str


def candidate_label(index: int) -> str:
    """The anonymised id of the round's index-th candidate."""
    return f"c{index}"


@dataclass(frozen=True)
class RankedCandidate:
    candidate: Candidate
    strength: float
    standard_error: float
    win_probability: float
    rank: int


@dataclass(frozen=True)
class RoundResult:
    round_id: str
    prompt: str
    answer: str
    winner_node_id: str
    winner_candidate_id: str
    confidence: float
    candidates: tuple[RankedCandidate, ...]
    judgments: tuple[Judgment, ...]
    failures: tuple[Failure, ...]
    elapsed_seconds: float
    created_unix: float


# Events of a round in progress, streamed by AskStream (Dispatched and JudgingProgress: protos.types).
@dataclass(frozen=True)
class CandidateArrived:
    node_id: str
    model: str
    completion_tokens: int


RoundEvent = Dispatched | CandidateArrived | Failure | JudgingProgress | RoundResult


@dataclass(frozen=True)
class AskParams:
    prompt: str
    k: int = 0
    max_tokens: int = 0
    temperature: float = 0.0
    system: str = ""
    model: str = ""  # empty: the whole swarm; else only nodes serving this model generate

"""Reputation: a pure, event-sourced rule. The ledger stores the events; replaying them through
``apply`` rebuilds every node's trust exactly.

Rule (all constants below; see README "Trust"):
- **Admission.** Passing calibration puts a node on probation at ``PROBATION``; failing refuses it.
  A quarantined node comes back only through a new admission (re-calibration).
- **Evidence** moves the score toward a value v in [0, 1] with a per-source rate:
  ground truth weighs most (calibration and spot checks, rate 0.3, v = fraction correct), then
  judge agreement with the round's consensus (rate 0.1, chance-corrected: v = max(0, 2a - 1) for
  agreement a, so random and always-"A" judges earn 0), then generator rank (rate 0.05, v = 1 for
  the winning answer down to 0 for the last).
- **Stake.** A bad or replayed signature, a verdict for a pair not asked, or a no-show after accepting
  work costs a fixed penalty at once.
- **Decay.** Between events a score relaxes toward ``PROBATION`` with time constant
  ``DECAY_SECONDS``: old merit fades, so does old blame (a quarantined score does not decay).
- **Bounds.** Scores stay in [0, 1]. Below ``QUARANTINE`` a node gets no work.
- **Weight.** A judge's weight in aggregation is score^2 (monotone), capped at
  ``PROBATION_WEIGHT_CAP`` until the node has passed ``PROVEN_AFTER`` ground-truth checks: ten fresh
  identities weigh at most 10 x 0.02 = 0.2, less than one established node at score >= 0.45.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from swarmrank.protos.types import Preference

from .consensus import Consensus
from .domain import Judgment
from .trust import Trust

PROBATION = 0.2
QUARANTINE = 0.1
PROVEN_AFTER = 5
PROBATION_WEIGHT_CAP = 0.02
DECAY_SECONDS = 7 * 86400.0
RATES = {"calibration": 0.3, "spot_check": 0.3, "judge_agreement": 0.1, "generator_rank": 0.05}
GROUND_TRUTH = ("calibration", "spot_check")
PENALTY = {"bad_signature": 0.15, "unasked_verdict": 0.1, "no_show": 0.05}

# Kept for callers that only need a neutral default (unknown nodes).
INITIAL = PROBATION


@dataclass(frozen=True)
class Event:
    """One entry's worth of evidence about one node."""

    kind: str            # "admit", "refuse", "evidence" or "penalty"
    node_id: str
    ts: float
    source: str = ""     # evidence: a key of RATES; penalty: a key of PENALTY; admit/refuse: "calibration"
    value: float = 0.0   # evidence / admission score in [0, 1]
    round_id: str = ""

    def to_body(self) -> dict[str, object]:
        return {"kind": self.kind, "node": self.node_id, "ts": self.ts, "source": self.source,
                "value": self.value, "round": self.round_id}

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Event:
        return cls(str(body["kind"]), str(body["node"]), float(body["ts"]), str(body["source"]),  # type: ignore[arg-type]
                   float(body["value"]), str(body["round"]))  # type: ignore[arg-type]


def decayed(t: Trust, ts: float) -> Trust:
    if t.status == "quarantined" or ts <= t.updated_unix:
        return t
    factor = math.exp(-(ts - t.updated_unix) / DECAY_SECONDS)
    return replace(t, score=PROBATION + (t.score - PROBATION) * factor, updated_unix=ts)


def _settle(t: Trust) -> Trust:
    score = min(1.0, max(0.0, t.score))
    status = t.status
    if status in ("probation", "established") and score < QUARANTINE:
        status = "quarantined"
    elif status == "probation" and t.truths_passed >= PROVEN_AFTER:
        status = "established"
    return replace(t, score=score, status=status)


def apply(t: Trust | None, e: Event) -> Trust:
    """The trust of a node after event ``e`` (``t`` is None for a node never seen before)."""
    if e.kind == "admit":
        return Trust(PROBATION, "probation", e.ts, 0)
    if e.kind == "refuse":
        return t if t is not None and t.eligible else Trust(0.0, "refused", e.ts, 0)
    if t is None:
        raise ValueError(f"event {e.kind} for node {e.node_id} before its admission")
    t = decayed(t, e.ts)
    if e.kind == "penalty":
        return _settle(replace(t, score=t.score - PENALTY[e.source]))
    if e.kind == "evidence":
        score = t.score + RATES[e.source] * (e.value - t.score)
        passed = t.truths_passed + (1 if e.source in GROUND_TRUTH and e.value >= 0.5 else 0)
        return _settle(replace(t, score=score, truths_passed=passed))
    raise ValueError(f"unknown event kind {e.kind!r}")


def replay(events: Iterable[Event]) -> dict[str, Trust]:
    table: dict[str, Trust] = {}
    for e in events:
        table[e.node_id] = apply(table.get(e.node_id), e)
    return table


def judge_weight(t: Trust | None) -> float:
    if t is None or not t.eligible:
        return 0.0
    weight = t.score**2
    return min(weight, PROBATION_WEIGHT_CAP) if t.status == "probation" else weight


def agreement(judgment: Judgment, consensus: Consensus) -> float:
    """1 when the verdict prefers the answer the fitted model ranks higher, 0.5 for ties, else 0."""
    sa, sb = consensus.strengths[judgment.answer_a], consensus.strengths[judgment.answer_b]
    if judgment.preference == Preference.TIE or abs(sa - sb) < 1e-9:
        return 0.5
    return 1.0 if (judgment.preference == Preference.A) == (sa > sb) else 0.0


def round_events(
    round_id: str,
    ts: float,
    consensus: Consensus | None,
    judgments: Sequence[Judgment],
    answer_of_generator: Mapping[str, int],
    penalties: Sequence[tuple[str, str]],
) -> list[Event]:
    """The evidence a normal round gives about its nodes, in a deterministic order."""
    events = [Event("penalty", node, ts, reason, 0.0, round_id) for node, reason in penalties]
    if consensus is None:
        return events
    scores: dict[str, list[float]] = {}
    for j in judgments:
        scores.setdefault(j.judge_node_id, []).append(agreement(j, consensus))
    for node in sorted(scores):
        rate = sum(scores[node]) / len(scores[node])
        events.append(Event("evidence", node, ts, "judge_agreement", max(0.0, 2.0 * rate - 1.0), round_id))
    n = len(consensus.ranking)
    if n > 1:
        place = {answer: position for position, answer in enumerate(consensus.ranking)}
        for node in sorted(answer_of_generator):
            events.append(Event("evidence", node, ts, "generator_rank", 1.0 - place[answer_of_generator[node]] / (n - 1), round_id))
    return events

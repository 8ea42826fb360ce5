"""Reputation: a pure, event-sourced rule. The ledger stores the events; replaying them through
``apply`` rebuilds every node's trust exactly.

Rule (all constants below; see README "Trust"):
- **Admission.** Passing calibration puts a node on probation at ``PROBATION``; failing refuses it.
  A quarantined node comes back only through a new admission (re-calibration).
- **Evidence** moves one role's score toward a value v with a per-source rate. A node has a
  generator score and a judge score (see ``trust.Trust``); its reputation is the worse of the two,
  so good answers cannot buy cover for bad verdicts. A generator's value is its answer's rank (1
  for the winning answer down to 0 for the last distinct answer); a judge's is its chance-corrected agreement 2a - 1 in
  [-1, 1] with the consensus (ties count half), so random and always-"A" judges drift to 0 and a
  judge that votes against the consensus is pushed down. Hidden spot checks and calibration are
  ground truth and weigh most (rate 0.3; generators: right or wrong; judges: 2a - 1 on pairs where
  exactly one answer is right); normal rounds weigh less (rate 0.1).
- **Stake.** A bad or replayed signature, a verdict for a pair not asked, or a no-show after accepting
  work costs a fixed penalty at once.
- **Decay.** Between events a score relaxes toward ``PROBATION`` with time constant
  ``DECAY_SECONDS``: old merit fades, so does old blame (a quarantined score does not decay).
- **Bounds.** Scores stay in [0, 1]. A reputation below ``QUARANTINE`` stops all work.
- **Weight.** A judge's weight in aggregation is its judge score^2 (monotone), capped at
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
RATES = {"calibration": 0.3, "spot_check": 0.3, "round": 0.1}
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
    value: float = 0.0   # evidence in [-1, 1]; admission score in [0, 1]
    round_id: str = ""
    role: str = ""       # evidence: "generator" or "judge"

    def to_body(self) -> dict[str, object]:
        return {"kind": self.kind, "node": self.node_id, "ts": self.ts, "source": self.source,
                "value": self.value, "round": self.round_id, "role": self.role}

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Event:
        return cls(str(body["kind"]), str(body["node"]), float(body["ts"]), str(body["source"]),  # type: ignore[arg-type]
                   float(body["value"]), str(body["round"]), str(body["role"]))  # type: ignore[arg-type]


def decayed(t: Trust, ts: float) -> Trust:
    if t.status == "quarantined" or ts <= t.updated_unix:
        return t
    factor = math.exp(-(ts - t.updated_unix) / DECAY_SECONDS)
    return replace(t, generator=PROBATION + (t.generator - PROBATION) * factor,
                   judge=PROBATION + (t.judge - PROBATION) * factor, updated_unix=ts)


def _settle(t: Trust) -> Trust:
    t = replace(t, generator=min(1.0, max(0.0, t.generator)), judge=min(1.0, max(0.0, t.judge)))
    if t.status in ("probation", "established") and t.score < QUARANTINE:
        return replace(t, status="quarantined")
    if t.status == "probation" and t.truths_passed >= PROVEN_AFTER:
        return replace(t, status="established")
    return t


def apply(t: Trust | None, e: Event) -> Trust:
    """The trust of a node after event ``e`` (``t`` is None for a node never seen before)."""
    if e.kind == "admit":
        return Trust(PROBATION, PROBATION, "probation", e.ts, 0)
    if e.kind == "refuse":
        return t if t is not None and t.eligible else Trust(0.0, 0.0, "refused", e.ts, 0)
    if t is None:
        raise ValueError(f"event {e.kind} for node {e.node_id} before its admission")
    t = decayed(t, e.ts)
    if e.kind == "penalty":
        cost = PENALTY[e.source]
        return _settle(replace(t, generator=t.generator - cost, judge=t.judge - cost))
    if e.kind == "evidence":
        rate = RATES[e.source]
        passed = t.truths_passed + (1 if e.source in GROUND_TRUTH and e.value >= 0.5 else 0)
        if e.role == "generator":
            t = replace(t, generator=t.generator + rate * (e.value - t.generator))
        elif e.role == "judge":
            t = replace(t, judge=t.judge + rate * (e.value - t.judge))
        else:
            raise ValueError(f"evidence needs a role, got {e.role!r}")
        return _settle(replace(t, truths_passed=passed))
    raise ValueError(f"unknown event kind {e.kind!r}")


def replay(events: Iterable[Event]) -> dict[str, Trust]:
    table: dict[str, Trust] = {}
    for e in events:
        table[e.node_id] = apply(table.get(e.node_id), e)
    return table


def judge_weight(t: Trust | None) -> float:
    if t is None or not t.eligible:
        return 0.0
    weight = t.judge**2
    return min(weight, PROBATION_WEIGHT_CAP) if t.status == "probation" else weight


def agreement(judgment: Judgment, consensus: Consensus) -> float:
    """1 when the verdict prefers the answer the fitted model ranks higher, 0.5 for ties, else 0."""
    sa, sb = consensus.strengths[judgment.answer_a], consensus.strengths[judgment.answer_b]
    if judgment.preference == Preference.TIE or abs(sa - sb) < 1e-9:
        return 0.5
    return 1.0 if (judgment.preference == Preference.A) == (sa > sb) else 0.0


def _role_events(round_id: str, ts: float, source: str, generators: Mapping[str, float],
                 judges: Mapping[str, list[float]]) -> list[Event]:
    """Generator events with their values, then judge events with 2a - 1 for agreement rate a."""
    events = [Event("evidence", node, ts, source, generators[node], round_id, "generator") for node in sorted(generators)]
    for node in sorted(judges):
        rate = sum(judges[node]) / len(judges[node])
        events.append(Event("evidence", node, ts, source, 2.0 * rate - 1.0, round_id, "judge"))
    return events


def round_events(
    round_id: str,
    ts: float,
    consensus: Consensus | None,
    judgments: Sequence[Judgment],
    answer_of_generator: Mapping[str, int],
    penalties: Sequence[tuple[str, str]],
) -> list[Event]:
    """The evidence a normal round gives about its nodes (penalties first), in a deterministic order."""
    events = [Event("penalty", node, ts, reason, 0.0, round_id) for node, reason in penalties]
    if consensus is None or len(consensus.ranking) < 2:
        return events
    ranks = consensus.ranks or [consensus.ranking.index(i) + 1 for i in range(len(consensus.ranking))]
    last = max(ranks)
    generators = {node: 1.0 if last == 1 else 1.0 - (ranks[i] - 1) / (last - 1) for node, i in answer_of_generator.items()}
    judges: dict[str, list[float]] = {}
    for j in judgments:
        judges.setdefault(j.judge_node_id, []).append(agreement(j, consensus))
    return events + _role_events(round_id, ts, "round", generators, judges)


def spot_check_events(
    round_id: str, ts: float, correct: Sequence[bool], answer_of_generator: Mapping[str, int], judgments: Sequence[Judgment],
    known: Mapping[str, Sequence[float]] = {},
) -> list[Event]:
    """Ground truth from a hidden calibration round: ``correct[i]`` says whether candidate i is
    right; ``known`` holds each judge's results (1 right, 0.5 tie, 0 wrong) on planted known pairs."""
    generators = {node: 1.0 if correct[answer] else 0.0 for node, answer in answer_of_generator.items()}
    judges: dict[str, list[float]] = {node: list(scores) for node, scores in known.items()}
    for j in judgments:
        if correct[j.answer_a] != correct[j.answer_b]:
            right = Preference.A if correct[j.answer_a] else Preference.B
            judges.setdefault(j.judge_node_id, []).append(0.5 if j.preference == Preference.TIE else float(j.preference == right))
    return _role_events(round_id, ts, "spot_check", generators, judges)

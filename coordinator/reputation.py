"""Reputation: a pure, event-sourced rule. The ledger stores the events; replaying them through
``apply`` rebuilds every node's trust exactly.

Rule (all constants below; see README "Trust"):
- **Admission.** Passing calibration puts a node on probation at ``PROBATION``; failing refuses it.
  A quarantined node comes back only through a new admission (re-calibration).
- **Evidence** moves one role's score toward a value v with a per-source rate. A node has a
  generator score and a judge score (see ``trust.Trust``); its reputation is the worse of the roles
  it plays (``NodeRecord.reputation``: a judge-only reward model has no generator score), so good
  answers cannot buy cover for bad verdicts. A generator's value is its answer's rank (1 for the
  winning answer down to 0 for the last distinct answer); a judge's is its chance-corrected agreement 2a - 1 in
  [-1, 1] with the consensus (ties count half), so random and always-"A" judges drift to 0 and a
  judge that votes against the consensus is pushed down. Hidden spot checks and calibration are
  ground truth and weigh most (rate 0.3; generators: right or wrong; judges: 2a - 1 on pairs where
  exactly one answer is right); normal rounds weigh less (rate 0.1).
- **Stake.** A bad or replayed signature, a verdict for a pair not asked, or a no-show after accepting
  work costs a fixed penalty at once.
- **Decay.** Between events a score relaxes toward ``PROBATION`` with time constant
  ``DECAY_SECONDS``: old merit fades, so does old blame (a quarantined score does not decay).
- **Record.** The ground-truth record of a role counts hidden spot checks only: admission
  calibration is announced, so a strategic node always passes it (every adversary here does); it
  proves capability, not behaviour. A judge's observation of a spot check is its mean over the
  pairs with exactly one right answer (per pair 1 right, -1 wrong or the same position in both
  orders, 0 right in one order and tie in the other); a pair it called a tie both ways is an
  abstention, not evidence.
- **Bounds.** Scores stay in [0, 1]. Quarantine (no work) comes from a penalty that puts the
  reputation below ``QUARANTINE``, or from a ground-truth record confidently below the role's line
  (``evidence.confidently_below``: the upper end of its 99% interval under ``ACCURACY_LINE``),
  never from the luck of a short record.
- **Weight.** A judge's weight in aggregation is the log-odds of the lower confidence bound of its
  record's accuracy above a coin (``evidence.weight``), counting only the spot checks whose voters
  disputed the answer (where verdicts decide; ``spot_check_events``): 0 until it is confidently better than
  guessing, then the weight an independent voter of that accuracy deserves. The running score
  follows the consensus and has no say. Only the ``TOP_JUDGES`` heaviest count in a round. The
  weight is capped at ``PROBATION_WEIGHT_CAP`` until the node has passed ``PROVEN_AFTER``
  ground-truth checks: ten fresh identities weigh at most 10 x 0.02 = 0.2.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from swarmrank.protos.types import Preference

from . import evidence
from . import consensus
from .consensus import Consensus
from .domain import Judgment
from .trust import Topics, Trust

PROBATION = 0.2
QUARANTINE = 0.1
# Evidence alone quarantines a node only when the role at fault has a ground-truth record (at least
# MIN_TRUTHS spot-check observations) whose accuracy is below the role's line with 99% confidence:
# a generator right on fewer than a quarter of questions that look like traffic, a judge right on
# fewer than 60% of the spot checks it decided (position bias counting as a failure). A score alone
# would wander below any line and trap honest but imperfect nodes; ground truth cannot be swayed
# by whoever dominates a consensus.
MIN_TRUTHS = 4
ACCURACY_LINE = {"generator": 0.25, "judge": 0.6}
PROVEN_AFTER = 5
PROBATION_WEIGHT_CAP = evidence.PROBATION_WEIGHT_CAP
UNPROVEN_WEIGHT = 1e-3  # every judge's weight while no judge has earned any (the start of a swarm)
TOP_JUDGES = 4  # judges whose verdicts count in a round: the most reliable few, not a diluted crowd
DECAY_SECONDS = 7 * 86400.0
RATES = {"calibration": 0.3, "spot_check": 0.3, "undisputed_check": 0.3, "round": 0.1, "position_bias": 0.3}
GROUND_TRUTH = ("calibration", "spot_check", "undisputed_check", "position_bias")
# Sources that enter the ground-truth record (see "Record" above); a judge's weight record takes the
# spot checks whose voters disputed the answer only ("spot_check"; "undisputed_check" is conduct).
RECORDED = ("spot_check", "undisputed_check")
PENALTY = {"bad_signature": 0.15, "unasked_verdict": 0.1, "no_show": 0.05}


@dataclass(frozen=True)
class Event:
    """One entry's worth of evidence about one node."""

    kind: str            # "admit", "refuse", "evidence" or "penalty"
    node_id: str
    ts: float
    source: str = ""     # evidence: a key of RATES; penalty: a key of PENALTY; admit/refuse: "calibration"
    value: float = 0.0   # evidence in [-1, 1]; admission score in [0, 1]
    round_id: str = ""
    role: str = ""       # evidence: "generator" or "judge"; penalty: the sole role the node plays, if one
    topic: str = ""      # spot-check evidence: the question's topic (``evidence.topic_of``), if it has one

    def to_body(self) -> dict[str, object]:
        body: dict[str, object] = {"kind": self.kind, "node": self.node_id, "ts": self.ts, "source": self.source,
                                   "value": self.value, "round": self.round_id, "role": self.role}
        if self.topic:  # absent otherwise: entries without a topic stay as older ledgers hold them
            body["topic"] = self.topic
        return body

    @classmethod
    def from_body(cls, body: Mapping[str, object]) -> Event:
        return cls(str(body["kind"]), str(body["node"]), float(body["ts"]), str(body["source"]),  # type: ignore[arg-type]
                   float(body["value"]), str(body["round"]), str(body["role"]), str(body.get("topic", "")))  # type: ignore[arg-type]


def decayed(t: Trust, ts: float) -> Trust:
    if t.status == "quarantined" or ts <= t.updated_unix:
        return t
    factor = math.exp(-(ts - t.updated_unix) / DECAY_SECONDS)
    return replace(t, generator=PROBATION + (t.generator - PROBATION) * factor,
                   judge=PROBATION + (t.judge - PROBATION) * factor, updated_unix=ts)


def _settle(t: Trust, role: str = "", *, plays: str = "") -> Trust:
    """Clip scores; quarantine after a penalty (``role`` empty) that leaves the score of the roles
    the node ``plays`` ("" both) too low, or after a poor record in ``role``."""
    if not (0.0 <= t.generator <= 1.0 and 0.0 <= t.judge <= 1.0):
        t = replace(t, generator=min(1.0, max(0.0, t.generator)), judge=min(1.0, max(0.0, t.judge)))
    if t.status in ("probation", "established"):
        if not role and {"generator": t.generator, "judge": t.judge}.get(plays, t.score) < QUARANTINE:
            return replace(t, status="quarantined")
        if role:
            # Held to the ground-truth record alone: a judge's fast score follows the consensus, and a
            # right judge outvoted by a correlated majority must not be quarantined for that.
            successes, n = t.generator_record if role == "generator" else t.judge_conduct
            if n >= MIN_TRUTHS and evidence.confidently_below(successes, n, ACCURACY_LINE[role]):
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
        return _settle(replace(t, generator=t.generator - cost, judge=t.judge - cost), plays=e.role)
    if e.kind == "evidence":
        rate = RATES[e.source]
        truth = e.source in GROUND_TRUTH
        recorded = e.source in RECORDED
        # one copy of the record per event (every round folds a dozen of these)
        changes: dict[str, Any] = {"truths_passed": t.truths_passed + (1 if truth and e.value >= 0.5 else 0)}
        if e.role == "generator":
            changes["generator"] = t.generator + rate * (e.value - t.generator)
            if recorded:
                changes.update(generator_sum=t.generator_sum + e.value, generator_n=t.generator_n + 1,
                               generator_topics=_add_topic(t.generator_topics, e.topic, e.value))
        elif e.role == "judge":
            changes["judge"] = t.judge + rate * (e.value - t.judge)
            if recorded:
                changes.update(judge_sum=t.judge_sum + e.value, judge_n=t.judge_n + 1)
                if e.source == "spot_check":
                    changes.update(judge_disputed_sum=t.judge_disputed_sum + e.value, judge_disputed_n=t.judge_disputed_n + 1,
                                   judge_topics=_add_topic(t.judge_topics, e.topic, e.value))
            elif e.source == "position_bias":
                changes["judge_biased"] = t.judge_biased + 1
        else:
            raise ValueError(f"evidence needs a role, got {e.role!r}")
        return _settle(replace(t, **changes), e.role)
    raise ValueError(f"unknown event kind {e.kind!r}")


def _add_topic(topics: Topics, topic: str, value: float) -> Topics:
    """The per-topic record with one more observation ``value`` on ``topic`` (unchanged without one)."""
    if not topic:
        return topics
    table = {name: (total, n) for name, total, n in topics}
    total, n = table.get(topic, (0.0, 0))
    table[topic] = (total + value, n + 1)
    return tuple((name, *table[name]) for name in sorted(table))


def replay(events: Iterable[Event]) -> dict[str, Trust]:
    table: dict[str, Trust] = {}
    for e in events:
        table[e.node_id] = apply(table.get(e.node_id), e)
    return table


judge_weight = consensus.judge_weight  # the rule lives with the fit that uses it (per topic)


def judge_weights(trusts: Mapping[str, Trust], judges: Iterable[str], top: int, topic: str = "") -> dict[str, float]:
    """The weights of a round's judges: only the ``top`` most reliable count (``evidence.select``);
    when none has earned weight yet, every eligible one counts the same, a little."""
    weights = evidence.select({j: judge_weight(trusts.get(j), topic) for j in judges}, top)
    if not any(weights.values()):
        return {j: (UNPROVEN_WEIGHT if (t := trusts.get(j)) is not None and t.eligible else 0.0) for j in weights}
    return weights


def agreement(judgment: Judgment, consensus: Consensus) -> float:
    """1 when the verdict prefers the answer the fitted model ranks higher, 0.5 for ties, else 0."""
    sa, sb = consensus.strengths[judgment.answer_a], consensus.strengths[judgment.answer_b]
    if judgment.preference == Preference.TIE or abs(sa - sb) < 1e-9:
        return 0.5
    return 1.0 if (judgment.preference == Preference.A) == (sa > sb) else 0.0


# A pair on which a judge preferred the same position in both orders: it did not judge the answers.
# Nearly as bad as wrong, and distinct from every agreement value (multiples of 0.5), so spot checks
# can tell position bias apart from a wrong verdict.
INCONSISTENT = -0.75


def judge_values(scored: Iterable[tuple[str, tuple[int, int], float, Preference]]) -> dict[str, list[float]]:
    """Per judge, one value per pair it judged (items: judge, pair, agreement, preference): 2a - 1
    for its mean agreement a on the pair, or ``INCONSISTENT`` when it preferred the same position in
    both orders (position bias or coin flips: not a judgment of the answers)."""
    pairs: dict[tuple[str, tuple[int, int]], list[tuple[float, Preference]]] = {}
    for judge, pair, agreed, preference in scored:
        pairs.setdefault((judge, pair), []).append((agreed, preference))
    values: dict[str, list[float]] = {}
    for (judge, _), verdicts in sorted(pairs.items()):
        prefs = [p for _, p in verdicts]
        if len(prefs) == 2 and prefs[0] == prefs[1] and prefs[0] != Preference.TIE:
            value = INCONSISTENT
        else:
            value = 2.0 * sum(a for a, _ in verdicts) / len(verdicts) - 1.0
        values.setdefault(judge, []).append(value)
    return values


def _role_events(round_id: str, ts: float, source: str, generators: Mapping[str, float],
                 judges: Mapping[str, list[float]], topic: str = "", judge_source: str = "") -> list[Event]:
    """Generator events with their values, then judge events (``judge_source``, default ``source``)
    with the mean of their pair values (both carry the question's ``topic``, for the per-topic records)."""
    events = [Event("evidence", node, ts, source, generators[node], round_id, "generator", topic) for node in sorted(generators)]
    for node in sorted(judges):
        events.append(Event("evidence", node, ts, judge_source or source, sum(judges[node]) / len(judges[node]), round_id,
                            "judge", topic))
    return events


def _pair(j: Judgment) -> tuple[int, int]:
    return (min(j.answer_a, j.answer_b), max(j.answer_a, j.answer_b))


def round_events(
    round_id: str,
    ts: float,
    consensus: Consensus | None,
    judgments: Sequence[Judgment],
    answer_of_generator: Mapping[str, int],
    penalties: Sequence[tuple[str, str]],
    sole_roles: Mapping[str, str] | None = None,
) -> list[Event]:
    """The evidence a normal round gives about its nodes (penalties first), in a deterministic order.
    A penalty names the one role a single-role node plays (``sole_roles``): only that score counts
    for its quarantine (a reward model has no generator score to lose)."""
    roles = sole_roles or {}
    events = [Event("penalty", node, ts, reason, 0.0, round_id, roles.get(node, "")) for node, reason in penalties]
    if consensus is None or len(consensus.ranking) < 2:
        return events
    ranks = consensus.ranks or [consensus.ranking.index(i) + 1 for i in range(len(consensus.ranking))]
    last = max(ranks)
    generators = {node: 1.0 if last == 1 else 1.0 - (ranks[i] - 1) / (last - 1) for node, i in answer_of_generator.items()}
    judges = judge_values((j.judge_node_id, _pair(j), agreement(j, consensus), j.preference) for j in judgments)
    return events + _role_events(round_id, ts, "round", generators, judges)


def spot_check_events(
    round_id: str, ts: float, correct: Sequence[bool], answer_of_generator: Mapping[str, int], judgments: Sequence[Judgment],
    topic: str = "", disputed: bool = True, silent: Sequence[str] = (),
) -> list[Event]:
    """Ground truth from a hidden calibration round: ``correct[i]`` says whether answer i is right
    (planted known answers included); the ``silent`` generators (an empty answer) were wrong. Judges
    are scored on the pairs of ``judgments`` where exactly one answer is right (the round passes the
    planted pair's where there is one);
    their weight record counts a spot check only when the round's voters ``disputed`` the answer
    (``consensus.voters_disagree``; else the source is "undisputed_check", conduct only): a verdict
    changes an answer only there, and on questions the strongest generators agree on, the easy ones,
    every judge looks better than it is where it counts."""
    generators = {node: 1.0 if correct[answer] else 0.0 for node, answer in answer_of_generator.items()}
    generators.update(dict.fromkeys(silent, 0.0))  # an empty answer to a question with a known answer is a wrong one

    def truth(j: Judgment) -> float:
        right = Preference.A if correct[j.answer_a] else Preference.B
        return 0.5 if j.preference == Preference.TIE else float(j.preference == right)

    judges = judge_values((j.judge_node_id, _pair(j), truth(j), j.preference)
                          for j in judgments if correct[j.answer_a] != correct[j.answer_b])
    # A pair a judge called a tie both ways is an abstention, not evidence; one with the same
    # position both ways is a "position_bias" event. One observation of each per spot check (pairs
    # of one question are not independent evidence): the mean over the pairs it decided.
    decided = {node: [v for v in values if v not in (0.0, INCONSISTENT)] for node, values in judges.items()}
    events = _role_events(round_id, ts, "spot_check", generators, {node: v for node, v in decided.items() if v}, topic,
                          "spot_check" if disputed else "undisputed_check")
    events += [Event("evidence", node, ts, "position_bias", INCONSISTENT, round_id, "judge")
               for node in sorted(judges) if INCONSISTENT in judges[node]]
    return events

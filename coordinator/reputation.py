"""How reputation moves after a round (pure). First version; the trust layer extends it.

Scores live in [FLOOR, 1]. A new node starts at INITIAL. After each round:
- a judge moves toward its agreement rate with the consensus (verdict agrees when it prefers the
  answer the fitted model ranks higher; a tie counts half), step JUDGE_RATE;
- a generator moves toward its rank score (1 for the winner, 0 for the last), step GENERATOR_RATE;
- stake: an invalid signature, a verdict for a pair it was not asked, or a no-show after accepting
  costs a fixed penalty at once.
A judge's weight in aggregation is its reputation (monotone), so a bad judge loses influence.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from swarmrank.protos.types import Preference

from .consensus import Consensus
from .domain import Judgment

INITIAL = 0.5
FLOOR = 0.01
CEILING = 1.0
JUDGE_RATE = 0.1
GENERATOR_RATE = 0.05
PENALTY = {"bad_signature": 0.1, "unasked_verdict": 0.1, "no_show": 0.05}


@dataclass(frozen=True)
class Change:
    node_id: str
    before: float
    after: float
    reason: str


def _clamp(x: float) -> float:
    return min(CEILING, max(FLOOR, x))


def judge_weight(reputation: float) -> float:
    return max(reputation, FLOOR)


def agreement(judgment: Judgment, consensus: Consensus) -> float:
    sa, sb = consensus.strengths[judgment.answer_a], consensus.strengths[judgment.answer_b]
    if judgment.preference == Preference.TIE:
        return 0.5
    if abs(sa - sb) < 1e-9:
        return 0.5
    preferred_a = judgment.preference == Preference.A
    return 1.0 if preferred_a == (sa > sb) else 0.0


def round_changes(
    reputation: Mapping[str, float],
    consensus: Consensus,
    judgments: Sequence[Judgment],
    answer_of_generator: Mapping[str, int],
    penalties: Sequence[tuple[str, str]],
) -> list[Change]:
    """Every reputation change the round causes, in a deterministic order."""
    current = dict(reputation)
    changes: list[Change] = []

    def move(node_id: str, after: float, reason: str) -> None:
        before = current.get(node_id, INITIAL)
        after = _clamp(after)
        if after != before:
            current[node_id] = after
            changes.append(Change(node_id, before, after, reason))

    for node_id, kind in penalties:
        move(node_id, current.get(node_id, INITIAL) - PENALTY[kind], kind)
    scores: dict[str, list[float]] = defaultdict(list)
    for j in judgments:
        scores[j.judge_node_id].append(agreement(j, consensus))
    for node_id in sorted(scores):
        rate = sum(scores[node_id]) / len(scores[node_id])
        r = current.get(node_id, INITIAL)
        move(node_id, r + JUDGE_RATE * (rate - r), f"judge agreement {rate:.2f}")
    n = len(consensus.ranking)
    if n > 1:
        place = {answer: position for position, answer in enumerate(consensus.ranking)}
        for node_id in sorted(answer_of_generator):
            score = 1.0 - place[answer_of_generator[node_id]] / (n - 1)
            r = current.get(node_id, INITIAL)
            move(node_id, r + GENERATOR_RATE * (score - r), f"generator rank {place[answer_of_generator[node_id]] + 1}/{n}")
    return changes

"""A node's standing with the coordinator (a value; ``reputation`` has the rule that moves it).

A node has a reputation per role, because a good generator can be a bad judge (and the reverse):
its judge record sets the weight of its verdicts, and the worse of the two decides whether it may
work at all (for a node that plays one role only, ``NodeRecord.reputation`` looks at that role).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RECORD_PRIOR = 4.0  # observations the running judge score is worth against the ground-truth record
# Observations the overall judge record is worth against a topic's own record. Infinite (topics
# recorded and replayed, but weights from the overall record): in `bench replay --limit 1000 --seed 0`
# (MMLU-Pro) weights per topic at 50 cost 3.2 points (69.70% against 72.90%), offline 10 cost 1.3.
TOPIC_PRIOR = math.inf


@dataclass(frozen=True)
class Trust:
    generator: float    # how good its answers have proven to be, in [0, 1]
    judge: float        # how reliable its verdicts have proven to be, in [0, 1]
    status: str         # "probation", "established", "quarantined" or "refused"
    updated_unix: float
    truths_passed: int  # ground-truth checks passed since the last admission
    # The ground-truth record since admission, per role (sum and count of calibration and spot-check
    # values): quarantine needs a poor record, not one unlucky streak of the scores above, and
    # ground truth cannot be swayed by whoever dominates a round's consensus.
    generator_sum: float = 0.0
    generator_n: int = 0
    judge_sum: float = 0.0
    judge_n: int = 0
    # Spot checks on which it preferred the same position in both orders of a pair: not in the
    # record its weight comes from (such verdicts count for nothing), but counted against it.
    judge_biased: int = 0
    # The judge record per topic of the spot-check questions ((topic, sum, count), sorted by topic):
    # a node can be strong on law and weak on physics.
    judge_topics: tuple[tuple[str, float, int], ...] = ()

    @property
    def judge_reliability(self) -> float:
        """The judge's ground-truth record (mean value since admission), shrunk toward its running
        score, which counts as ``RECORD_PRIOR`` observations. The running score moves fast and
        follows the consensus; the record is slow and cannot be swayed by a correlated majority,
        so it decides once there is enough of it."""
        return (self.judge_sum + RECORD_PRIOR * self.judge) / (self.judge_n + RECORD_PRIOR)

    @property
    def generator_record(self) -> tuple[float, int]:
        """(successes, observations) of its hidden spot checks as a generator."""
        return self.generator_sum, self.generator_n

    @property
    def judge_record(self) -> tuple[float, int]:
        """(successes, observations) of its spot checks as a judge, on the pairs it decided without
        position bias (value v is (v + 1) / 2 right): how often it is right when it speaks."""
        return (self.judge_sum + self.judge_n) / 2.0, self.judge_n

    def judge_record_on(self, topic: str) -> tuple[float, int]:
        """The judge record for a question of ``topic``: the accuracy on that topic shrunk toward the
        overall one (worth ``TOPIC_PRIOR`` observations), at the confidence of the overall record
        (a topic's few observations move the estimate, they do not make it surer)."""
        successes, n = self.judge_record
        if math.isinf(TOPIC_PRIOR):
            return successes, n
        for name, total, k in self.judge_topics:
            if name == topic and n:
                shrunk = ((total + k) / 2.0 + TOPIC_PRIOR * successes / n) / (k + TOPIC_PRIOR)
                return shrunk * n, n
        return successes, n

    @property
    def judge_conduct(self) -> tuple[float, int]:
        """The same with position-biased spot checks counted as failures (what quarantine looks at)."""
        successes, n = self.judge_record
        return successes, n + self.judge_biased

    @property
    def score(self) -> float:
        return min(self.generator, self.judge)

    @property
    def eligible(self) -> bool:
        return self.status in ("probation", "established")

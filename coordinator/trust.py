"""A node's standing with the coordinator (a value; ``reputation`` has the rule that moves it).

A node has a reputation per role, because a good generator can be a bad judge (and the reverse):
its judge record sets the weight of its verdicts, and the worse of the two decides whether it may
work at all (for a node that plays one role only, ``NodeRecord.reputation`` looks at that role).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

RECORD_PRIOR = 4.0  # observations the running judge score is worth against the ground-truth record
# Observations a node's overall record is worth against its record on one topic (shrinkage), 50 for
# both roles: the voters of a round are the strongest few on its topic (consensus.generator_votes;
# 25 and 100 were within 0.1 point in `bench offline` on MMLU-Pro), and so is the judge that leads a
# pair. (Before generators voted, judge weights per topic cost 3.2 points on MMLU-Pro; math.inf
# turns them off.)
TOPIC_PRIOR = 50.0
GENERATOR_TOPIC_PRIOR = 50.0

Topics = tuple[tuple[str, float, int], ...]  # (topic, sum, count), sorted by topic


def _shrunk(successes: float, n: int, topic_successes: float, k: int, prior: float) -> tuple[float, int]:
    """The accuracy on a topic (``topic_successes`` of ``k``) shrunk toward the overall one, worth
    ``prior`` observations, at the confidence of the overall record (a topic's few observations
    move the estimate, they do not make it surer)."""
    if math.isinf(prior) or not n or not k:
        return successes, n
    return (topic_successes + prior * successes / n) / (k + prior) * n, n


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
    # The records per topic of the spot-check questions ((topic, sum, count), sorted by topic): a
    # node can be strong on law and weak on physics.
    judge_topics: Topics = ()  # judges: disputed spot checks only, like the weight record below
    generator_topics: Topics = ()
    # The judge's record on the spot checks whose voters disputed the answer
    # (``consensus.voters_disagree``): where a verdict can change a round's answer. Its weight comes
    # from this record; conduct (quarantine) from the whole record above.
    judge_disputed_sum: float = 0.0
    judge_disputed_n: int = 0

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

    @property
    def judge_weight_record(self) -> tuple[float, int]:
        """(successes, observations) of its verdicts on disputed spot checks: what its weight comes from."""
        return (self.judge_disputed_sum + self.judge_disputed_n) / 2.0, self.judge_disputed_n

    def judge_record_on(self, topic: str) -> tuple[float, int]:
        """The judge's weight record for a question of ``topic``, shrunk toward its overall one (``TOPIC_PRIOR``)."""
        for name, total, k in self.judge_topics:
            if name == topic:
                return _shrunk(*self.judge_weight_record, (total + k) / 2.0, k, TOPIC_PRIOR)
        return self.judge_weight_record

    def generator_record_on(self, topic: str) -> tuple[float, int]:
        """The generator record for a question of ``topic``, shrunk toward the overall one
        (``GENERATOR_TOPIC_PRIOR``)."""
        for name, total, k in self.generator_topics:
            if name == topic:
                return _shrunk(*self.generator_record, total, k, GENERATOR_TOPIC_PRIOR)
        return self.generator_record

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

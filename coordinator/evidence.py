"""What a ground-truth record proves (pure): confidence bounds on accuracy and the weight they earn.

A record is a number of calibration/spot-check observations and how many of them were right
(fractional for judges: a value v in [-1, 1] is (v + 1) / 2 of a success). Its accuracy is only
known to an interval (Wilson score interval, sound at 0 and at n successes), and the rule uses the
interval, never the raw mean:

- **Weight** is the log-odds of the *lower* bound above the chance level of the question format
  (0.5 for a pairwise verdict, 1/options for multiple choice): the optimal weight of an independent
  voter with that accuracy, and exactly 0 until the record is confidently better than guessing.
- **Quarantine** needs the *upper* bound of a 99% interval below the role's line: bad with
  confidence, never by the luck of a short record.
- **Selection.** Weak voters with correlated mistakes outvote a few strong ones, so only the
  ``top`` weights count in a round (``select``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

WEIGHT_Z = 1.645       # one-sided 95% lower bound for weights
# Upper end of a two-sided 99% interval for quarantine. The test runs after every observation, so a
# 95% interval falsely quarantines an honest judge right on 63% of verdicts (line 60%) on about 1
# path in 10 over 500 observations (simulated); at 99%, about 1 in 35. The replay lost
# Meta-Llama-3.1-70B-Instruct (63% on MMLU-Pro) that way, on 2 right of its first 8.
QUARANTINE_Z = 2.576
PAIRWISE_CHANCE = 0.5
FREE_FORM_CHANCE = 0.01  # an open answer is rarely right by luck; kept above 0 so log-odds stay finite
# Until a node has passed ``reputation.PROVEN_AFTER`` ground-truth checks its weight (judge or
# generator) stays below a cap (``on_probation``): ten fresh identities weigh at most 10 x 0.02 = 0.2.
PROBATION_WEIGHT_CAP = 0.02
_EPS = 1e-6
_OPTION = re.compile(r"^\s*\(?([A-J])[).:]\s", re.M)
_TOPIC = re.compile(r"\A\s*Subject:[ \t]*([^\n]{1,64}?)[ \t]*$", re.M)


def wilson(successes: float, n: float, z: float) -> tuple[float, float]:
    """Wilson score interval of an accuracy from ``successes`` of ``n`` (``(0, 1)`` with no record)."""
    if n <= 0:
        return 0.0, 1.0
    p = min(1.0, max(0.0, successes / n))
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def log_odds_above(p: float, chance: float) -> float:
    """log(p / (1 - p)) - log(c / (1 - c)), floored at 0: nothing for a record at or below chance."""
    p = min(1 - _EPS, max(_EPS, p))
    c = min(1 - _EPS, max(_EPS, chance))
    return max(0.0, math.log(p / (1 - p)) - math.log(c / (1 - c)))


def weight(successes: float, n: float, chance: float) -> float:
    """The weight a record earns: log-odds of its lower confidence bound above ``chance``."""
    return log_odds_above(wilson(successes, n, WEIGHT_Z)[0], chance)


def on_probation(w: float) -> float:
    """A weight squeezed below ``PROBATION_WEIGHT_CAP`` in the same order (w / (1 + w) of the cap): a
    young swarm, all on probation, still lets its best-proven members lead."""
    return PROBATION_WEIGHT_CAP * w / (1.0 + w)


def confidently_below(successes: float, n: float, line: float) -> bool:
    """Is the accuracy below ``line`` with 99% confidence (``QUARANTINE_Z``)?"""
    return n > 0 and wilson(successes, n, QUARANTINE_Z)[1] < line


def chance_of(prompt: str) -> float:
    """The chance level of a question's format: 1/options when it lists lettered options (A) ...),
    else that of a free-form answer."""
    letters = set(_OPTION.findall(prompt))
    return 1.0 / len(letters) if len(letters) >= 2 else FREE_FORM_CHANCE


def topic_of(prompt: str) -> str:
    """A question's topic from its metadata: a first line ``Subject: <topic>`` ("" without one)."""
    match = _TOPIC.match(prompt)
    return match.group(1).strip().lower() if match else ""


def select(weights: Mapping[str, float], top: int) -> dict[str, float]:
    """Keep the ``top`` largest positive weights (ties: by id), zero the rest (``top`` 0: keep all)."""
    ranked = sorted((node for node, w in weights.items() if w > 0), key=lambda node: (-weights[node], node))
    kept = set(ranked[:top] if top > 0 else ranked)
    return {node: (w if node in kept else 0.0) for node, w in weights.items()}

"""Which answers each judge compares (pure).

Schedule: for a few answers, every ordered pair (full round robin). Beyond that, the sparse
schedule of the Fortytwo client: adjacent pairs (i, i+1) and "cross" pairs (i, i+n/2) around a
random cycle, each in both orders. About 3n comparisons instead of n(n-1), and the comparison graph
stays connected with diameter about n/4. Both orders of a pair cancel position bias.

Assignment: each pair goes, in both orders, to one judge (or a panel of ``per_pair`` judges) that
wrote neither answer, least loaded per unit of weight first (ties broken at random). The same judge
sees both orders so that its position bias cancels within its own verdicts (an always-"A" judge
then says nothing) and shows in its agreement score.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

FULL_ROUND_ROBIN_MAX = 5  # up to 5 answers the sparse schedule would cover every pair anyway


@dataclass(frozen=True)
class PlannedComparison:
    comparison_id: str
    answer_a: int
    answer_b: int
    judge: str


def schedule(n: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Ordered pairs (a, b) of answer indices to compare."""
    if n < 2:
        return []
    if n <= FULL_ROUND_ROBIN_MAX:
        pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    else:
        cycle = [int(x) for x in rng.permutation(n)]
        unordered: set[tuple[int, int]] = set()
        edges = [(i, i + 1) for i in range(n)] + [(i, i + n // 2) for i in range((n + 1) // 2)]
        for i, j in edges:
            a, b = cycle[i % n], cycle[j % n]
            unordered.add((min(a, b), max(a, b)))
        pairs = [p for a, b in sorted(unordered) for p in ((a, b), (b, a))]
    order = rng.permutation(len(pairs))
    return [pairs[i] for i in order]


def assign(
    pairs: Sequence[tuple[int, int]],
    authors: Sequence[frozenset[str]],
    judges: Sequence[str],
    rng: np.random.Generator,
    *,
    round_tag: str,
    weights: Mapping[str, float] | np.ndarray | None = None,
    per_pair: int = 1,
) -> tuple[list[PlannedComparison], list[tuple[int, int]]]:
    """Assign each pair to ``per_pair`` eligible judges (fewer if fewer are eligible). Returns
    (planned, pairs with no eligible judge).

    With ``weights`` (the judges' weights in aggregation), load is spread in proportion to weight:
    the next pair goes to the eligible judges with the least load per unit of weight, so trusted
    judges decide most pairs while every judge keeps being tested. ``weights`` may also be an array
    aligned with ``judges`` (no per-judge Python work: the coordinator's path at 10,000 nodes)."""
    load: dict[str, int] = defaultdict(int)
    if weights is None:
        w_all = np.ones(len(judges))
    elif isinstance(weights, np.ndarray):
        w_all = weights
    else:
        w_all = np.array([weights.get(j, 0.0) for j in judges], dtype=float)
    # Only the judges with the smallest starting key can ever be picked: while pairs are being
    # assigned, fewer than (pairs x per_pair) judges carry load and at most the authors are
    # ineligible, so a shortlist of that many (plus ties) gives the same plan as all 10,000.
    unique_pairs = len({(min(a, b), max(a, b)) for a, b in pairs})
    need = unique_pairs * per_pair + len(frozenset().union(*authors)) if authors else 0
    base = 1.0 / (w_all + 1e-3)
    if 0 < need < len(judges):
        cutoff = base[np.argpartition(base, need - 1)[:need]].max()
        shortlist = np.flatnonzero(base <= cutoff)
    else:
        shortlist = np.arange(len(judges))
    names = [judges[int(i)] for i in shortlist]
    w = {judges[int(i)]: float(w_all[i]) for i in shortlist}
    # Random tie-breaks are drawn for the shortlist only: the others can never be picked.
    tiebreak = dict(zip(names, rng.random(len(names)).tolist()))
    judges_of_pair: dict[tuple[int, int], list[str]] = {}
    planned: list[PlannedComparison] = []
    unassigned: list[tuple[int, int]] = []
    for a, b in pairs:
        key = (min(a, b), max(a, b))
        chosen = judges_of_pair.get(key)
        if chosen is None:
            eligible = [j for j in names if j not in authors[a] and j not in authors[b]]
            if not eligible:
                unassigned.append((a, b))
                continue
            eligible.sort(key=lambda j: ((load[j] + 1) / (w.get(j, 0.0) + 1e-3), tiebreak[j]))
            chosen = judges_of_pair[key] = eligible[:per_pair]
        for judge in chosen:
            load[judge] += 1
            planned.append(PlannedComparison(f"{round_tag}-{len(planned)}", a, b, judge))
    return planned, unassigned


def anonymise(
    planned: Sequence[PlannedComparison],
    rng: np.random.Generator,
    *,
    round_tag: str,
    planted: Sequence[tuple[int, int, str]] = (),
) -> list[PlannedComparison]:
    """Shuffle the comparisons (with any planted ones: (a, b, judge)) and number them afresh, so that
    neither position in a batch nor id tells a judge which comparison is which."""
    items = [(p.answer_a, p.answer_b, p.judge) for p in planned] + list(planted)
    return [PlannedComparison(f"{round_tag}-{k}", *items[int(i)]) for k, i in enumerate(rng.permutation(len(items)))]


def batches(planned: Sequence[PlannedComparison], max_batch: int) -> Mapping[str, list[list[PlannedComparison]]]:
    """Group comparisons per judge, in calls of at most ``max_batch``."""
    per_judge: dict[str, list[PlannedComparison]] = defaultdict(list)
    for p in planned:
        per_judge[p.judge].append(p)
    return {j: [items[i : i + max_batch] for i in range(0, len(items), max_batch)] for j, items in per_judge.items()}

"""Choosing the generators of a round (pure).

A client's round goes to the nodes most likely to be right: ordered by the lower confidence bound
of their hidden spot-check record (``evidence.wilson``), so a few strong, proven members carry it.
Exploration happens where it cannot cost an answer: hidden spot checks (``explore=True``) use
weighted sampling without replacement, weight = exploration + reputation, with the nodes whose
generator record is still shorter than the probation length (``spot_checks.PROBATION_CHECKS``)
first, so newcomers earn a record fast and every healthy node is measured now and then. Until records exist (a new swarm), client rounds
sample the same way. Distinct models come first, because copies of one model make correlated mistakes; copies
fill the remaining places only when there are not enough distinct models. Nodes already at their
advertised capacity are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from .domain import NodeRecord
from .evidence import WEIGHT_Z, wilson
from .spot_checks import PROBATION_CHECKS

DEFAULT_EXPLORATION = 0.1


@dataclass(frozen=True)
class Pool:
    """The nodes a round may use, in columns: built once when the swarm changes, not per query, so
    that choosing among 10,000 nodes costs vectorised work and no Python loop over them."""

    nodes: tuple[NodeRecord, ...]
    weights: np.ndarray      # exploration + reputation, > 0
    model_codes: np.ndarray  # one integer per distinct model name
    capacity: np.ndarray     # advertised max concurrency (at least 1)
    generates: np.ndarray    # bool: the node plays the generator role
    proof: np.ndarray        # lower confidence bound of its generator record (0 without one)
    measured: np.ndarray     # observations in its generator record
    index: Mapping[str, int]
    models: int

    @classmethod
    def build(cls, nodes: Sequence[NodeRecord], exploration: float = DEFAULT_EXPLORATION) -> Pool:
        codes: dict[str, int] = {}
        return cls(
            tuple(nodes),
            np.array([exploration + max(n.reputation, 0.0) for n in nodes], dtype=float) + 1e-12,
            np.array([codes.setdefault(n.model_name, len(codes)) for n in nodes], dtype=np.int64),
            np.array([max(n.max_concurrency, 1) for n in nodes], dtype=np.int64),
            np.array([n.role.generates for n in nodes], dtype=bool),
            np.array([wilson(*n.trust.generator_record, WEIGHT_Z)[0] for n in nodes], dtype=float),
            np.array([n.trust.generator_n for n in nodes], dtype=np.int64),
            {n.node_id: i for i, n in enumerate(nodes)},
            len(codes),
        )


def choose_from_pool(pool: Pool, k: int, rng: np.random.Generator, *, in_flight: Mapping[str, int] | None = None,
                     explore: bool = True, probation_checks: int = PROBATION_CHECKS) -> list[NodeRecord]:
    """Up to ``k`` generators: Efraimidis-Spirakis keys (node i early with probability ∝ its
    weight), the best-keyed node of each model first, then copies in key order. Only the top of the
    order is sorted; the whole order only when the top holds too few distinct models. With
    ``explore`` nodes whose generator record is shorter than ``probation_checks`` come first (keys
    order them, and the rest); without it the strongest proven nodes come first (keys order the
    unproven)."""
    free = pool.generates.copy()
    if in_flight:  # only nodes with calls in flight; vectorised, as there may be hundreds
        rows = np.fromiter((pool.index.get(node_id, -1) for node_id in in_flight), dtype=np.int64, count=len(in_flight))
        busy = np.fromiter(in_flight.values(), dtype=np.int64, count=len(in_flight))
        known = rows >= 0
        rows, busy = rows[known], busy[known]
        free[rows[busy >= pool.capacity[rows]]] = False
    idx = np.flatnonzero(free)
    if not len(idx) or k <= 0:
        return []
    keys = rng.random(len(idx)) ** (1.0 / pool.weights[idx])
    if explore:
        keys = keys + (pool.measured[idx] < probation_checks)  # keys are in [0, 1]: short records first
    elif pool.proof[idx].any():
        keys = pool.proof[idx] + 1e-6 * keys  # proof first; the keys only order equal proofs
    top = min(len(idx), max(8 * k, 64))
    head = np.argpartition(-keys, top - 1)[:top] if top < len(idx) else np.arange(len(idx))
    order = head[np.argsort(-keys[head], kind="stable")]
    if top < len(idx) and len(set(pool.model_codes[idx[order]].tolist())) < min(k, pool.models):
        order = np.argsort(-keys, kind="stable")  # rare: the top is crowded by copies of few models
    chosen: list[int] = []
    seen: set[int] = set()
    for i in order:  # first pass: one node per model
        code = int(pool.model_codes[idx[i]])
        if code not in seen:
            chosen.append(int(i))
            seen.add(code)
            if len(chosen) == k or len(seen) == pool.models:
                break
    taken = set(chosen)
    for i in order:  # second pass: fill with copies
        if len(chosen) >= k:
            break
        if int(i) not in taken:
            chosen.append(int(i))
    return [pool.nodes[int(idx[i])] for i in chosen]


def choose_generators(
    nodes: Sequence[NodeRecord],
    k: int,
    rng: np.random.Generator,
    *,
    in_flight: Mapping[str, int] | None = None,
    exploration: float = DEFAULT_EXPLORATION,
    explore: bool = True,
    probation_checks: int = PROBATION_CHECKS,
) -> list[NodeRecord]:
    """Up to ``k`` generating nodes among ``nodes`` (which the caller filtered to healthy, admitted
    ones): sampled with ``explore``, else the strongest proven first. In id order, not registration
    order: with a seeded rng and the same nodes, the same choice."""
    ordered = sorted(nodes, key=lambda n: n.node_id)
    return choose_from_pool(Pool.build(ordered, exploration), k, rng, in_flight=in_flight, explore=explore,
                            probation_checks=probation_checks)

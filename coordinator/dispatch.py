"""Choosing the generators of a round (pure).

A client's round goes to the nodes most likely to be right: ordered by the lower confidence bound
of their hidden spot-check record (``evidence.wilson``), so a few strong, proven members carry it.
Exploration happens where it cannot cost an answer: hidden spot checks (``explore=True``) use
weighted sampling without replacement, weight = exploration + reputation, so every healthy node
is measured now and then and newcomers earn a record. Until records exist (a new swarm), client
rounds sample the same way. Distinct models come first, because copies of one model make correlated mistakes; copies
fill the remaining places only when there are not enough distinct models. Nodes already at their
advertised capacity are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .domain import NodeRecord
from .evidence import WEIGHT_Z, wilson

DEFAULT_EXPLORATION = 0.1


def _weighted_order(nodes: Sequence[NodeRecord], rng: np.random.Generator, exploration: float) -> list[NodeRecord]:
    """A random order where node i comes early with probability ∝ its weight (Efraimidis-Spirakis)."""
    if not nodes:
        return []
    weights = np.array([exploration + max(n.reputation, 0.0) for n in nodes]) + 1e-12
    keys = rng.random(len(nodes)) ** (1.0 / weights)
    return [nodes[i] for i in np.argsort(-keys, kind="stable")]


def choose_generators(
    nodes: Sequence[NodeRecord],
    k: int,
    rng: np.random.Generator,
    *,
    in_flight: Mapping[str, int] | None = None,
    exploration: float = DEFAULT_EXPLORATION,
    explore: bool = True,
) -> list[NodeRecord]:
    """Up to ``k`` generating nodes among ``nodes`` (which the caller filtered to healthy, admitted
    ones): sampled with ``explore``, else the strongest proven first (sampled ones after them)."""
    busy = in_flight or {}
    # In id order, not registration order: with a seeded rng and the same nodes, the same choice.
    free = sorted((n for n in nodes if n.role.generates and busy.get(n.node_id, 0) < max(n.max_concurrency, 1)),
                  key=lambda n: n.node_id)
    order = _weighted_order(free, rng, exploration)
    if not explore:
        proof = {n.node_id: wilson(*n.trust.generator_record, WEIGHT_Z)[0] for n in free}
        order = sorted(order, key=lambda n: -proof[n.node_id])  # stable: unproven keep their sampled order
    chosen: list[NodeRecord] = []
    seen_models: set[str] = set()
    for node in order:  # first pass: one node per model
        if len(chosen) < k and node.model_name not in seen_models:
            chosen.append(node)
            seen_models.add(node.model_name)
    for node in order:  # second pass: fill with copies
        if len(chosen) >= k:
            break
        if node not in chosen:
            chosen.append(node)
    return chosen

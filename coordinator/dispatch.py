"""Choosing the generators of a round (pure).

Weighted sampling without replacement: weight = exploration + reputation, so strong nodes get
most of the work but every healthy node is picked now and then (its reputation can only change if
it plays). Distinct models come first, because copies of one model make correlated mistakes; copies
fill the remaining places only when there are not enough distinct models. Nodes already at their
advertised capacity are left out.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from .domain import NodeRecord

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
) -> list[NodeRecord]:
    """Up to ``k`` generating nodes among ``nodes`` (which the caller filtered to healthy, admitted ones)."""
    busy = in_flight or {}
    free = [n for n in nodes if n.role.generates and busy.get(n.node_id, 0) < max(n.max_concurrency, 1)]
    order = _weighted_order(free, rng, exploration)
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

"""Who is in the swarm: registration, heartbeats, health, reputation (in memory, mirrored to the store).

Health is a pure function of the last heartbeat: healthy within HEALTHY_AFTER heartbeat intervals,
unhealthy (no new work) until GONE_AFTER intervals, then gone. A node whose call failed in a round
is unhealthy until its next heartbeat.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence

from .domain import NodeRecord
from .reputation import Change
from .store import Store

HEALTHY_AFTER = 3.0
GONE_AFTER = 20.0


def node_state(node: NodeRecord, now: float, interval: float) -> str:
    age = now - node.last_seen_unix
    if age > GONE_AFTER * interval:
        return "gone"
    if node.failed_unix > node.last_seen_unix or age > HEALTHY_AFTER * interval:
        return "unhealthy"
    return "healthy"


class Registry:
    def __init__(self, store: Store, heartbeat_interval: float, clock: Callable[[], float] = time.time) -> None:
        self._store = store
        self.heartbeat_interval = heartbeat_interval
        self._clock = clock
        self._nodes: dict[str, NodeRecord] = {n.node_id: n for n in store.load_nodes()}

    def get(self, node_id: str) -> NodeRecord | None:
        return self._nodes.get(node_id)

    def all(self) -> list[NodeRecord]:
        return sorted(self._nodes.values(), key=lambda n: n.node_id)

    def state(self, node: NodeRecord) -> str:
        return node_state(node, self._clock(), self.heartbeat_interval)

    def healthy(self) -> list[NodeRecord]:
        now = self._clock()
        return [n for n in self.all() if node_state(n, now, self.heartbeat_interval) == "healthy"]

    def register(self, node: NodeRecord) -> NodeRecord:
        """Add or refresh a node; a known node keeps its reputation and history."""
        known = self._nodes.get(node.node_id)
        if known is not None:
            node = dataclasses.replace(known, address=node.address, models=node.models,
                                       max_concurrency=node.max_concurrency, last_seen_unix=node.last_seen_unix,
                                       failed_unix=0.0)
        self._nodes[node.node_id] = node
        self._store.upsert_node(node)
        return node

    def heartbeat(self, node_id: str) -> bool:
        node = self._nodes.get(node_id)
        if node is None:
            return False
        now = self._clock()
        self._nodes[node_id] = dataclasses.replace(node, last_seen_unix=now)
        self._store.touch(node_id, now)
        return True

    def mark_failed(self, node_id: str) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            self._nodes[node_id] = dataclasses.replace(node, failed_unix=self._clock())

    def reputations(self) -> dict[str, float]:
        return {n.node_id: n.reputation for n in self._nodes.values()}

    def apply(self, round_id: str, changes: Sequence[Change], players: Sequence[str]) -> None:
        self._store.apply_changes(round_id, changes, players)
        for c in changes:
            if c.node_id in self._nodes:
                self._nodes[c.node_id] = dataclasses.replace(self._nodes[c.node_id], reputation=c.after)
        for node_id in set(players):
            if node_id in self._nodes:
                n = self._nodes[node_id]
                self._nodes[node_id] = dataclasses.replace(n, rounds=n.rounds + 1)

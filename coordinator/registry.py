"""Who is in the swarm: nodes, their health and their trust (in memory, mirrored to the store).

Health is a pure function of the last heartbeat: healthy within HEALTHY_AFTER heartbeat intervals,
unhealthy (no new work) until GONE_AFTER intervals, then gone. A node whose call failed in a round
is unhealthy until its next heartbeat. Only eligible nodes (on probation or established) get work.
Trust changes only through ``record``, which writes ledger events and the node table together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from swarmrank.protos.types import ModelInfo

from . import reputation
from .domain import NodeRecord
from .store import Store
from .trust import Trust

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
        self.clock = clock
        self._nodes: dict[str, NodeRecord] = {n.node_id: n for n in store.load_nodes()}
        self._commit_lock = asyncio.Lock()

    def get(self, node_id: str) -> NodeRecord | None:
        return self._nodes.get(node_id)

    def all(self) -> list[NodeRecord]:
        return sorted(self._nodes.values(), key=lambda n: n.node_id)

    def state(self, node: NodeRecord) -> str:
        """"healthy", "unhealthy", "gone", or the trust status of a node that may not work."""
        if not node.trust.eligible:
            return node.trust.status
        return node_state(node, self.clock(), self.heartbeat_interval)

    def healthy(self) -> list[NodeRecord]:
        now = self.clock()
        return [n for n in self.all() if n.trust.eligible and node_state(n, now, self.heartbeat_interval) == "healthy"]

    def relocate(self, node_id: str, address: str, models: tuple[ModelInfo, ...], max_concurrency: int) -> NodeRecord:
        """A known node registered again (restart, new address): keep its trust and history."""
        node = dataclasses.replace(self._nodes[node_id], address=address, models=models, max_concurrency=max_concurrency,
                                   last_seen_unix=self.clock(), failed_unix=0.0)
        self._nodes[node_id] = node
        self._store.update_node(node)
        return node

    def heartbeat(self, node_id: str) -> bool:
        node = self._nodes.get(node_id)
        if node is None:
            return False
        now = self.clock()
        self._nodes[node_id] = dataclasses.replace(node, last_seen_unix=now)
        self._store.touch(node_id, now)
        return True

    def mark_failed(self, node_id: str) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            self._nodes[node_id] = dataclasses.replace(node, failed_unix=self.clock())

    def trusts(self) -> dict[str, Trust]:
        return {n.node_id: n.trust for n in self._nodes.values()}

    async def record(
        self,
        events: Sequence[reputation.Event],
        *,
        new_nodes: Iterable[NodeRecord] = (),
        players: Iterable[str] = (),
        summaries: Sequence[dict[str, Any]] = (),
    ) -> list[str]:
        """Apply reputation events (and log round summaries) durably, then in memory. Returns the
        nodes these events newly quarantined.

        The fsync'd commit runs in a worker thread; the lock keeps records in call order (asyncio
        locks are FIFO), so the ledger's order is the order of the calls and each record starts
        from the trust the previous one left."""
        async with self._commit_lock:
            new = {n.node_id: n for n in new_nodes}
            trusts = self._apply(events, new)
            played = list(players)
            bodies = [e.to_body() for e in events] + list(summaries)
            await asyncio.to_thread(self._store.commit, bodies, trusts, new_nodes=list(new.values()), players=played)
            was_quarantined = {node_id for node_id, n in self._nodes.items() if n.trust.status == "quarantined"}
            for node_id, n in new.items():
                self._nodes[node_id] = n
            for node_id, t in trusts.items():
                if node_id in self._nodes:
                    self._nodes[node_id] = dataclasses.replace(self._nodes[node_id], trust=t)
            for node_id in set(played):
                if node_id in self._nodes:
                    n = self._nodes[node_id]
                    self._nodes[node_id] = dataclasses.replace(n, rounds=n.rounds + 1)
            return sorted(node_id for node_id, t in trusts.items()
                          if t.status == "quarantined" and node_id not in was_quarantined)

    def _apply(self, events: Sequence[reputation.Event], new: dict[str, NodeRecord]) -> dict[str, Trust]:
        """Each touched node's trust after ``events`` (nothing is changed yet)."""
        trusts: dict[str, Trust] = {}
        for e in events:
            known = self._nodes.get(e.node_id) or new.get(e.node_id)
            before = trusts.get(e.node_id) or (known.trust if known and e.node_id not in new else None)
            trusts[e.node_id] = reputation.apply(before, e)
        return trusts

"""Who is in the swarm: nodes, their health and their trust (in memory, mirrored to the store).

Health is a pure function of the last heartbeat: healthy within HEALTHY_AFTER heartbeat intervals,
unhealthy (no new work) until GONE_AFTER intervals, then gone. A node whose call failed in a round
is unhealthy until its next heartbeat. Only eligible nodes (on probation or established) get work.
Trust changes only through ``record``, which writes ledger events and the node table together.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from swarmrank.protos.types import ModelInfo

from . import reputation
from .domain import NodeRecord, RoundResult
from .store import Store
from .trust import Trust

log = logging.getLogger("swarmrank.coordinator")

HEALTHY_AFTER = 3.0
GONE_AFTER = 20.0
TOUCH_EVERY = 1.0  # seconds between batched writes of heartbeat times


@dataclass
class _Pending:
    events: list[reputation.Event]
    new: dict[str, NodeRecord]
    players: list[str]
    summaries: list[dict[str, Any]]
    rounds: list[tuple[RoundResult, bool, str]]
    future: asyncio.Future[list[str]]


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
        self._pending: list[_Pending] = []
        self._unsaved_seen: dict[str, float] = {}
        self._saved_seen_unix = 0.0
        self._flusher: asyncio.Task[None] | None = None

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
        # Persisted in batches, at most once per TOUCH_EVERY seconds: 10,000 nodes heartbeating
        # must not cost 10,000 fsyncs. A crash loses under a second of last-seen times, which only
        # matter for health, and nodes heartbeat again within one interval anyway.
        self._unsaved_seen[node_id] = now
        if now - self._saved_seen_unix >= TOUCH_EVERY:
            self.flush_heartbeats()
        return True

    def flush_heartbeats(self) -> None:
        if self._unsaved_seen:
            self._store.touch_many(self._unsaved_seen)
        self._unsaved_seen = {}
        self._saved_seen_unix = self.clock()

    def mark_failed(self, node_id: str) -> None:
        node = self._nodes.get(node_id)
        if node is not None:
            self._nodes[node_id] = dataclasses.replace(node, failed_unix=self.clock())

    def trusts(self) -> dict[str, Trust]:
        return {n.node_id: n.trust for n in self._nodes.values()}

    def _fold(self, events: Sequence[reputation.Event], new: Mapping[str, NodeRecord], trusts: dict[str, Trust]) -> None:
        """Apply ``events`` on top of ``trusts`` (changes not yet in memory), else the known trust."""
        for e in events:
            known = self._nodes.get(e.node_id) or new.get(e.node_id)
            before = trusts.get(e.node_id) or (known.trust if known and e.node_id not in new else None)
            trusts[e.node_id] = reputation.apply(before, e)

    def _apply(self, new: Mapping[str, NodeRecord], trusts: Mapping[str, Trust], played: Iterable[str]) -> list[str]:
        """Committed changes into memory; returns the nodes that became quarantined."""
        quarantined = []
        for node_id, n in new.items():
            self._nodes[node_id] = n
        rounds = Counter(played)
        for node_id in trusts.keys() | rounds.keys():
            node = self._nodes.get(node_id)
            if node is None:
                continue
            t = trusts.get(node_id, node.trust)
            if t.status == "quarantined" and node.trust.status != "quarantined":
                quarantined.append(node_id)
            self._nodes[node_id] = dataclasses.replace(node, trust=t, rounds=node.rounds + rounds[node_id])
        return sorted(quarantined)

    async def record(
        self,
        events: Sequence[reputation.Event],
        *,
        new_nodes: Iterable[NodeRecord] = (),
        players: Iterable[str] = (),
        summaries: Sequence[dict[str, Any]] = (),
        rounds: Sequence[tuple[RoundResult, bool, str]] = (),
    ) -> list[str]:
        """Apply reputation events (and log round summaries, and save the rounds they summarise)
        durably, then in memory; returns the nodes these events newly quarantined. Group commit,
        off the event loop: the records that arrive while one
        transaction is being written go together into the next (one fsync for many rounds). Trust
        is folded and applied in memory on the event loop only, in arrival order, so the node table
        stays the replay of the ledger. Returns the nodes this record quarantined."""
        future: asyncio.Future[list[str]] = asyncio.get_running_loop().create_future()
        self._pending.append(_Pending(list(events), {n.node_id: n for n in new_nodes}, list(set(players)),
                                      list(summaries), list(rounds), future))
        if self._flusher is None or self._flusher.done():
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await asyncio.shield(future)  # a cancelled round must not cancel others' commit

    async def _flush(self) -> None:
        while self._pending:
            batch, self._pending = self._pending, []
            try:
                quarantined = await self._commit_batch(batch)
            except BaseException as exc:  # nothing was written or applied: every record of the batch fails
                log.error("ledger commit of %d record(s) failed: %r", len(batch), exc)
                for p in batch:
                    if not p.future.done():
                        p.future.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for p in batch:
                if not p.future.done():
                    p.future.set_result(sorted({e.node_id for e in p.events} & quarantined))

    async def _commit_batch(self, batch: Sequence[_Pending]) -> set[str]:
        trusts: dict[str, Trust] = {}
        new: dict[str, NodeRecord] = {}
        bodies: list[dict[str, Any]] = []
        for p in batch:
            new.update(p.new)
            self._fold(p.events, new, trusts)
            bodies += [e.to_body() for e in p.events] + p.summaries
        played = [node_id for p in batch for node_id in p.players]
        rounds = [r for p in batch for r in p.rounds]
        # A lone record without an fsync is about a millisecond of CPU: on the event loop that beats
        # the hop to a worker thread and back. Batches, fsyncs and a busy store (a prune holding
        # its lock) go to a thread, so the loop never waits on the disk or the lock.
        if not (len(batch) == 1 and not self._store.fsyncs and
                self._store.commit(bodies, trusts, new_nodes=list(new.values()), players=played, rounds=rounds,
                                   blocking=False)):
            await asyncio.to_thread(self._store.commit, bodies, trusts, new_nodes=list(new.values()), players=played,
                                    rounds=rounds)
        return set(self._apply(new, trusts, played))

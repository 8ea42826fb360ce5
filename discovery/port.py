"""The discovery port the daemons see, and the swarm view behind it (no libp2p here).

``Discovery`` is what a daemon uses: announce its own record (re-signed with a fresh sequence
number on every re-announcement), read the live node and coordinator records, wait for changes.
``StaticDiscovery`` is the network-free implementation (fixed records); ``Libp2pDiscovery`` (module
``libp2p_discovery``) gossips. Round code never sees either: only the composition roots do.

``Gate`` is the stateless check every gossiped message passes before it is accepted or forwarded
(size, signature, expiry, publisher = record key, per-publisher rate); ``View`` keeps the latest
record per key and watches coordinators' ledger heads for equivocation.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from . import records
from .equivocation import Evidence, HeadWatcher
from .records import CoordinatorRecord, NodeRecord, Record, RecordBook, RecordError, Signed

log = logging.getLogger("swarmrank.discovery")

TOPIC_NODES = "/swarmrank/1/nodes"
TOPIC_COORDINATORS = "/swarmrank/1/coordinators"
TOPICS = (TOPIC_NODES, TOPIC_COORDINATORS)

# A record factory: (sequence number, expiry) -> the daemon's current record.
RecordFactory = Callable[[int, float], Record]


class Discovery(Protocol):
    view: "View"
    addrs: list[str]  # this peer's libp2p multiaddrs (empty without libp2p)

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    def announce(self, make: RecordFactory) -> None: ...

    def nodes(self) -> list[NodeRecord]: ...

    def coordinators(self) -> list[CoordinatorRecord]: ...

    async def wait_changed(self, timeout: float) -> bool: ...


@dataclass
class _Bucket:
    tokens: float
    updated: float


@dataclass
class Gate:
    """Per-message checks; ``rate`` records per second per publisher with a ``burst``."""

    rate: float = 2.0
    burst: float = 20.0
    counters: Counter[str] = field(default_factory=Counter)
    _buckets: dict[bytes, _Bucket] = field(default_factory=dict)

    def check(self, topic: str, publisher: bytes, data: bytes, now: float | None = None) -> Signed | None:
        now = time.time() if now is None else now
        bucket = self._buckets.get(publisher)
        if bucket is None:
            if len(self._buckets) > 10_000:  # bounded memory under a churn of identities
                self._buckets.clear()
            bucket = self._buckets[publisher] = _Bucket(self.burst, now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens < 1.0:
            return self._refuse("flooding", f"publisher {publisher.hex()[:16]} exceeds {self.rate}/s")
        bucket.tokens -= 1.0
        try:
            signed = records.decode(data, now)
        except RecordError as exc:
            return self._refuse(exc.reason, str(exc))
        expected = TOPIC_NODES if isinstance(signed.record, NodeRecord) else TOPIC_COORDINATORS
        if topic != expected:
            return self._refuse("wrong_topic", f"{type(signed.record).__name__} on {topic}")
        if records.peer_id_bytes(signed.record.public_key) != publisher:
            return self._refuse("peer_mismatch", "the record's key is not the libp2p peer that published it")
        self.counters["valid"] += 1
        return signed

    def _refuse(self, reason: str, message: str) -> Signed | None:
        self.counters[reason] += 1
        # Flooding is logged once per hundred: the log must not become the flood.
        if reason != "flooding" or self.counters[reason] % 100 == 1:
            log.warning("ignored gossiped record (%s): %s", reason, message)
        return None


@dataclass
class View:
    """What this daemon knows about the swarm; fed verified records on the asyncio thread."""

    nodes: RecordBook = field(default_factory=RecordBook)
    coordinators: RecordBook = field(default_factory=RecordBook)
    heads: HeadWatcher = field(default_factory=HeadWatcher)
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    def ingest(self, signed: Signed, now: float | None = None) -> Evidence | None:
        if isinstance(signed.record, NodeRecord):
            if self.nodes.offer(signed, now):
                self.changed.set()
            return None
        evidence = self.heads.observe(signed)
        if evidence is not None:
            log.error("EQUIVOCATION: %s", evidence.describe())
        if self.coordinators.offer(signed, now):
            self.changed.set()
        return evidence

    def live_nodes(self) -> list[NodeRecord]:
        return [s.record for s in self.nodes.live() if isinstance(s.record, NodeRecord)]

    def live_coordinators(self) -> list[CoordinatorRecord]:
        return [s.record for s in self.coordinators.live() if isinstance(s.record, CoordinatorRecord)]

    async def wait_changed(self, timeout: float) -> bool:
        try:
            await asyncio.wait_for(self.changed.wait(), timeout)
        except TimeoutError:
            return False
        self.changed.clear()
        return True


class SequenceClock:
    """Sequence numbers that grow across restarts: milliseconds since the epoch, strictly increasing."""

    def __init__(self) -> None:
        self._last = 0

    def next(self) -> int:
        self._last = max(self._last + 1, int(time.time() * 1000))
        return self._last


class ViewReader:
    """The read side every ``Discovery`` shares: answers come from its ``View``."""

    view: View

    def nodes(self) -> list[NodeRecord]:
        return self.view.live_nodes()

    def coordinators(self) -> list[CoordinatorRecord]:
        return self.view.live_coordinators()

    async def wait_changed(self, timeout: float) -> bool:
        return await self.view.wait_changed(timeout)


class StaticDiscovery(ViewReader):
    """A fixed set of records (configuration, tests); announcing only adds our own record to the view."""

    def __init__(self, nodes: list[Signed] | None = None, coordinators: list[Signed] | None = None,
                 lifetime: float = 60.0) -> None:
        self.view = View()
        self.addrs: list[str] = []
        self._lifetime = lifetime
        self._clock = SequenceClock()
        for s in [*(nodes or []), *(coordinators or [])]:
            self.view.ingest(s)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    def announce(self, make: RecordFactory) -> None:
        record = make(self._clock.next(), time.time() + self._lifetime)
        self.view.ingest(Signed(record, b""))

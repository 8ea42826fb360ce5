"""``Discovery`` over a private libp2p swarm: GossipSub topics carry signed records."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence

from swarmrank.protos.signing import Identity

from . import records, swarm_key
from .libp2p_host import HostConfig, Libp2pHost
from .port import TOPIC_COORDINATORS, TOPIC_NODES, TOPICS, Gate, RecordFactory, SequenceClock, View, ViewReader
from .records import NodeRecord

log = logging.getLogger("swarmrank.discovery")

# Gossip is lossy and a fresh peer has no mesh yet: announce quickly at first, then steadily.
EARLY_ANNOUNCES = (0.5, 1.5, 4.0)


class Libp2pDiscovery(ViewReader):
    def __init__(
        self,
        identity: Identity,
        key: swarm_key.SwarmKey,
        *,
        listen: str = "/ip4/127.0.0.1/tcp/0",
        bootstrap: Sequence[str] = (),
        announce_interval: float = 10.0,
        lifetime: float = 60.0,
        connect_timeout: float = 5.0,
    ) -> None:
        if lifetime > records.MAX_LIFETIME or lifetime <= announce_interval:
            raise ValueError("record lifetime must exceed the announce interval and stay within "
                             f"{records.MAX_LIFETIME:.0f}s")
        self.identity = identity
        self.view = View()
        self.gate = Gate()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._interval = announce_interval
        self._lifetime = lifetime
        self._clock = SequenceClock()
        self._make: RecordFactory | None = None
        self._announcer: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self.host = Libp2pHost(
            HostConfig(seed=identity.private_seed(), psk=key.key, listen=listen, bootstrap=tuple(bootstrap),
                       topics=TOPICS, connect_timeout=connect_timeout),
            self.gate_check, self._on_message,
        )
        self.addrs: list[str] = []
        self.key_fingerprint = key.fingerprint

    # Runs on the trio thread: stateless, so it needs no lock.
    def gate_check(self, topic: str, publisher: bytes, data: bytes) -> bool:
        return self.gate.check(topic, publisher, data) is not None

    def _on_message(self, topic: str, publisher: bytes, data: bytes) -> Sequence[str]:
        try:
            signed = records.decode(data)
        except records.RecordError:
            return ()
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self.view.ingest, signed)
        if signed.record.public_key == self.identity.public_key:
            return ()
        return signed.record.p2p_addrs

    async def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self.addrs = await asyncio.to_thread(self.host.start)
        log.info("discovery on libp2p: peer %s, swarm key %s, bootstrap %s", self.host.peer_id, self.key_fingerprint,
                 ", ".join(self.host.config.bootstrap) or "none (this peer is a bootstrap)")
        self._announcer = asyncio.create_task(self._announce_loop(), name="discovery-announce")

    async def close(self) -> None:
        if self._announcer is not None:
            self._announcer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._announcer
        await asyncio.to_thread(self.host.stop)

    def announce(self, make: RecordFactory) -> None:
        self._make = make
        self._kick.set()

    async def _announce_loop(self) -> None:
        delays = iter(EARLY_ANNOUNCES)
        while True:
            if self._make is not None:
                await self._announce_once(self._make)
            delay = next(delays, self._interval)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._kick.wait(), delay)
            self._kick.clear()

    async def _announce_once(self, make: RecordFactory) -> None:
        record = make(self._clock.next(), time.time() + self._lifetime)
        raw = records.encode(record, self.identity)
        topic = TOPIC_NODES if isinstance(record, NodeRecord) else TOPIC_COORDINATORS
        try:
            await asyncio.to_thread(self.host.publish, topic, raw)
        except Exception as exc:  # a lost announcement is re-sent next interval
            log.warning("announcing on %s failed: %s", topic, exc)


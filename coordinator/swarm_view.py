"""A coordinator in a private swarm: announce its signed record (with its ledger head) and notice the
nodes the swarm announces. Admission stays the node's signed registration plus calibration: a
discovered node is admitted when it registers (nodes started with --bootstrap do so on their own)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from swarmrank.discovery.port import Discovery, RecordFactory
from swarmrank.discovery.records import CoordinatorRecord, LedgerHead
from swarmrank.protos.signing import Identity

from .registry import Registry
from .store import Store

log = logging.getLogger("swarmrank.coordinator.swarm")


def coordinator_record(identity: Identity, address: str, store: Store, p2p_addrs: Callable[[], list[str]]) -> RecordFactory:
    def make(seq: int, expires: float) -> CoordinatorRecord:
        head_seq, head_hash = store.ledger_head()
        return CoordinatorRecord(identity.public_key, address, LedgerHead(head_seq, head_hash), seq, expires,
                                 tuple(p2p_addrs()[:8]))

    return make


async def watch_nodes(discovery: Discovery, registry: Registry, stop: asyncio.Event) -> None:
    """Log each node the swarm announces that has not registered (yet): an operator's early warning."""
    seen: set[str] = set()
    while not stop.is_set():
        for n in discovery.nodes():
            if n.node_id not in seen:
                seen.add(n.node_id)
                state = "registered" if registry.get(n.node_id) else "not registered yet"
                log.info("swarm announces node %s at %s (%s, %s)", n.node_id, n.grpc_address,
                         ",".join(m.name for m in n.models), state)
        await discovery.wait_changed(5.0)

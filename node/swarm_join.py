"""A node in a private swarm: announce its signed record, and join the coordinators it discovers.

Joining is the ordinary registration (challenge, signed registration, calibration, heartbeats), one
``stay_registered`` task per discovered coordinator; discovery only supplies the addresses.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from swarmrank.discovery.port import Discovery, RecordFactory
from swarmrank.discovery.records import AnnouncedModel, NodeRecord
from swarmrank.protos.signing import Identity

from .registration import REGISTER_TIMEOUT, stay_registered
from .service import Description

log = logging.getLogger("swarmrank.node.swarm")


def node_record(identity: Identity, address: str, description: Description, role: str,
                p2p_addrs: Callable[[], list[str]]) -> RecordFactory:
    models = tuple(AnnouncedModel(m.name, m.family, m.parameters, m.quantization) for m in description.models)

    def make(seq: int, expires: float) -> NodeRecord:
        return NodeRecord(identity.public_key, address, models, role, description.max_concurrency, seq, expires,
                          p2p_addrs=tuple(p2p_addrs()[:8]))

    return make


async def join_discovered(
    discovery: Discovery,
    identity: Identity,
    address: str,
    description: Description,
    in_flight: Callable[[], int],
    stop: asyncio.Event,
    register_timeout: float = REGISTER_TIMEOUT,
) -> None:
    joined: dict[str, asyncio.Task[None]] = {}
    try:
        while not stop.is_set():
            for c in discovery.coordinators():
                if c.grpc_address not in joined:
                    log.info("discovered coordinator %s at %s (ledger entry %d); joining", c.coordinator_id,
                             c.grpc_address, c.head.seq)
                    joined[c.grpc_address] = asyncio.create_task(
                        stay_registered(c.grpc_address, identity, address, description, in_flight, stop,
                                        register_timeout=register_timeout))
            await discovery.wait_changed(5.0)
    finally:
        for task in joined.values():
            task.cancel()
        for task in joined.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task

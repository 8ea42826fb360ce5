"""The coordinator daemon's composition root: settings in, a serving coordinator out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

import numpy as np

from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2, coordinator_pb2_grpc
from swarmrank.rpc.server import start_server

from .calibration import ChallengeBank
from .joining import Gatekeeper
from .node_client import GrpcNodeClient, NodeClient
from .registry import Registry
from .rounds import RoundRunner
from .servicer import CoordinatorServicer
from .settings import CoordinatorSettings
from .store import Store

log = logging.getLogger("swarmrank.coordinator")

SERVICE_NAME = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"].full_name


async def _prune_forever(store: Store, days: float, stop: asyncio.Event) -> None:
    """Retention: prune old round transcripts at start-up and then hourly."""
    while not stop.is_set():
        pruned = await asyncio.to_thread(store.prune_rounds, time.time() - days * 86400)
        if pruned:
            log.info("retention: pruned %d round transcript(s) older than %.1f day(s)", pruned, days)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), 3600)


async def serve(
    settings: CoordinatorSettings,
    *,
    client: NodeClient | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
) -> None:
    identity = Identity.load_or_create(settings.key_path)
    store = Store(settings.db, identity)
    registry = Registry(store, settings.heartbeat_interval)
    bank = ChallengeBank.from_file(settings.calibration_bank) if settings.calibration_bank else ChallengeBank.arithmetic()
    client = client or GrpcNodeClient()
    rng = np.random.default_rng(settings.seed)
    runner = RoundRunner(registry, store, client, settings, rng, bank)
    gatekeeper = Gatekeeper(registry, client, bank, settings, rng)
    stop = stop or asyncio.Event()  # signal handlers first: SIGTERM right after start-up is graceful
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    servicer = CoordinatorServicer(runner, registry, gatekeeper)
    running = await start_server(
        settings.listen, lambda server: coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server),
        [SERVICE_NAME],
    )
    address = running.address
    log.info("coordinator %s serving on %s (db %s, %d known node(s))", identity.public_key.hex()[:16], address, store.path,
             len(registry.all()))
    if on_ready:
        on_ready(address)
    retention = asyncio.create_task(_prune_forever(store, settings.round_retention_days, stop)) \
        if settings.round_retention_days > 0 else None
    try:
        await stop.wait()
    finally:
        if retention is not None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
        log.info("coordinator shutting down; counters: %s", dict(runner.counters))
        await running.stop(5.0)
        await runner.close()
        await client.close()
        registry.flush_heartbeats()
        store.close()

"""The coordinator daemon's composition root: settings in, a serving coordinator out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import numpy as np

from swarmrank.discovery.config import open_discovery
from swarmrank.discovery.port import Discovery
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
from .swarm_view import coordinator_record, watch_nodes

log = logging.getLogger("swarmrank.coordinator")

SERVICE_NAME = coordinator_pb2.DESCRIPTOR.services_by_name["Coordinator"].full_name


async def serve(
    settings: CoordinatorSettings,
    *,
    client: NodeClient | None = None,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    discovery: Discovery | None = None,
) -> None:
    identity = Identity.load_or_create(settings.key_path)
    if discovery is None:  # none given (tests and benchmarks inject one): from the settings, if any
        discovery = open_discovery(identity, bootstrap=settings.bootstrap, key_path=settings.swarm_key,
                                   listen=settings.p2p_listen, announce_interval=settings.announce_interval)
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
    watcher = None
    if discovery is not None:
        try:
            await discovery.start()
        except BaseException:
            await running.stop(0)
            store.close()
            raise
        found = discovery
        discovery.announce(coordinator_record(identity, settings.advertise or address, store, lambda: found.addrs))
        watcher = asyncio.create_task(watch_nodes(discovery, registry, stop))
    if on_ready:
        on_ready(address)
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if discovery is not None:
            await discovery.close()
        log.info("coordinator shutting down; counters: %s", dict(runner.counters))
        await running.stop(5.0)
        await runner.close()
        await client.close()
        store.close()

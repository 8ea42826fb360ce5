"""The coordinator daemon's composition root: settings in, a serving coordinator out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import grpc
import numpy as np
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from swarmrank.protos import limits
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2, coordinator_pb2_grpc

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
    server = grpc.aio.server(options=limits.GRPC_OPTIONS)
    coordinator_pb2_grpc.add_CoordinatorServicer_to_server(CoordinatorServicer(runner, registry, gatekeeper), server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_insecure_port(settings.listen)
    if port == 0:
        raise OSError(f"cannot listen on {settings.listen}")
    address = f"{settings.listen.rsplit(':', 1)[0]}:{port}"
    await server.start()
    for name in ("", SERVICE_NAME):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    log.info("coordinator %s serving on %s (db %s, %d known node(s))", identity.public_key.hex()[:16], address, store.path,
             len(registry.all()))
    if on_ready:
        on_ready(address)
    try:
        await stop.wait()
    finally:
        log.info("coordinator shutting down; counters: %s", dict(runner.counters))
        await health_servicer.enter_graceful_shutdown()
        await server.stop(5.0)
        await runner.close()
        await client.close()
        store.close()

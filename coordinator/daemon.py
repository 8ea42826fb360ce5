"""The coordinator daemon's composition root: settings in, a serving coordinator out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import Callable

import grpc
import numpy as np

from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import access_pb2, access_pb2_grpc, coordinator_pb2, coordinator_pb2_grpc
from swarmrank.rpc import swarm_dir, tls
from swarmrank.rpc.guard import Guard
from swarmrank.rpc.server import start_server

from .access import AccessControl
from .access_servicer import AccessServicer

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
ACCESS_SERVICE_NAME = access_pb2.DESCRIPTOR.services_by_name["Access"].full_name


def default_node_listen(listen: str) -> str:
    host, _, port = listen.rpartition(":")
    return f"{host}:{int(port) + 1 if int(port) else 0}"


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
    creds = swarm_dir.load_coordinator(settings.swarm) if settings.swarm else None
    if creds is None:
        tls.check_plaintext(settings.listen, settings.insecure, "coordinator")
    store = Store(settings.db, identity)
    registry = Registry(store, settings.heartbeat_interval)
    bank = ChallengeBank.from_file(settings.calibration_bank) if settings.calibration_bank else ChallengeBank.arithmetic()
    access = AccessControl(store.path, creds, node_cert_lifetime=settings.node_cert_hours * 3600) if creds else None
    if creds is not None:
        client = client or GrpcNodeClient(tls.channel_credentials(creds.ca_pem, creds.key_pem, creds.chain_pem))
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
    guard = Guard(access) if access else None
    access_servicer = AccessServicer(access, registry, 0) if access else None

    def add_services(server: grpc.aio.Server) -> None:
        coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server)
        if access_servicer is not None:
            access_pb2_grpc.add_AccessServicer_to_server(access_servicer, server)

    if creds is not None:
        # Clients (API keys) and joining nodes (tokens) on ``listen`` with server-side TLS; nodes with
        # their certificates on the mTLS port (gRPC Python cannot ask for an optional client certificate).
        running = await start_server(
            settings.listen, add_services, [SERVICE_NAME, ACCESS_SERVICE_NAME], interceptors=[guard] if guard else [],
            credentials=tls.server_credentials(creds.key_pem, creds.chain_pem, creds.ca_pem, require_client_cert=False),
            extra_ports=[(settings.node_listen or default_node_listen(settings.listen),
                          tls.server_credentials(creds.key_pem, creds.chain_pem, creds.ca_pem, require_client_cert=True))],
        )
        assert access_servicer is not None
        access_servicer.node_port = int(running.extra_addresses[0].rsplit(":", 1)[1])
    else:
        running = await start_server(settings.listen, add_services, [SERVICE_NAME])
    address = running.address
    log.info("coordinator %s serving on %s%s (db %s, %d known node(s))", identity.public_key.hex()[:16], address,
             f" with TLS, swarm {creds.info.swarm_id}, nodes on {running.extra_addresses[0]} (mTLS)" if creds else " (plaintext)",
             store.path, len(registry.all()))
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
        log.info("coordinator shutting down; counters: %s%s", dict(runner.counters),
                 f"; refusals: {dict(guard.refusals)}" if guard else "")
        await running.stop(5.0)
        await runner.close()
        await client.close()
        if access is not None:
            access.close()
        registry.flush_heartbeats()
        store.close()

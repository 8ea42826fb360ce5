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

from swarmrank.discovery.config import open_discovery
from swarmrank.discovery.port import Discovery
from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import access_pb2, access_pb2_grpc, coordinator_pb2, coordinator_pb2_grpc
from swarmrank.rpc import swarm_dir, tls
from swarmrank.rpc.guard import Guard
from swarmrank.rpc.server import start_server

from swarmrank.rpc.metrics_server import MetricsServer, start_metrics_server

from .access import AccessControl
from .access_servicer import AccessServicer

from .calibration import ChallengeBank
from .joining import Gatekeeper
from .metered_client import MeteredNodeClient
from .metrics import CoordinatorMetrics
from .node_client import GrpcNodeClient, NodeClient
from .observed import ObservedRoundRunner
from .dashboard import Dashboard
from .http_api import RunningHttp, build_app, start_http
from .http_auth import ApiKeyAuthenticator, OpenAccess
from .registry import Registry
from .servicer import CoordinatorServicer
from .settings import CoordinatorSettings
from .store import Store
from .swarm_view import coordinator_record, watch_nodes

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
    discovery: Discovery | None = None,
    on_http_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT or ``stop``. ``on_ready`` gets the gRPC address; ``on_http_ready``
    the HTTP API's (when ``http_listen`` is set)."""
    identity = Identity.load_or_create(settings.key_path)
    creds = swarm_dir.load_coordinator(settings.swarm) if settings.swarm else None
    if creds is None:
        tls.check_plaintext(settings.listen, settings.insecure, "coordinator")
    if discovery is None:  # none given (tests and benchmarks inject one): from the settings, if any
        # The swarm directory's swarm.key serves when a bootstrap peer is given without --swarm-key.
        discovery = open_discovery(identity, bootstrap=settings.bootstrap,
                                   key_path=settings.swarm_key or (settings.swarm if settings.bootstrap else None),
                                   listen=settings.p2p_listen, announce_interval=settings.announce_interval)
    store = Store(settings.db, identity, settings.durability)
    registry = Registry(store, settings.heartbeat_interval)
    bank = ChallengeBank.from_file(settings.calibration_bank) if settings.calibration_bank else ChallengeBank.arithmetic()
    access = AccessControl(store.path, creds, node_cert_lifetime=settings.node_cert_hours * 3600) if creds else None
    if creds is not None:
        client = client or GrpcNodeClient(tls.channel_credentials(creds.ca_pem, creds.key_pem, creds.chain_pem))
    metrics = CoordinatorMetrics()  # this daemon's own registry: several coordinators may share a process
    metered = MeteredNodeClient(client or GrpcNodeClient(), metrics)
    client = metered
    rng = np.random.default_rng(settings.seed)
    runner = ObservedRoundRunner(registry, store, client, settings, rng, bank, metrics=metrics, metered=metered)
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
    http, dashboard, metrics_server = None, None, None
    try:
        if settings.metrics_listen:
            metrics_server = start_metrics_server(settings.metrics_listen, metrics.registry)
            log.info("Prometheus metrics on http://%s/metrics", metrics_server.address)
        if settings.http_listen:
            http, dashboard = await _start_http(settings, runner, registry, store, metrics, access)
    except BaseException:
        await _stop_side_servers(http, dashboard, metrics_server)
        await running.stop(0)
        await client.close()
        if access is not None:
            access.close()
        store.close()
        raise
    log.info("coordinator %s serving on %s%s (db %s, %d known node(s))", identity.public_key.hex()[:16], address,
             f" with TLS, swarm {creds.info.swarm_id}, nodes on {running.extra_addresses[0]} (mTLS)" if creds else " (plaintext)",
             store.path, len(registry.all()))
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
    if http is not None and on_http_ready:
        on_http_ready(http.address)
    if on_ready:  # last: callers take it as "everything is up"
        on_ready(address)
    retention = asyncio.create_task(_prune_forever(store, settings.round_retention_days, stop)) \
        if settings.round_retention_days > 0 else None
    try:
        await stop.wait()
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if discovery is not None:
            await discovery.close()
        if retention is not None:
            retention.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await retention
        log.info("coordinator shutting down; counters: %s%s", dict(runner.counters),
                 f"; refusals: {dict(guard.refusals)}" if guard else "")
        await _stop_side_servers(http, dashboard, metrics_server)
        await running.stop(5.0)
        await runner.close()
        await client.close()
        if access is not None:
            access.close()
        registry.flush_heartbeats()
        store.close()


async def _start_http(settings: CoordinatorSettings, runner: ObservedRoundRunner, registry: Registry, store: Store,
                      metrics: CoordinatorMetrics, access: AccessControl | None) -> tuple[RunningHttp, Dashboard]:
    """The OpenAI-compatible API, /metrics and the dashboard, in this event loop. In a swarm (--swarm)
    it serves HTTPS with the coordinator's certificate and asks for API keys; without one, plaintext
    and no keys, on loopback only unless --insecure (as for gRPC)."""
    if access is None:
        tls.check_plaintext(settings.http_listen, settings.insecure, "HTTP API")
    authenticator = ApiKeyAuthenticator(access) if access is not None else OpenAccess()
    tls_files = (settings.swarm / "coordinator.crt", settings.swarm / "coordinator.key") if settings.swarm else None
    dashboard = Dashboard(registry, store)
    runner.subscribe(dashboard.on_round)
    app = build_app(runner, registry, metrics, authenticator, max_body_bytes=settings.http_max_body_bytes,
                    max_k=settings.max_k, extra_routes=dashboard.routes)
    http = await start_http(app, settings.http_listen, tls_files=tls_files)
    log.info("HTTP API (OpenAI-compatible), /metrics and dashboard on %s://%s", "https" if tls_files else "http", http.address)
    return http, dashboard


async def _stop_side_servers(http: RunningHttp | None, dashboard: Dashboard | None,
                             metrics_server: MetricsServer | None) -> None:
    if dashboard is not None:
        dashboard.close()  # ends open event streams, so the HTTP server can stop at once
    if http is not None:
        await http.stop()
    if metrics_server is not None:
        await asyncio.to_thread(metrics_server.stop)

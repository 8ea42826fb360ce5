"""The coordinator daemon's composition root: settings in, a serving coordinator out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable

import numpy as np

from swarmrank.protos.signing import Identity
from swarmrank.protos.v1 import coordinator_pb2, coordinator_pb2_grpc
from swarmrank.rpc.server import start_server

from swarmrank.rpc.metrics_server import MetricsServer, start_metrics_server

from .calibration import ChallengeBank
from .joining import Gatekeeper
from .metered_client import MeteredNodeClient
from .metrics import CoordinatorMetrics
from .node_client import GrpcNodeClient, NodeClient
from .observed import ObservedRoundRunner
from .dashboard import Dashboard
from .http_api import RunningHttp, build_app, start_http
from .http_auth import authenticator_for, is_loopback
from .registry import Registry
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
    on_http_ready: Callable[[str], None] | None = None,
) -> None:
    """Serve until SIGTERM/SIGINT or ``stop``. ``on_ready`` gets the gRPC address; ``on_http_ready``
    the HTTP API's (when ``http_listen`` is set)."""
    identity = Identity.load_or_create(settings.key_path)
    store = Store(settings.db, identity)
    registry = Registry(store, settings.heartbeat_interval)
    bank = ChallengeBank.from_file(settings.calibration_bank) if settings.calibration_bank else ChallengeBank.arithmetic()
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
    running = await start_server(
        settings.listen, lambda server: coordinator_pb2_grpc.add_CoordinatorServicer_to_server(servicer, server),
        [SERVICE_NAME],
    )
    address = running.address
    http, dashboard, metrics_server = None, None, None
    try:
        if settings.metrics_listen:
            metrics_server = start_metrics_server(settings.metrics_listen, metrics.registry)
            log.info("Prometheus metrics on http://%s/metrics", metrics_server.address)
        if settings.http_listen:
            http, dashboard = await _start_http(settings, runner, registry, store, metrics)
    except BaseException:
        await _stop_side_servers(http, dashboard, metrics_server)
        await running.stop(0)
        await client.close()
        store.close()
        raise
    log.info("coordinator %s serving on %s (db %s, %d known node(s))", identity.public_key.hex()[:16], address, store.path,
             len(registry.all()))
    if http is not None and on_http_ready:
        on_http_ready(http.address)
    if on_ready:  # last: callers take it as "everything is up"
        on_ready(address)
    try:
        await stop.wait()
    finally:
        log.info("coordinator shutting down; counters: %s", dict(runner.counters))
        await _stop_side_servers(http, dashboard, metrics_server)
        await running.stop(5.0)
        await runner.close()
        await client.close()
        store.close()


async def _start_http(settings: CoordinatorSettings, runner: ObservedRoundRunner, registry: Registry, store: Store,
                      metrics: CoordinatorMetrics) -> tuple[RunningHttp, Dashboard]:
    """The OpenAI-compatible API, /metrics and the dashboard, in this event loop."""
    authenticator = authenticator_for(settings.http_listen, settings.http_allow_anonymous)
    if settings.http_allow_anonymous and not is_loopback(settings.http_listen):
        log.warning("HTTP API on %s without API keys (--http-allow-anonymous): put it behind your own auth",
                    settings.http_listen)
    dashboard = Dashboard(registry, store)
    runner.subscribe(dashboard.on_round)
    app = build_app(runner, registry, metrics, authenticator, max_body_bytes=settings.http_max_body_bytes,
                    max_k=settings.max_k, extra_routes=dashboard.routes)
    http = await start_http(app, settings.http_listen)
    log.info("HTTP API (OpenAI-compatible), /metrics and dashboard on http://%s", http.address)
    return http, dashboard


async def _stop_side_servers(http: RunningHttp | None, dashboard: Dashboard | None,
                             metrics_server: MetricsServer | None) -> None:
    if dashboard is not None:
        dashboard.close()  # ends open event streams, so the HTTP server can stop at once
    if http is not None:
        await http.stop()
    if metrics_server is not None:
        await asyncio.to_thread(metrics_server.stop)

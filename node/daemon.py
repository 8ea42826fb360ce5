"""The node daemon's composition root: settings in, a serving gRPC node out."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from collections.abc import Callable

from swarmrank.discovery.config import open_discovery
from swarmrank.discovery.port import Discovery
from swarmrank.protos.signing import Identity
from swarmrank.protos.types import ROLE_NAMES
from swarmrank.protos.v1 import node_pb2, node_pb2_grpc
from swarmrank.rpc import tls
from swarmrank.rpc.guard import Guard
from swarmrank.rpc.metrics_server import start_metrics_server
from swarmrank.rpc.server import start_server

from . import catalogue
from . import membership as swarm_membership
from .access import NodePolicy
from .backends.base import Backend
from .metrics import MeteredNodeService, NodeMetrics
from .registration import stay_registered
from .servicer import NodeServicer
from .settings import NodeSettings
from .swarm_join import join_discovered, node_record

log = logging.getLogger("swarmrank.node")

NODE_SERVICE_NAME = node_pb2.DESCRIPTOR.services_by_name["Node"].full_name
MODEL_CALL_MIN_WAIT = 1.0  # seconds a running model call gets at shutdown when the grace period is used up
SHUTDOWN_MARGIN = 15.0  # seconds after the grace period before the watchdog ends a hung shutdown


def build_backend(settings: NodeSettings, progress: catalogue.Progress | None = None) -> Backend:
    if settings.backend == "llama":
        from .backends.llama import LlamaCppBackend

        entry = None if settings.model_path else catalogue.lookup(settings.model)
        path = settings.model_path or catalogue.prepare(settings.model, settings.cache_dir, progress=progress)
        return LlamaCppBackend(
            path, entry, n_ctx=settings.n_ctx, n_threads=settings.n_threads or None, n_gpu_layers=settings.n_gpu_layers,
            judge_mode=settings.judge_mode,
        )
    if settings.backend == "instant":
        from .backends.instant import InstantBackend

        return InstantBackend(name=settings.model, seed=settings.seed, max_concurrency=settings.max_concurrency)
    if settings.backend == "onnx":
        from .backends.onnx import OnnxBackend

        if settings.model_path is None:
            raise ValueError("backend=onnx needs --model-path to an ONNX file")
        return OnnxBackend(settings.model_path, name=settings.model, device=settings.device, context_length=settings.n_ctx)
    from .backends.openai_http import OpenAIHTTPBackend

    return OpenAIHTTPBackend(
        settings.upstream_url,
        settings.upstream_model or settings.model,
        api_key=settings.upstream_api_key.get_secret_value(),
        name=settings.model,
        max_concurrency=settings.max_concurrency,
    )


async def serve(
    settings: NodeSettings,
    *,
    backend: Backend | None = None,
    on_ready: Callable[[str, str], None] | None = None,
    stop: asyncio.Event | None = None,
    discovery: Discovery | None = None,
) -> bool:
    """Run a node until SIGTERM/SIGINT (or ``stop`` is set); in-flight work gets ``grace_seconds``.
    Returns False when a model call outlived the grace period and was abandoned (see ``run``)."""
    identity = Identity.load_or_create(settings.key_path)
    # Join (or reuse the stored certificate) before loading a model: a bad token fails in seconds.
    tls_dir = settings.tls_dir or settings.key_path.expanduser().with_name(settings.key_path.name + ".tls")
    membership = await swarm_membership.obtain(tls_dir, settings.coordinator, settings.join.get_secret_value(), identity)
    if membership is None:
        tls.check_plaintext(settings.listen, settings.insecure, "node")
    if discovery is None:  # none given (tests and benchmarks inject one): from the settings, if any
        discovery = open_discovery(identity, bootstrap=settings.bootstrap, key_path=settings.swarm_key,
                                   listen=settings.p2p_listen, announce_interval=settings.announce_interval)
    # Load the model before any gRPC object exists, on this thread: llama.cpp's quiet loading dup2()s
    # stdout/stderr, which must not race with gRPC's poller creating and closing descriptors (seen
    # once as an epoll EBADF abort). Nothing is being served yet, so blocking the loop costs nothing.
    backend = backend or build_backend(settings)
    metrics = NodeMetrics()  # this daemon's own registry: tests run several nodes in one process
    service = MeteredNodeService(
        identity,
        backend,
        max_queue=settings.max_queue,
        default_max_tokens=settings.default_max_tokens,
        max_tokens_limit=settings.max_tokens_limit,
        role=ROLE_NAMES[settings.role] if settings.role else None,
        metrics=metrics,
    )
    stop = stop or asyncio.Event()  # signal handlers first: SIGTERM right after start-up is graceful
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):  # not the main thread
            loop.add_signal_handler(sig, stop.set)
    guard = Guard(NodePolicy(membership.swarm_id)) if membership else None
    running = await start_server(
        settings.listen, lambda server: node_pb2_grpc.add_NodeServicer_to_server(NodeServicer(service), server),
        [NODE_SERVICE_NAME], interceptors=[guard] if guard else [],
        credentials=membership.server_credentials() if membership else None,
    )
    address = running.address
    metrics_server = None
    if settings.metrics_listen:
        try:
            metrics_server = start_metrics_server(settings.metrics_listen, metrics.registry)
        except BaseException:
            await running.stop(0)
            await asyncio.to_thread(service.close, MODEL_CALL_MIN_WAIT)
            raise
        log.info("Prometheus metrics on http://%s/metrics", metrics_server.address)
    log.info("node %s serving %s (%s, role %s) on %s%s", identity.node_id, backend.info.name, backend.info.runtime,
             service.info.role.name.lower(), address, f" (mTLS, swarm {membership.swarm_id})" if membership else " (plaintext)")
    if on_ready:
        on_ready(identity.node_id, address)

    registration = None
    if discovery is not None:
        try:
            await discovery.start()
        except BaseException:
            await running.stop(0)
            raise
        found = discovery
        discovery.announce(node_record(identity, settings.advertise or address, service.describe(),
                                       service.info.role.name.lower(), lambda: found.addrs))
    if settings.coordinator:
        registration = asyncio.create_task(
            stay_registered(
                settings.coordinator, identity, settings.advertise or address, service.describe(),
                lambda: service.admission.in_flight, stop, membership, settings.register_timeout,
            )
        )
    elif discovery is not None:  # no coordinator given: join the ones the swarm announces
        registration = asyncio.create_task(
            join_discovered(discovery, identity, settings.advertise or address, service.describe(),
                            lambda: service.admission.in_flight, stop, settings.register_timeout)
        )
    try:
        await stop.wait()
    finally:
        log.info("shutting down: %d request(s) in flight, grace %.0fs%s", service.admission.in_flight, settings.grace_seconds,
                 f"; refusals: {dict(guard.refusals)}" if guard else "")
        deadline = loop.time() + settings.grace_seconds
        await running.stop(settings.grace_seconds)
        if metrics_server is not None:
            await asyncio.to_thread(metrics_server.stop)
        if registration:
            registration.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await registration
        if discovery is not None:
            await discovery.close()
        # A model call cancelled with its RPC may still be inside llama.cpp: it gets what is left of
        # the grace period (a moment at least), then is abandoned.
        freed = await asyncio.to_thread(service.close, max(MODEL_CALL_MIN_WAIT, deadline - loop.time()))
        log.info("node %s stopped", identity.node_id)
    return freed


def run(settings: NodeSettings, on_ready: Callable[[str, str], None] | None = None) -> None:
    """The node as a process (``swarmrank node start``): ``serve`` until SIGTERM/SIGINT, then exit
    within the grace period even while a model call runs on. The interpreter would wait for that
    thread at exit, so the process then ends with ``os._exit`` once everything else has shut down;
    and if shutting down itself hangs, a watchdog ends the process ``SHUTDOWN_MARGIN`` seconds after
    the grace period."""

    async def main() -> bool:
        stop = asyncio.Event()

        async def arm_watchdog() -> None:
            await stop.wait()
            timer = threading.Timer(settings.grace_seconds + SHUTDOWN_MARGIN, _hard_exit, (1, "shutdown did not finish in time"))
            timer.daemon = True
            timer.start()

        watchdog = asyncio.create_task(arm_watchdog())
        try:
            return await serve(settings, on_ready=on_ready, stop=stop)
        finally:
            watchdog.cancel()

    if not asyncio.run(main()):
        _hard_exit(0, "exiting without waiting for the abandoned model call")


def _hard_exit(code: int, why: str) -> None:
    log.warning("%s", why)
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)

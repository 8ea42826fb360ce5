"""Start a gRPC aio server the way both daemons need it: message limits, health, reflection, a
bound port, and a graceful stop."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from swarmrank.protos import limits

from .decoding import RefuseUndecodable


# gRPC cancels a call that waits longer than 30 s (its default) for the application to pick it up.
# Under a burst (1,000 asks at once) the event loop picks calls up more slowly than they arrive, and
# every ask still queued after 30 s was CANCELLED: let them wait as long as a client's deadline can.
SERVER_OPTIONS = [("grpc.server_max_unrequested_time_in_server", 3600)]


@dataclass
class RunningServer:
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    address: str  # host:port actually bound (port 0 resolved)
    extra_addresses: tuple[str, ...] = ()  # the ``extra_ports``, bound, in order

    async def stop(self, grace: float) -> None:
        await self.health.enter_graceful_shutdown()
        await self.server.stop(grace)


async def start_server(
    listen: str,
    add_services: Callable[[grpc.aio.Server], None],
    service_names: Sequence[str],
    *,
    interceptors: Sequence[grpc.aio.ServerInterceptor] = (),
    credentials: grpc.ServerCredentials | None = None,
    extra_ports: Sequence[tuple[str, grpc.ServerCredentials]] = (),
) -> RunningServer:
    """Serve on ``listen`` (``host:0`` picks a free port) with the services ``add_services`` adds,
    plus health (reporting SERVING for "" and each of ``service_names``) and reflection. TLS when
    ``credentials`` are given (plaintext otherwise); ``extra_ports`` serve the same services with
    other credentials (the coordinator's mTLS port for nodes)."""
    server = grpc.aio.server(options=[*limits.GRPC_OPTIONS, *SERVER_OPTIONS], interceptors=[RefuseUndecodable(), *interceptors])
    add_services(server)
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection((*service_names, health.SERVICE_NAME, reflection.SERVICE_NAME), server)
    port = server.add_secure_port(listen, credentials) if credentials else server.add_insecure_port(listen)
    if port == 0:
        raise OSError(f"cannot listen on {listen}")
    extra = []
    for address, extra_credentials in extra_ports:
        bound = server.add_secure_port(address, extra_credentials)
        if bound == 0:
            raise OSError(f"cannot listen on {address}")
        extra.append(f"{address.rsplit(':', 1)[0]}:{bound}")
    await server.start()
    for name in ("", *service_names):
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return RunningServer(server, health_servicer, f"{listen.rsplit(':', 1)[0]}:{port}", tuple(extra))

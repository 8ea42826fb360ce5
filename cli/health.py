"""``swarmrank health [ADDRESS]``: the gRPC health check of a coordinator or node, for container
health checks (exit 0 when SERVING, 1 otherwise)."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

DEFAULT = "127.0.0.1:50051"


def cmd_health(args: argparse.Namespace) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    address = args.address or os.environ.get("SWARMRANK_HEALTH_ADDRESS", DEFAULT)
    try:
        with grpc.insecure_channel(address) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(  # type: ignore[attr-defined]
                health_pb2.HealthCheckRequest(service=args.service), timeout=args.timeout)
    except grpc.RpcError as exc:
        print(f"{address}: {exc.code().name} {exc.details() or ''}".rstrip(), file=sys.stderr)
        return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{address}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def add_parser(sub: Any) -> None:
    p = sub.add_parser("health", help="gRPC health check of a coordinator or node (exit 0 when serving)")
    p.add_argument("address", nargs="?", default="", help=f"host:port (default $SWARMRANK_HEALTH_ADDRESS or {DEFAULT})")
    p.add_argument("--service", default="", help="a service name (default: the whole server)")
    p.add_argument("--timeout", type=float, default=5.0)
    p.set_defaults(func=cmd_health)

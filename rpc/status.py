"""One place that turns a domain exception into a gRPC status and a log line."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, TypeVar

import grpc

log = logging.getLogger("swarmrank.rpc")

E = TypeVar("E", bound=Exception)


async def abort_with(
    context: grpc.aio.ServicerContext[Any, Any], exc: E, status_for: Mapping[type[E], grpc.StatusCode]
) -> None:
    """Abort the call with the status mapped for ``exc``'s type (INTERNAL when unmapped); always raises."""
    code = next((status for kind, status in status_for.items() if isinstance(exc, kind)), grpc.StatusCode.INTERNAL)
    log.warning("refused %s: %s", code.name, exc)
    await context.abort(code, str(exc))

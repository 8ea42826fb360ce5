"""A daemon's own Prometheus endpoint (``--metrics-listen``): prometheus-client's exposition server
for one ``CollectorRegistry``, in a thread so a busy event loop never delays a scrape."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, start_http_server


@dataclass
class MetricsServer:
    server: WSGIServer
    thread: threading.Thread
    address: str

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def start_metrics_server(listen: str, registry: CollectorRegistry) -> MetricsServer:
    """Serve ``registry`` at ``http://listen/metrics`` (port 0: a free one)."""
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    try:
        server, thread = start_http_server(int(port), addr=host, registry=registry)
    except OSError as exc:
        raise OSError(f"cannot serve metrics on {listen}: {exc}") from None
    bound = server.server_address[1]
    return MetricsServer(server, thread, f"[{host}]:{bound}" if ":" in host else f"{host}:{bound}")

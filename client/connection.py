"""How the SDK reaches a coordinator: plaintext on loopback, TLS with a CA file (a private swarm's
``ca.crt``) or the system store, and the API key as ``authorization: Bearer`` metadata."""

from __future__ import annotations

import os
from pathlib import Path

import grpc

from swarmrank.protos import limits

API_KEY_ENV = "SWARMRANK_API_KEY"


def api_key_or_env(api_key: str | None) -> str | None:
    """An explicit key wins; otherwise SWARMRANK_API_KEY (read when a client is made, not at import)."""
    return api_key if api_key is not None else (os.environ.get(API_KEY_ENV) or None)


def credentials(ca: str | Path | bytes | None, tls: bool | None) -> grpc.ChannelCredentials | None:
    """TLS credentials, or None for plaintext. ``ca`` (a PEM file or its bytes) implies TLS; ``tls=True``
    without a CA trusts the system store."""
    if ca is None and not tls:
        return None
    if tls is False:
        raise ValueError("a CA certificate was given but tls=False")
    root = ca if isinstance(ca, bytes) else Path(ca).expanduser().read_bytes() if ca is not None else None
    return grpc.ssl_channel_credentials(root)


def metadata(api_key: str | None) -> tuple[tuple[str, str], ...]:
    return (("authorization", f"Bearer {api_key}"),) if api_key else ()


def sync_channel(address: str, creds: grpc.ChannelCredentials | None) -> grpc.Channel:
    if creds is None:
        return grpc.insecure_channel(address, options=limits.GRPC_OPTIONS)
    return grpc.secure_channel(address, creds, options=limits.GRPC_OPTIONS)


def async_channel(address: str, creds: grpc.ChannelCredentials | None) -> grpc.aio.Channel:
    if creds is None:
        return grpc.aio.insecure_channel(address, options=limits.GRPC_OPTIONS)
    return grpc.aio.secure_channel(address, creds, options=limits.GRPC_OPTIONS)

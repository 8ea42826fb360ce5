"""Turning daemon settings into a discovery: libp2p only when a swarm key or bootstrap is given."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from swarmrank.protos.signing import Identity

from . import swarm_key

if TYPE_CHECKING:
    from .libp2p_discovery import Libp2pDiscovery


def open_discovery(identity: Identity, *, bootstrap: Sequence[str], key_path: Path | None, listen: str,
                   announce_interval: float = 10.0) -> Libp2pDiscovery | None:
    """None without bootstrap and swarm key (no libp2p at all); a clear error for half a configuration."""
    if not bootstrap and key_path is None:
        return None
    if key_path is None:
        raise ValueError("--bootstrap needs --swarm-key (the private swarm's key): swarmrank never joins an open swarm")
    key = swarm_key.load(key_path)
    try:
        from .libp2p_discovery import Libp2pDiscovery
    except ImportError as exc:
        raise ValueError(f"libp2p discovery needs the p2p extra (pip install 'swarmrank[p2p]'): {exc}") from exc
    return Libp2pDiscovery(identity, key, listen=listen, bootstrap=bootstrap, announce_interval=announce_interval,
                           lifetime=min(600.0, max(120.0, 6 * announce_interval)))

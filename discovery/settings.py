"""The discovery flags both daemons take (a settings mixin): libp2p starts only when one is given."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings


class DiscoverySettings(BaseSettings):
    bootstrap: list[str] = Field(default_factory=list, description="libp2p multiaddr (/ip4/../tcp/../p2p/PEER) of a swarm "
                                 "peer to join through; repeatable")
    swarm_key: Path | None = Field(None, description="the private swarm's key file (or its swarm directory); turns on "
                                   "libp2p discovery")
    p2p_listen: str = Field("/ip4/127.0.0.1/tcp/0", description="libp2p listen multiaddr (with discovery on)")
    announce_interval: float = Field(10.0, gt=0, le=100, description="seconds between re-announcements of this daemon's record")

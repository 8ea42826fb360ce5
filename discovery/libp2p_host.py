"""A py-libp2p host on its own trio thread, with a small thread-safe bridge for asyncio callers.

py-libp2p is trio-based; the daemons are asyncio. The host runs ``trio.run`` in a daemon thread;
asyncio code calls ``publish``/``connect`` through ``asyncio.to_thread`` (they block on
``trio.from_thread.run``), and the trio side hands received messages back through a plain callback
that the caller makes thread-safe (``loop.call_soon_threadsafe``).

Hardening, because py-libp2p's defaults are permissive: Noise is the only security transport
(plaintext, secio and TLS are not offered), the swarm key (PSK) wraps every raw connection, every
connect has a deadline (a peer with another swarm key makes the handshake hang, not fail), and
GossipSub's degree, rate limits and inbound frame size are set explicitly.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import multiaddr
import trio
from libp2p import new_host
from libp2p.crypto.ed25519 import create_new_key_pair
from libp2p.crypto.x25519 import create_new_key_pair as create_x25519_key_pair
from libp2p.custom_types import TProtocol
from libp2p.peer.id import ID
from libp2p.peer.peerinfo import info_from_p2p_addr
from libp2p.pubsub.gossipsub import PROTOCOL_ID, PROTOCOL_ID_V11, GossipSub
from libp2p.pubsub.pb import rpc_pb2
from libp2p.pubsub.pubsub import Pubsub
from libp2p.security.noise.transport import PROTOCOL_ID as NOISE_PROTOCOL_ID
from libp2p.security.noise.transport import Transport as NoiseTransport
from libp2p.tools.anyio_service import background_trio_service

log = logging.getLogger("swarmrank.discovery.libp2p")

MAX_RPC_BYTES = 64 * 1024
MAX_PEERS = 64


@dataclass(frozen=True)
class HostConfig:
    seed: bytes  # the Ed25519 private key seed: peer id and node id come from one key
    psk: bytes | None
    listen: str  # multiaddr, e.g. /ip4/127.0.0.1/tcp/0
    bootstrap: Sequence[str] = ()
    topics: Sequence[str] = ()
    connect_timeout: float = 5.0
    bootstrap_retry: float = 5.0
    start_timeout: float = 30.0
    heartbeat_interval: int = 1
    max_messages_per_topic_per_second: float = 50.0


Validator = Callable[[str, bytes, bytes], bool]  # (topic, publisher peer id bytes, data) -> accept
Receiver = Callable[[str, bytes, bytes], Sequence[str]]  # returns /p2p/ addrs worth dialling


@dataclass
class HostStats:
    connect_failures: int = 0
    connect_timeouts: int = 0
    published: int = 0
    received: int = 0
    connected_bootstrap: set[str] = field(default_factory=set)


class Libp2pHost:
    def __init__(self, config: HostConfig, validate: Validator, receive: Receiver) -> None:
        self.config = config
        self._validate = validate
        self._receive = receive
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._thread: threading.Thread | None = None
        self._pubsub: Pubsub | None = None
        self._host: Any = None
        self._dialing: set[ID] = set()
        self._nursery: trio.Nursery | None = None
        self.stats = HostStats()
        self.peer_id = ""
        self.addrs: list[str] = []

    # -- asyncio/any-thread side -------------------------------------------------------------

    def start(self) -> list[str]:
        """Start the trio thread; block until listening (or raise). Returns the full multiaddrs."""
        if logging.getLogger("libp2p").level == logging.NOTSET:  # py-libp2p is chatty at INFO
            logging.getLogger("libp2p").setLevel(logging.WARNING)
        self._thread = threading.Thread(target=self._run, name="libp2p", daemon=True)
        self._thread.start()
        if not self._ready.wait(self.config.start_timeout):
            raise TimeoutError(f"libp2p host did not start within {self.config.start_timeout:.0f}s")
        if self._error is not None:
            raise RuntimeError(f"libp2p host failed to start: {self._error}") from self._error
        return self.addrs

    def stop(self, timeout: float = 10.0) -> None:
        if self._token is not None and self._stop is not None:
            try:
                trio.from_thread.run_sync(self._stop.set, trio_token=self._token)
            except trio.RunFinishedError:
                pass
        if self._thread is not None:
            self._thread.join(timeout)

    def publish(self, topic: str, data: bytes) -> None:
        trio.from_thread.run(self._publish, topic, data, trio_token=self._token)

    def connect(self, addr: str) -> bool:
        """Dial ``addr`` (a /p2p/ multiaddr) with the configured deadline; False on failure."""
        result: bool = trio.from_thread.run(self._connect, addr, trio_token=self._token)
        return result

    def connected_peers(self) -> list[str]:
        if self._host is None:
            return []
        return [str(p) for p in self._host.get_connected_peers()]

    # -- trio side -------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            trio.run(self._main)
        except BaseException as exc:  # reported to start(); the thread must not die silently
            self._error = exc
            log.error("libp2p host stopped: %s", exc)
        finally:
            self._ready.set()

    async def _main(self) -> None:
        self._stop = trio.Event()
        async with trio.open_nursery() as root:
            root.start_soon(self._serve)
            await self._stop.wait()
            # Cancel everything, teardown included: a half-open connection must not hold up shutdown.
            root.cancel_scope.cancel()

    async def _serve(self) -> None:
        cfg = self.config
        key_pair = create_new_key_pair(cfg.seed)
        noise = NoiseTransport(key_pair, noise_privkey=create_x25519_key_pair().private_key)
        listen = multiaddr.Multiaddr(cfg.listen)
        host = new_host(
            key_pair=key_pair,
            sec_opt={NOISE_PROTOCOL_ID: noise},  # Noise only: py-libp2p offers plaintext by default
            psk=cfg.psk.hex() if cfg.psk else None,
            listen_addrs=[listen],
            enable_mDNS=False,
            enable_upnp=False,
        )
        gossipsub = GossipSub(
            protocols=[PROTOCOL_ID_V11, PROTOCOL_ID],
            degree=4, degree_low=3, degree_high=8,  # small swarms; fewer duplicate deliveries per message
            heartbeat_interval=cfg.heartbeat_interval,
            heartbeat_initial_delay=0.1,
            gossip_window=3, gossip_history=5,
            spam_protection_enabled=True,
            max_messages_per_topic_per_second=cfg.max_messages_per_topic_per_second,
            eclipse_protection_enabled=False,  # every peer is on 127.0.0.1 in tests; the PSK gates membership
            max_pending_messages_per_peer=100,
        )
        pubsub = Pubsub(host, gossipsub, strict_signing=True, max_inbound_rpc_size=MAX_RPC_BYTES,
                        allowed_topics=set(cfg.topics), max_subscriptions_per_peer=16)
        self._host, self._pubsub = host, pubsub
        async with host.run([listen]), background_trio_service(pubsub), background_trio_service(gossipsub):
            await pubsub.wait_until_ready()
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                for topic in cfg.topics:
                    pubsub.set_topic_validator(topic, self._validator(topic), False)
                    subscription = await pubsub.subscribe(topic)
                    nursery.start_soon(self._receive_loop, topic, subscription)
                self.peer_id = str(host.get_id())
                self.addrs = [f"{a}" if "/p2p/" in str(a) else f"{a}/p2p/{self.peer_id}" for a in host.get_addrs()]
                self._token = trio.lowlevel.current_trio_token()
                self._ready.set()
                log.info("libp2p host %s listening on %s (Noise, %s)", self.peer_id, ", ".join(self.addrs),
                         "private swarm key" if cfg.psk else "NO swarm key")
                nursery.start_soon(self._keep_bootstrap)
                await trio.sleep_forever()

    def _validator(self, topic: str) -> Callable[[ID, rpc_pb2.Message], bool]:
        def check(_forwarder: ID, msg: rpc_pb2.Message) -> bool:
            return self._validate(topic, bytes(msg.from_id), bytes(msg.data))

        return check

    async def _receive_loop(self, topic: str, subscription: Any) -> None:
        while True:
            msg = await subscription.get()
            self.stats.received += 1
            self._dial_soon(self._receive(topic, bytes(msg.from_id), bytes(msg.data)))

    async def _publish(self, topic: str, data: bytes) -> None:
        assert self._pubsub is not None
        with trio.move_on_after(self.config.connect_timeout):  # never block the asyncio side's worker thread
            await self._pubsub.publish(topic, data)
            self.stats.published += 1

    async def _connect(self, addr: str) -> bool:
        try:
            info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
        except Exception as exc:  # malformed multiaddr from config or a record
            log.warning("not a /p2p/ multiaddr %r: %s", addr, exc)
            return False
        if info.peer_id == self._host.get_id():
            return True
        if info.peer_id in self._host.get_network().connections:
            return True
        with trio.move_on_after(self.config.connect_timeout) as scope:
            try:
                await self._host.connect(info)
                return True
            except Exception as exc:
                self.stats.connect_failures += 1
                log.warning("libp2p connect to %s failed: %s", addr, exc)
                return False
        if scope.cancelled_caught:
            self.stats.connect_timeouts += 1
            log.warning("libp2p connect to %s timed out after %.1fs: the peer is down or uses a different swarm key",
                        addr, self.config.connect_timeout)
        return False

    def _dial_soon(self, addrs: Sequence[str]) -> None:
        """Dial a peer a record told us about, in the background: the swarm then stays connected
        without the bootstrap peer."""
        if not addrs or self._nursery is None or len(self._host.get_connected_peers()) >= MAX_PEERS:
            return
        for addr in addrs:
            try:
                info = info_from_p2p_addr(multiaddr.Multiaddr(addr))
            except Exception:
                continue
            if info.peer_id == self._host.get_id() or info.peer_id in self._dialing:
                return
            if info.peer_id in self._host.get_network().connections:
                return
            self._dialing.add(info.peer_id)
            self._nursery.start_soon(self._dial_one, addr, info.peer_id)
            return

    async def _dial_one(self, addr: str, peer: ID) -> None:
        try:
            await self._connect(addr)
        finally:
            self._dialing.discard(peer)

    async def _keep_bootstrap(self) -> None:
        """Dial every bootstrap peer; redial any that drops, so a restarted bootstrap rejoins the swarm."""
        while True:
            for addr in self.config.bootstrap:
                try:
                    peer = info_from_p2p_addr(multiaddr.Multiaddr(addr)).peer_id
                except Exception:
                    log.error("bootstrap address %r is not a /p2p/ multiaddr (it needs the peer id)", addr)
                    continue
                if peer in self._host.get_network().connections:
                    continue
                if await self._connect(addr):
                    self.stats.connected_bootstrap.add(addr)
                    log.info("connected to bootstrap peer %s", addr)
            await trio.sleep(self.config.bootstrap_retry)

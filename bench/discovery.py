"""``swarmrank bench discovery``: how fast a coordinator sees a whole private swarm through gossip.

One process on 127.0.0.1: a coordinator that is also the bootstrap peer, then ``--nodes`` replay
nodes that know only the bootstrap multiaddr and the swarm key (each its own libp2p host on its own
trio thread, its own gRPC server). Reports:
- ``seconds_to_full_view``: from starting the nodes until the coordinator's discovery view holds
  every node record; ``discovered_all`` whether that happened within ``--timeout``;
- ``seconds_to_all_admitted``: until every node found the coordinator and passed calibration, and
  the baseline of the same nodes told the coordinator's address directly (``--coordinator``), with
  the ratio;
- gossip messages per node per minute (published and delivered), over ``--window`` seconds;
- ``wrong_key_refused``: a peer with another swarm key times out connecting and never appears.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from swarmrank.client.sdk import AsyncClient
from swarmrank.coordinator.calibration import ChallengeBank
from swarmrank.coordinator.daemon import serve as serve_coordinator
from swarmrank.coordinator.settings import CoordinatorSettings
from swarmrank.discovery import records, swarm_key
from swarmrank.discovery.libp2p_discovery import Libp2pDiscovery
from swarmrank.node.backends.replay import ReplayBackend
from swarmrank.node.daemon import serve as serve_node
from swarmrank.node.settings import NodeSettings
from swarmrank.protos.signing import Identity

from .progress import report

GOAL_SECONDS = 10.0


class _Tasks:
    def __init__(self) -> None:
        self.stops: list[asyncio.Event] = []
        self.tasks: list[asyncio.Task[object]] = []

    async def start(self, make: Callable[[asyncio.Future[str], asyncio.Event], Awaitable[object]]) -> str:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task: asyncio.Task[object] = asyncio.ensure_future(make(ready, stop))
        self.stops.append(stop)
        self.tasks.append(task)
        waiting: set[asyncio.Future[Any]] = {task, ready}
        done, _ = await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()
        return ready.result()

    async def close(self) -> None:
        for stop in reversed(self.stops):
            stop.set()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def _wait(predicate: Callable[[], Awaitable[bool]], timeout: float) -> float | None:
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if await predicate():
            return time.monotonic() - start
        await asyncio.sleep(0.05)
    return None


async def _admitted(address: str, n: int) -> bool:
    async with AsyncClient(address, retries=0) as client:
        return sum(x.state == "healthy" for x in await client.nodes()) >= n


def _coordinator_settings(workdir: Path) -> CoordinatorSettings:
    return CoordinatorSettings(listen="127.0.0.1:0", db=workdir / "coordinator.db", key_path=workdir / "coordinator.key",
                               calibration_threshold=0.0, spot_check_rate=0.0, heartbeat_interval=1.0)


def _node(settings: NodeSettings, name: str, discovery: Libp2pDiscovery | None = None
          ) -> Callable[[asyncio.Future[str], asyncio.Event], Awaitable[object]]:
    def start(ready: asyncio.Future[str], stop: asyncio.Event) -> Awaitable[object]:
        return serve_node(settings, backend=ReplayBackend(_truth(), name=name),
                          on_ready=lambda *_: ready.set_result(""), stop=stop, discovery=discovery)

    return start


def _truth() -> dict[str, str]:
    return {c.question: c.answer for c in ChallengeBank.arithmetic().generation}


async def _static_baseline(workdir: Path, n: int, timeout: float) -> float | None:
    tasks = _Tasks()
    try:
        address = await tasks.start(lambda ready, stop: serve_coordinator(
            _coordinator_settings(workdir), on_ready=ready.set_result, stop=stop))
        start = time.monotonic()
        for i in range(n):
            s = NodeSettings(listen="127.0.0.1:0", key_path=workdir / f"node{i}.key", model=f"replay{i}", coordinator=address)
            await tasks.start(_node(s, f"replay{i}"))
        done = await _wait(lambda: _admitted(address, n), timeout)
        return None if done is None else time.monotonic() - start
    finally:
        await tasks.close()


async def _discovered(workdir: Path, n: int, timeout: float, window: float, announce_interval: float) -> dict[str, Any]:
    key = swarm_key.create(workdir / "swarm.key")
    wrong = swarm_key.create(workdir / "wrong.key")
    tasks = _Tasks()
    coordinator = Libp2pDiscovery(Identity.load_or_create(workdir / "coordinator.key"), key,
                                  announce_interval=announce_interval, lifetime=max(60.0, 6 * announce_interval))
    nodes: list[Libp2pDiscovery] = []
    intruder: Libp2pDiscovery | None = None
    try:
        address = await tasks.start(lambda ready, stop: serve_coordinator(
            _coordinator_settings(workdir), on_ready=ready.set_result, stop=stop, discovery=coordinator))
        bootstrap = coordinator.addrs[:1]
        start = time.monotonic()
        for i in range(n):
            identity = Identity.load_or_create(workdir / f"node{i}.key")
            d = Libp2pDiscovery(identity, key, bootstrap=bootstrap, announce_interval=announce_interval,
                                lifetime=max(60.0, 6 * announce_interval))
            nodes.append(d)
            s = NodeSettings(listen="127.0.0.1:0", key_path=workdir / f"node{i}.key", model=f"replay{i}")
            await tasks.start(_node(s, f"replay{i}", d))
        started_all = time.monotonic() - start

        async def full_view() -> bool:
            return len(coordinator.nodes()) >= n

        view_after = await _wait(full_view, timeout)
        seconds_to_full_view = None if view_after is None else time.monotonic() - start
        admitted = await _wait(lambda: _admitted(address, n), timeout)
        seconds_to_all_admitted = None if admitted is None else time.monotonic() - start

        # A peer with another swarm key: its connect must time out, and its record never arrive.
        stranger = Identity.load_or_create(workdir / "stranger.key")
        intruder = Libp2pDiscovery(stranger, wrong, bootstrap=bootstrap, connect_timeout=3.0)
        await intruder.start()
        intruder.announce(lambda seq, exp: records.NodeRecord(
            stranger.public_key, "127.0.0.1:1", (records.AnnouncedModel("intruder"),), "both", 1, seq, exp,
            p2p_addrs=tuple(intruder.addrs[:1])))
        await _wait(_async(lambda: intruder is not None and
                           intruder.host.stats.connect_timeouts + intruder.host.stats.connect_failures > 0), 30.0)

        # Gossip volume in steady state.
        before = [(d.host.stats.published, d.host.stats.received) for d in nodes]
        t0 = time.monotonic()
        await asyncio.sleep(window)
        minutes = (time.monotonic() - t0) / 60
        published = sum(d.host.stats.published - b[0] for d, b in zip(nodes, before)) / n / minutes
        received = sum(d.host.stats.received - b[1] for d, b in zip(nodes, before)) / n / minutes
        refused = (stranger.node_id not in {r.node_id for r in coordinator.nodes()}
                   and all(stranger.node_id not in {r.node_id for r in d.nodes()} for d in nodes)
                   and intruder.host.stats.connect_timeouts + intruder.host.stats.connect_failures > 0)
        return {
            "seconds_to_start_nodes": round(started_all, 3),
            "seconds_to_full_view": None if seconds_to_full_view is None else round(seconds_to_full_view, 3),
            "discovered_all": view_after is not None,
            "nodes_in_view": len(coordinator.nodes()),
            "seconds_to_all_admitted": None if seconds_to_all_admitted is None else round(seconds_to_all_admitted, 3),
            "gossip_published_per_node_per_minute": round(published, 1),
            "gossip_delivered_per_node_per_minute": round(received, 1),
            "wrong_key_refused": refused,
            "wrong_key_connect_timeouts": intruder.host.stats.connect_timeouts,
            "gate_counters": dict(coordinator.gate.counters),
        }
    finally:
        if intruder is not None:
            await intruder.close()
        await tasks.close()


def _async(predicate: Callable[[], bool]) -> Callable[[], Awaitable[bool]]:
    async def check() -> bool:
        return predicate()

    return check


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="swarmrank bench discovery", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=8, help="nodes in the swarm (default 8)")
    p.add_argument("--timeout", type=float, default=120.0, help="seconds to wait for the full view / admission")
    p.add_argument("--window", type=float, default=30.0, help="seconds over which gossip volume is counted (default 30)")
    p.add_argument("--announce-interval", type=float, default=10.0, help="re-announcement period (default 10)")
    p.add_argument("--no-baseline", action="store_true", help="skip the static-address baseline")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    if not 1 <= args.nodes <= 64:
        raise ValueError("--nodes must be 1..64")

    async def run() -> dict[str, Any]:
        with tempfile.TemporaryDirectory(prefix="swarmrank-bench-discovery-") as tmp:
            (Path(tmp) / "p2p").mkdir()
            result: dict[str, Any] = {"nodes": args.nodes, "goal_seconds_to_full_view": GOAL_SECONDS,
                                      **await _discovered(Path(tmp) / "p2p", args.nodes, args.timeout, args.window,
                                                          args.announce_interval)}
            if not args.no_baseline:
                (Path(tmp) / "static").mkdir()
                base = await _static_baseline(Path(tmp) / "static", args.nodes, args.timeout)
                result["baseline_static_seconds_to_all_admitted"] = None if base is None else round(base, 3)
                if base and result["seconds_to_all_admitted"]:
                    result["admission_ratio_discovered_vs_static"] = round(result["seconds_to_all_admitted"] / base, 2)
            full = result["seconds_to_full_view"]
            result["goal_met"] = bool(result["discovered_all"] and full is not None and full <= GOAL_SECONDS)
            return result

    result = asyncio.run(run())
    rows = [(k, v) for k, v in result.items() if k != "gate_counters"]
    table = "\n".join(f"{k:<42} {v}" for k, v in rows) + f"\n{'gate_counters':<42} {result['gate_counters']}"
    report(result, table, args.json)
    return 0

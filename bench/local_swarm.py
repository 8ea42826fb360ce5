"""A whole swarm in one process: a coordinator and any number of nodes, each a real gRPC server on
127.0.0.1 with its own key, registering and calibrating like any remote node.

For benchmarks (``swarmrank bench replay``) and tests; ``swarmrank demo`` uses separate processes.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from swarmrank.coordinator.daemon import serve as serve_coordinator
from swarmrank.coordinator.rounds import SPOT_CHECK_TASK
from swarmrank.coordinator.settings import CoordinatorSettings
from swarmrank.node.backends.base import Backend
from swarmrank.node.daemon import serve as serve_node
from swarmrank.node.settings import NodeSettings

from .progress import ProgressBar
from swarmrank.client.sdk import AsyncClient
from swarmrank.client.types import Answer, NodeInfo, Unavailable


@dataclass(frozen=True)
class AskedAll:
    answers: list[Answer | None]          # in the order of the prompts; None: the round found no quorum
    reputations: list[dict[str, float]]   # per prompt: node name -> reputation just before it was asked
    elapsed_seconds: float
    final: list[NodeInfo]                 # the nodes as the coordinator holds them afterwards


def _seeded_key(path: Path, seed: str) -> None:
    """A node key derived from the swarm's seed (benchmarks only): the same node ids in every run, so
    that a seeded run makes the same choices (ids order nodes). Mode 0600 like any key file."""
    if path.exists():
        return
    key = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"swarmrank-bench-node:{seed}".encode()).digest())
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(pem)


class LocalSwarm:
    def __init__(self, workdir: Path, backends: Sequence[Backend], *, register_timeout: float = 120.0,
                 **coordinator_settings: Any) -> None:
        self.workdir = Path(workdir)
        self._backends = list(backends)  # the first nodes; add_nodes() adds more later
        self._register_timeout = register_timeout
        self._coordinator_settings = coordinator_settings
        self._stops: list[asyncio.Event] = []
        self._tasks: list[asyncio.Task[None]] = []
        self.address = ""
        self.node_ids: list[str] = []
        self.names: dict[str, str] = {}  # node id -> its backend's model name

    async def _start(self, coro_factory: Any) -> str:
        ready: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        stop = asyncio.Event()
        task = asyncio.create_task(coro_factory(ready, stop))
        self._stops.append(stop)
        self._tasks.append(task)
        done, _ = await asyncio.wait({task, ready}, return_when=asyncio.FIRST_COMPLETED)
        if task in done:
            task.result()  # start-up failed: raise its error
        return ready.result()

    async def __aenter__(self) -> LocalSwarm:
        self.workdir.mkdir(parents=True, exist_ok=True)
        settings = CoordinatorSettings(**{"listen": "127.0.0.1:0", "db": self.workdir / "coordinator.db",
                                          "key_path": self.workdir / "coordinator.key", **self._coordinator_settings})
        self.address = await self._start(lambda ready, stop: serve_coordinator(
            settings, on_ready=ready.set_result, stop=stop))
        await self.add_nodes(self._backends)
        return self

    async def add_nodes(self, backends: Sequence[Backend]) -> list[str]:
        """Start nodes that join the running swarm; returns their ids once each is admitted or refused."""
        ids = []
        for backend in backends:
            i = len(self.node_ids)
            if self._coordinator_settings.get("seed") is not None:
                _seeded_key(self.workdir / f"node{i}.key", f"{self._coordinator_settings['seed']}:{i}")
            node_settings = NodeSettings(listen="127.0.0.1:0", key_path=self.workdir / f"node{i}.key", model=backend.info.name,
                                         coordinator=self.address, max_queue=64)
            node_id = await self._start(lambda ready, stop, s=node_settings, b=backend: serve_node(
                s, backend=b, on_ready=lambda node_id, _: ready.set_result(node_id), stop=stop))
            self.node_ids.append(node_id)
            self.names[node_id] = backend.info.name
            ids.append(node_id)
        async with self.client() as client:
            # Calibration runs in this process: as long as nodes arrive or this process computes,
            # keep waiting; give up after register_timeout seconds without either.
            last, last_change = (0, 0), time.monotonic()
            while (known := len(await client.nodes())) < len(self.node_ids):
                progress = (known, int(time.process_time() // 2))
                if progress != last:
                    last, last_change = progress, time.monotonic()
                elif time.monotonic() - last_change > self._register_timeout:
                    raise TimeoutError(f"only {known} of {len(self.node_ids)} nodes registered, "
                                       f"no progress for {self._register_timeout:.0f}s")
                await asyncio.sleep(0.05)
        return ids

    async def settle(self) -> None:
        """Until the hidden spot checks that followed the rounds asked so far have ended. A round
        spawns its spot check before it answers, so after ``ask`` returns this sees it."""
        while running := [t for t in asyncio.all_tasks() if t.get_name() == SPOT_CHECK_TASK and not t.done()]:
            await asyncio.gather(*running, return_exceptions=True)

    async def ask_all(self, prompts: Sequence[str], *, concurrency: int, label: str) -> AskedAll:
        """Ask every prompt, ``concurrency`` rounds in flight, with a progress bar; each answer comes
        with the reputations the coordinator held just before it was asked (for vote baselines)."""
        answers: list[Answer | None] = [None] * len(prompts)
        reputations: list[dict[str, float]] = [{} for _ in prompts]
        progress = ProgressBar(label, len(prompts), unit="q", scale=1)
        done = 0
        started = time.perf_counter()
        async with self.client() as client:
            gate = asyncio.Semaphore(concurrency)

            async def one(i: int) -> None:
                nonlocal done
                async with gate:
                    reputations[i] = {self.names[n.node_id]: n.reputation for n in await client.nodes()}
                    try:
                        answers[i] = await client.ask(prompts[i], timeout=300)
                    except Unavailable as exc:  # too few answers even after a second wave: no answer, go on
                        print(f"\nprompt {i}: no answer ({exc})", file=sys.stderr)
                done += 1
                progress(done)

            await asyncio.gather(*(one(i) for i in range(len(prompts))))
            elapsed = time.perf_counter() - started
            final = await client.nodes()
        return AskedAll(answers, reputations, elapsed, final)

    def client(self) -> AsyncClient:
        return AsyncClient(self.address, retries=0)

    async def stop_node(self, index: int) -> None:
        self._stops[index + 1].set()
        with contextlib.suppress(Exception):
            await self._tasks[index + 1]

    async def __aexit__(self, *exc: object) -> None:
        for stop in reversed(self._stops):
            stop.set()
        await asyncio.gather(*self._tasks, return_exceptions=True)

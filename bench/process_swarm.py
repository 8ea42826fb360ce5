"""A swarm of separate processes on 127.0.0.1: one coordinator and N instant nodes, each the real
daemon (`swarmrank coordinator start`, `swarmrank node start --backend instant`).

Separate processes so that the coordinator's cost, memory (RSS) and open file descriptors can be
measured on their own, and so that the chaos tests can SIGKILL any of them. Extra flags for either
daemon (TLS certificates, an HTTP listener...) come from the caller.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from swarmrank.client.sdk import AsyncClient

from .parent_death import child_env

_COORDINATOR_READY = re.compile(r"swarmrank coordinator listening on (\S+)")
_NODE_READY = re.compile(r"swarmrank node (\S+) listening on (\S+)")


def _cli() -> list[str]:
    return [sys.executable, "-m", "swarmrank.cli.main"]


@dataclass
class Daemon:
    process: subprocess.Popen[str]
    address: str
    log_path: Path
    node_id: str = ""

    @property
    def pid(self) -> int:
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL: no graceful shutdown, nothing flushed that was not already committed."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
        self.process.wait(30)

    def terminate(self, timeout: float = 30.0) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                return self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
        return self.process.wait(30)


def _start(args: Sequence[str], pattern: re.Pattern[str], log_path: Path, timeout: float) -> tuple[subprocess.Popen[str], re.Match[str]]:
    """Start a daemon, stderr to ``log_path``, and wait for its ready line on stdout."""
    log = open(log_path, "a")  # noqa: SIM115 - handed to the child, closed below
    env = {**os.environ, "PYTHONUNBUFFERED": "1", **child_env()}
    process = subprocess.Popen(list(args), stdout=subprocess.PIPE, stderr=log, text=True, env=env)
    log.close()
    assert process.stdout is not None
    deadline = time.monotonic() + timeout
    # The ready line is the first thing a daemon prints on stdout; a dead child closes the pipe.
    os.set_blocking(process.stdout.fileno(), True)
    line = ""
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            break
        m = pattern.search(line)
        if m:
            return process, m
    process.kill()
    process.wait(30)
    raise RuntimeError(f"{args[3] if len(args) > 3 else args} did not start (log {log_path}): {log_path.read_text()[-2000:]}")


def start_coordinator(workdir: Path, extra_args: Sequence[str] = (), *, listen: str = "127.0.0.1:0",
                      timeout: float = 120.0, name: str = "coordinator") -> Daemon:
    args = [*_cli(), "coordinator", "start", "--listen", listen, "--db", str(workdir / "coordinator.db"),
            "--key-path", str(workdir / "coordinator.key"), "--log-level", "WARNING", *extra_args]
    process, m = _start(args, _COORDINATOR_READY, workdir / f"{name}.log", timeout)
    return Daemon(process, m.group(1), workdir / f"{name}.log")


def start_node(workdir: Path, index: int, coordinator: str, extra_args: Sequence[str] = (), *,
               timeout: float = 120.0) -> Daemon:
    args = [*_cli(), "node", "start", "--backend", "instant", "--model", f"instant-{index}", "--seed", str(index),
            "--listen", "127.0.0.1:0", "--key-path", str(workdir / f"node{index}.key"), "--coordinator", coordinator,
            "--max-concurrency", "256", "--max-queue", "1024", "--log-level", "WARNING", *extra_args]
    process, m = _start(args, _NODE_READY, workdir / f"node{index}.log", timeout)
    return Daemon(process, m.group(2), workdir / f"node{index}.log", node_id=m.group(1))


async def wait_healthy(address: str, count: int, timeout: float = 300.0, **client_options: Any) -> None:
    """Until ``count`` nodes are healthy at the coordinator (admission includes calibration)."""
    deadline = time.monotonic() + timeout
    async with AsyncClient(address, retries=0, **client_options) as client:
        while True:
            try:
                healthy = sum(n.state == "healthy" for n in await client.nodes(timeout=10))
            except Exception:  # noqa: BLE001 - coordinator restarting: keep waiting
                healthy = -1
            if healthy >= count:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"{healthy} of {count} nodes healthy after {timeout:.0f}s")
            await asyncio.sleep(0.1)


@dataclass
class ProcessSwarm:
    """Context manager: coordinator + ``nodes`` instant nodes, all registered and healthy on entry."""

    workdir: Path
    nodes: int
    coordinator_args: Sequence[str] = ()
    node_args: Sequence[str] = ()
    coordinator: Daemon | None = None
    node_daemons: list[Daemon] = field(default_factory=list)
    client_options: dict[str, Any] = field(default_factory=dict)  # TLS CA and API key of a private swarm

    @property
    def address(self) -> str:
        assert self.coordinator is not None
        return self.coordinator.address

    @property
    def node_addresses(self) -> list[str]:
        return [d.address for d in self.node_daemons]

    async def __aenter__(self) -> ProcessSwarm:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.coordinator = await asyncio.to_thread(start_coordinator, self.workdir, self.coordinator_args)
        self.node_daemons = list(await asyncio.gather(*(
            asyncio.to_thread(start_node, self.workdir, i, self.address, self.node_args) for i in range(self.nodes))))
        await wait_healthy(self.address, self.nodes, **self.client_options)
        return self

    async def __aexit__(self, *exc: object) -> None:
        daemons = [*self.node_daemons, *([self.coordinator] if self.coordinator else [])]
        await asyncio.gather(*(asyncio.to_thread(d.terminate) for d in daemons))


def rss_bytes(pid: int) -> int:
    """Resident set size of a live process (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def peak_rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def open_fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))

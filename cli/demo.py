"""``swarmrank demo``: a coordinator and one node per model as real processes on 127.0.0.1.

Children die with the demo: they get SIGTERM on normal exit, Ctrl-C or an error (SIGKILL after a
grace period), and on Linux the kernel sends them SIGTERM if the demo itself is killed
(PR_SET_PDEATHSIG, `bench/parent_death.py`), so no orphan keeps a port or a model in memory.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from swarmrank.bench.parent_death import child_env
from swarmrank.bench.progress import ProgressBar
from swarmrank.client.admin import AdminClient
from swarmrank.client.sdk import Client
from swarmrank.rpc import swarm_dir
from swarmrank.rpc.swarm_dir import SwarmInfo

from .waiting import wait_while_progressing, work_done

READY = re.compile(r"listening on (\S+)")
HTTP_READY = re.compile(r"HTTP API on (\S+)")


# Calls a registration may wait for: the coordinator's default calibration (4 generation and 2
# pairwise challenges) with room to spare.
REGISTER_CALLS = 8


class Child:
    def __init__(self, name: str, argv: list[str], log_path: Path, env: dict[str, str] | None = None) -> None:
        self.name = name
        self.log_path = log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "swarmrank.cli", *argv],
            stdout=subprocess.PIPE, stderr=self._log, stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {}), **child_env()},
        )
        self.address = ""
        self.http_url = ""
        self._ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()

    def _read_stdout(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode(errors="replace")
            if (h := HTTP_READY.search(line)) and not self.http_url:
                self.http_url = h.group(1)
            m = READY.search(line)
            if m and not self.address:
                self.address = m.group(1)
                self._ready.set()

    def wait_ready(self, stall: float = 60.0, limit: float = 1800.0) -> str:
        """Its address, once it listens; waits as long as it keeps using CPU (loading, compiling),
        up to ``stall`` seconds without any progress and ``limit`` in all."""
        wait_while_progressing(
            self._ready.is_set, lambda: work_done([self.proc.pid]), what=f"{self.name} start-up (log: {self.log_path})",
            stall=stall, limit=limit,
            failed=lambda: None if self.proc.poll() is None else f"exited with code {self.proc.returncode}\n{self.tail()}",
        )
        return self.address

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self, grace: float = 15.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()


def wait_for_nodes(client: Client, count: int, pids: list[int], *, what: str, stall: float = 120.0) -> None:
    """Until ``count`` nodes are healthy, as the coordinator says, for as long as the processes
    ``pids`` keep working or nodes keep arriving."""
    def healthy() -> list[str]:
        return sorted(n.node_id for n in client.nodes() if n.state == "healthy")

    wait_while_progressing(lambda: len(healthy()) >= count, lambda: (tuple(healthy()), work_done(pids)),
                           what=what, stall=stall)


def _say(quiet: bool, text: str) -> None:
    if not quiet:
        print(text, file=sys.stderr, flush=True)


def _demo_swarm(directory: Path) -> SwarmInfo:
    """The demo's swarm: created on first use, reused with --workdir."""
    if (directory / "swarm.json").is_file():
        return swarm_dir.load_info(directory)
    return swarm_dir.init(directory, [])[0]


def run_demo(args: argparse.Namespace) -> int:
    from swarmrank.node import catalogue

    from .render import ask_and_print

    models = [m.strip() for m in args.models.split(",") if m.strip()]
    for name in models:
        catalogue.lookup(name)  # unknown names fail before anything starts
    if len(models) < 2:
        raise ValueError("the demo needs at least two models")
    quiet = False
    for name in models:  # assemble once here, with a progress bar, so nodes start fast
        catalogue.prepare(name, progress=ProgressBar(f"preparing {name}", 1))
    with tempfile.TemporaryDirectory(prefix="swarmrank-demo-") as tmp:
        work = Path(args.workdir or tmp)
        work.mkdir(parents=True, exist_ok=True)
        children: list[Child] = []
        try:
            # Models this small fail arithmetic calibration, so the demo admits every node and
            # records the calibration score as evidence (a real swarm keeps the 0.5 threshold).
            # A throwaway private swarm, so the demo runs the path users run: TLS for the client, mTLS
            # between coordinator and nodes, nodes joining with a token, an API key for asking.
            swarm = _demo_swarm(work / "swarm")
            coordinator = Child("coordinator", ["coordinator", "start", "--swarm", str(swarm.directory),
                                                "--listen", "127.0.0.1:0", "--db", str(work / "coordinator.db"),
                                                "--key-path", str(work / "coordinator.key"), "--heartbeat-interval", "5",
                                                "--k", str(len(models)), "--default-max-tokens", str(args.max_tokens),
                                                "--calibration-threshold", "0",
                                                # every call may take what the whole round may: small models
                                                # on a busy laptop are slow, and a late node is penalised
                                                *[flag for name in ("generate", "judge", "calibration")
                                                  for flag in (f"--{name}-timeout", str(args.timeout))],
                                                *(["--http-listen", args.http_listen] if args.http_listen else [])],
                            work / "coordinator.log")
            children.append(coordinator)
            address = coordinator.wait_ready(60)
            _say(quiet, f"coordinator on {address} (TLS, swarm {swarm.swarm_id})")
            if coordinator.http_url:  # printed before the gRPC address, so it is known by now
                _say(quiet, f"dashboard: {coordinator.http_url}/#key={swarm.admin_key()}  (CA {swarm.ca_path}); "
                            f"OpenAI-compatible API: {coordinator.http_url}/v1 with that key")
            with AdminClient(address, api_key=swarm.admin_key(), ca=swarm.ca_path) as admin:
                token = admin.create_join_token(ttl_seconds=900, uses=len(models)).token
            threads = max(1, (os.cpu_count() or 1) // len(models))
            for name in models:
                children.append(Child(name, ["node", "start", "--model", name, "--listen", "127.0.0.1:0", "--coordinator", address,
                                             "--key-path", str(work / f"{name}.key"), "--n-threads", str(threads),
                                             "--tls-dir", str(work / f"{name}-tls"),
                                             # registration waits for calibration: several calls, each
                                             # allowed the whole --timeout above
                                             "--register-timeout", str(args.timeout * REGISTER_CALLS)],
                                      work / f"{name}.log", env={"SWARMRANK_NODE_JOIN": token}))  # not in argv: ps shows argv
            for child in children[1:]:
                _say(quiet, f"node {child.name} on {child.wait_ready(300)}")
            with Client(address, timeout=args.timeout, api_key=swarm.admin_key(), ca=swarm.ca_path) as client:
                # Nodes register after calibration, which takes real models a while on a busy
                # machine: wait as long as the swarm makes progress (CPU burnt, nodes admitted).
                wait_for_nodes(client, len(models), [c.proc.pid for c in children[1:]], what=f"node registration (logs in {work})")
                for n in client.nodes():
                    _say(quiet, f"  {','.join(n.models)} admitted after calibration: {n.state}, reputation {n.reputation:.3f}")
                _say(quiet, f"{len(models)} nodes registered; asking: {args.question}")
                ask_and_print(client, args.question, as_json=args.json, k=len(models), max_tokens=args.max_tokens)
            if args.serve:
                _say(quiet, "serving until Ctrl-C")
                try:
                    while all(c.proc.poll() is None for c in children):
                        time.sleep(1.0)
                except KeyboardInterrupt:
                    pass
            return 0
        except BaseException:
            for child in children:
                if child.proc.poll() is not None and child.proc.returncode not in (0, -signal.SIGTERM):
                    print(f"--- {child.name} log (tail) ---\n{child.tail()}", file=sys.stderr)
            raise
        finally:
            for child in reversed(children):
                child.stop()

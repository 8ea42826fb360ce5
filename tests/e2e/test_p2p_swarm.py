"""A private swarm formed through one bootstrap address: processes discover each other over libp2p,
answer rounds, keep out a peer with the wrong swarm key, and survive the bootstrap peer dying."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import wait_for
from swarmrank.bench.parent_death import child_env
from swarmrank.cli.demo import Child
from swarmrank.client import Client
from swarmrank.discovery import swarm_key

pytest.importorskip("libp2p")

NODE_SCRIPT = Path(__file__).parent / "p2p_replay_node.py"
sys.path.insert(0, str(Path(__file__).parent))
from p2p_replay_node import QUESTIONS  # type: ignore[import-not-found]  # noqa: E402


class NodeProcess(Child):
    """``p2p_replay_node.py`` as a child process (a real daemon with a replay backend)."""

    def __init__(self, name: str, args: list[str], log_path: Path) -> None:  # noqa: D107 -- same protocol as Child
        import threading

        self.name, self.log_path = name, log_path
        self._log = log_path.open("wb")
        self.proc = subprocess.Popen([sys.executable, str(NODE_SCRIPT), "--name", name, *args], stdout=subprocess.PIPE,
                                     stderr=self._log, stdin=subprocess.DEVNULL, env={**os.environ, **child_env()})
        self.address = ""
        self._ready = threading.Event()
        threading.Thread(target=self._read_stdout, daemon=True).start()


def cli(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run([sys.executable, "-m", "swarmrank.cli", *args], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        raise AssertionError(f"swarmrank {' '.join(args[:2])} timed out; stderr:\n{exc.stderr!r}") from exc


def test_swarm_through_one_bootstrap_address(tmp_path: Path) -> None:
    (tmp_path / "swarm").mkdir()
    swarm_key.create(tmp_path / "swarm")
    key = str(tmp_path / "swarm" / "swarm.key")
    wrong = str(tmp_path / "wrong.key")
    swarm_key.create(Path(wrong))
    children: list[Child] = []
    try:
        bootstrap = Child("bootstrap", ["p2p", "bootstrap", "--swarm-key", key, "--key-path", str(tmp_path / "b.key")],
                          tmp_path / "bootstrap.log")
        children.append(bootstrap)
        boot = bootstrap.wait_ready(600)
        assert "/p2p/" in boot
        coordinator = Child("coordinator", [
            "coordinator", "start", "--listen", "127.0.0.1:0", "--db", str(tmp_path / "c.db"),
            "--key-path", str(tmp_path / "c.key"), "--heartbeat-interval", "0.5", "--calibration-threshold", "0.5",
            "--spot-check-rate", "0", "--seed", "3", "--bootstrap", boot, "--swarm-key", key,
            "--announce-interval", "5"], tmp_path / "coordinator.log")
        children.append(coordinator)
        nodes = [NodeProcess(f"oracle{i}", ["--key-path", str(tmp_path / f"n{i}.key"), "--swarm-key", key,
                                            "--bootstrap", boot], tmp_path / f"node{i}.log") for i in range(4)]
        children.extend(nodes)
        intruder = NodeProcess("intruder", ["--key-path", str(tmp_path / "x.key"), "--swarm-key", wrong, "--bootstrap", boot],
                               tmp_path / "intruder.log")
        children.append(intruder)
        address = coordinator.wait_ready(600)
        for n in [*nodes, intruder]:
            n.wait_ready(600)

        with Client(address) as client:
            # Nobody told the nodes where the coordinator is: they found it, registered and passed calibration.
            wait_for(lambda: sum(n.state == "healthy" for n in client.nodes()) == 4, timeout=600, interval=0.5)

            # The client finds the coordinator through the swarm too.
            out = cli("ask", QUESTIONS[0].question, "--bootstrap", boot, "--swarm-key", key, "--json", "--discovery-wait", "60")
            assert out.returncode == 0, out.stderr
            assert json.loads(out.stdout)["answer"] == f"The answer is {QUESTIONS[0].answer}."
            assert "found coordinator" in out.stderr

            # What the swarm announces: the four nodes, never the intruder.
            listed = cli("nodes", "--bootstrap", boot, "--swarm-key", key, "--json", "--discovery-wait", "60")
            assert listed.returncode == 0, listed.stderr
            announced = json.loads(listed.stdout)
            names = sorted(m["name"] for n in announced for m in n["models"])
            assert names == ["oracle0", "oracle1", "oracle2", "oracle3"]
            assert all(n["p2p_addrs"] for n in announced)
            assert "intruder" not in {m for n in client.nodes() for m in n.models}
            wait_for(lambda: "different swarm key" in intruder.log_path.read_text(errors="replace"), timeout=300, interval=0.5)
            assert intruder.proc.poll() is None  # refused, not crashed: it keeps trying within its timeouts

            # Kill the bootstrap peer: rounds go on, and gossip still flows between the others.
            bootstrap.proc.send_signal(signal.SIGKILL)
            bootstrap.proc.wait(10)
            answer = client.ask(QUESTIONS[1].question)
            assert answer.text == f"The answer is {QUESTIONS[1].answer}."
            other_peer = announced[0]["p2p_addrs"][0]
            watched = cli("ledger", "watch", "--bootstrap", other_peer, "--swarm-key", key, "--json", "--duration", "30",
                          "--db", str(tmp_path / "c.db"))
            events = [json.loads(line) for line in watched.stdout.splitlines()]
            heads = [e for e in events if e["event"] == "head"]
            assert heads and all(e["event"] not in ("equivocation", "rollback") for e in events), watched.stderr
            assert any(e["event"] == "audit_ok" for e in events), events
            assert watched.returncode == 0
            assert "intruder" not in {m for n in client.nodes() for m in n.models}
    finally:
        for child in reversed(children):
            child.stop()

"""A coordinator killed with SIGKILL loses no committed ledger entry and rebuilds the same table."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

from helpers import RunningNode, wait_for
from swarmrank.client import Client
from swarmrank.cli.demo import Child
from swarmrank.coordinator import ledger
from swarmrank.coordinator.calibration import ChallengeBank
from swarmrank.node.backends.replay import ReplayBackend
from swarmrank.node.settings import NodeSettings

QUESTIONS = ChallengeBank.arithmetic(size=10, seed=42).generation


def coordinator(tmp_path: Path, listen: str = "127.0.0.1:0") -> Child:
    return Child("coordinator", ["coordinator", "start", "--listen", listen, "--db", str(tmp_path / "c.db"),
                                 "--key-path", str(tmp_path / "c.key"), "--heartbeat-interval", "2",
                                 "--calibration-threshold", "0", "--spot-check-rate", "0.5", "--seed", "3"],
                 tmp_path / "coordinator.log")


def entries(db: Path) -> list[tuple[int, str]]:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return [(int(s), b) for s, b in con.execute("SELECT seq, body FROM ledger ORDER BY seq")]
    finally:
        con.close()


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "swarmrank.cli", *args], capture_output=True, text=True, timeout=60)


def test_sigkill_and_restart(bg, tmp_path: Path) -> None:
    first = coordinator(tmp_path)
    address = first.wait_ready(60)
    # Nodes that know the answers (replayed): they stay in good standing across the restart.
    truth = {c.question: c.answer for c in [*ChallengeBank.arithmetic().generation, *QUESTIONS]}
    nodes = [RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp_path / f"n{i}.key", model=f"oracle{i}",
                                          coordinator=address), ReplayBackend(truth, name=f"oracle{i}")) for i in range(3)]
    try:
        with Client(address) as client:
            wait_for(lambda: sum(n.state == "healthy" for n in client.nodes()) == 3)
            for q in QUESTIONS[:4]:
                assert client.ask(q.question).text == f"The answer is {q.answer}."
        committed = entries(tmp_path / "c.db")
        assert any(json.loads(b)["kind"] == "round" for _, b in committed)
        first.proc.send_signal(signal.SIGKILL)
        first.proc.wait(10)
        first.stop()

        after_kill = entries(tmp_path / "c.db")
        assert after_kill[: len(committed)] == committed  # nothing committed was lost
        assert ledger.verify(tmp_path / "c.db").ok
        assert ledger.replay_and_compare(tmp_path / "c.db").mismatches == []

        second = coordinator(tmp_path, listen=address)  # same address: the nodes' heartbeats find it again
        try:
            assert second.wait_ready(60) == address
            with Client(address) as client:
                wait_for(lambda: sum(n.state == "healthy" for n in client.nodes()) == 3, timeout=300)  # nodes back off up to 30 s
                client.ask(QUESTIONS[5].question)
        finally:
            second.stop()
        out = cli("ledger", "verify", "--db", str(tmp_path / "c.db"))
        assert out.returncode == 0 and out.stdout.startswith("ok:"), out.stdout + out.stderr
        out = cli("ledger", "replay", "--db", str(tmp_path / "c.db"))
        assert out.returncode == 0 and "replay matches the stored table" in out.stdout
        assert entries(tmp_path / "c.db")[: len(after_kill)] == after_kill

        # Tampering is reported by the CLI with the first bad entry.
        con = sqlite3.connect(tmp_path / "c.db")
        con.execute("UPDATE ledger SET body = replace(body, '\"round\"', '\"round \"') WHERE seq = (SELECT max(seq) FROM ledger)")
        con.commit()
        con.close()
        out = cli("ledger", "verify", "--db", str(tmp_path / "c.db"))
        assert out.returncode == 1 and out.stdout.startswith("BAD at entry")
    finally:
        for n in nodes:
            n.stop()

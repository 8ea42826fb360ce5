"""The README's "Operate a private swarm" walkthrough, command by command, as real processes on
127.0.0.1: init, coordinator, invite, nodes joining with the token (separate processes that then
answer rounds), a client key, ask, remove a node. Two substitutions: tiny ONNX models instead of
GGUF ones (``--backend onnx --model-path``) and ``--calibration-threshold 0`` (tiny models fail
arithmetic calibration)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from helpers import CORPORA, build_bigram_onnx

CLI = [sys.executable, "-m", "swarmrank.cli.main"]
READY = re.compile(r"listening on (\S+)")


def run(*args: str, env: dict[str, str] | None = None, ok: bool = True, timeout: float = 600.0) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([*CLI, *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, **(env or {})})
    if ok:
        assert proc.returncode == 0, f"{args}: rc {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
    return proc


class Daemon:
    def __init__(self, args: list[str], log: Path, env: dict[str, str] | None = None) -> None:
        self.log = log
        self.proc = subprocess.Popen([*CLI, *args], stdout=subprocess.PIPE, stderr=log.open("w"), text=True,
                                     env={**os.environ, **(env or {})})
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # the ready line is the first thing a daemon prints; EOF if it died
        m = READY.search(line)
        if not m:
            self.proc.kill()
            raise AssertionError(f"{args[:2]} did not start: {line!r}\n{log.read_text()[-3000:]}")
        self.address = m.group(1)
        self.node_id = line.split()[2] if line.startswith("swarmrank node ") else ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)


def wait_healthy(swarm: Path, address: str, count: int, timeout: float = 180.0) -> list[dict[str, object]]:
    deadline = time.monotonic() + timeout
    while True:
        nodes = json.loads(run("nodes", "--swarm", str(swarm), "--coordinator", address, "--json").stdout)
        if sum(n["state"] == "healthy" for n in nodes) >= count:
            return nodes
        assert time.monotonic() < deadline, f"nodes not healthy in time: {nodes}"
        time.sleep(0.3)


def test_readme_walkthrough_with_processes(tmp_path: Path) -> None:
    swarm = tmp_path / "swarm"
    daemons: list[Daemon] = []
    try:
        # 1. create the swarm
        out = run("swarm", "init", str(swarm), "--advertise", "127.0.0.1").stdout
        assert "CA fingerprint" in out
        for name in ("ca.key", "coordinator.key", "admin.key", "swarm.key"):
            assert (swarm / name).stat().st_mode & 0o777 == 0o600
        psk = (swarm / "swarm.key").read_text().splitlines()
        assert psk[:2] == ["/key/swarm/psk/1.0.0/", "/base16/"] and re.fullmatch(r"[0-9a-f]{64}", psk[2])
        assert run("swarm", "init", str(swarm), ok=False).returncode == 2  # never overwritten
        coord = Daemon(["coordinator", "start", "--swarm", str(swarm), "--listen", "127.0.0.1:0", "--db", str(tmp_path / "c.db"),
                        "--key-path", str(tmp_path / "ledger.key"), "--calibration-threshold", "0", "--heartbeat-interval", "0.5",
                        "--spot-check-rate", "0"], tmp_path / "coordinator.log")
        daemons.append(coord)
        address = coord.address
        # 2. invite nodes
        token = run("swarm", "invite", "--swarm", str(swarm), "--coordinator", address, "--ttl", "1h", "--uses", "3").stdout.strip()
        assert token.startswith("SRJ1.")
        # 3. nodes join from "another host" (other processes, their own key and TLS directory)
        for name, corpus in CORPORA.items():
            model = build_bigram_onnx(tmp_path / f"{name}.onnx", corpus)
            daemons.append(Daemon(["node", "start", "--backend", "onnx", "--model-path", str(model), "--model", name,
                                   "--join", token, "--coordinator", address, "--listen", "127.0.0.1:0",
                                   "--key-path", str(tmp_path / f"{name}.key"), "--default-max-tokens", "40"],
                                  tmp_path / f"{name}.log"))
        nodes = wait_healthy(swarm, address, 3)
        assert {n["node_id"] for n in nodes} == {d.node_id for d in daemons[1:]}
        # 4. a client key
        key = run("keys", "create", "alice", "--scope", "ask", "--rate", "60/min", "--swarm", str(swarm),
                  "--coordinator", address).stdout.strip()
        assert key.startswith("srk_")
        # 5. ask from "anywhere" with the CA certificate and the key
        client_env = {"SWARMRANK_API_KEY": key}
        answer = json.loads(run("ask", "The capital of France", "--coordinator", address, "--ca", str(swarm / "ca.crt"),
                                "--json", env=client_env).stdout)
        assert answer["answer"] and len(answer["candidates"]) >= 2
        refused = run("keys", "list", "--coordinator", address, "--ca", str(swarm / "ca.crt"), env=client_env, ok=False)
        assert refused.returncode == 2 and "PERMISSION_DENIED" in refused.stderr
        plain = run("ask", "The capital of France", "--coordinator", address, env=client_env, ok=False)
        assert plain.returncode == 2 and "UNAVAILABLE" in plain.stderr  # the port does not speak plaintext
        # 6. remove a node
        victim = daemons[1].node_id
        out = run("nodes", "remove", victim, "--swarm", str(swarm), "--coordinator", address).stdout
        assert "removed" in out
        answer = json.loads(run("ask", "The capital of France", "--coordinator", address, "--ca", str(swarm / "ca.crt"),
                                "--k", "2", "--json", env=client_env).stdout)
        assert victim not in {c["node_id"] for c in answer["candidates"]}
        states = {n["node_id"]: n["state"] for n in json.loads(
            run("nodes", "--swarm", str(swarm), "--coordinator", address, "--json").stdout)}
        assert states[victim] != "healthy"
        assert "ok:" in run("ledger", "verify", "--db", str(tmp_path / "c.db")).stdout
    finally:
        for d in reversed(daemons):
            d.stop()
    log = "".join((tmp_path / f"{n}.log").read_text() for n in ("coordinator", *CORPORA))
    assert key.rsplit("_", 1)[1] not in log and token.rsplit(".", 1)[1] not in log  # no secret in any log


@pytest.mark.skipif(sys.platform != "linux", reason="process test")
def test_node_with_a_bad_token_fails_fast(tmp_path: Path) -> None:
    swarm = tmp_path / "swarm"
    run("swarm", "init", str(swarm))
    coord = Daemon(["coordinator", "start", "--swarm", str(swarm), "--listen", "127.0.0.1:0", "--db", str(tmp_path / "c.db"),
                    "--key-path", str(tmp_path / "ledger.key")], tmp_path / "coordinator.log")
    try:
        token = run("swarm", "invite", "--swarm", str(swarm), "--coordinator", coord.address).stdout.strip()
        bad = token[:-4] + "0000"
        model = build_bigram_onnx(tmp_path / "m.onnx")
        proc = run("node", "start", "--backend", "onnx", "--model-path", str(model), "--join", bad, "--coordinator",
                   coord.address, "--listen", "127.0.0.1:0", "--key-path", str(tmp_path / "n.key"), ok=False)
        assert proc.returncode == 2 and "unknown join token" in proc.stderr
        revoked = run("swarm", "invite", "--swarm", str(swarm), "--coordinator", coord.address).stdout.strip()
        run("swarm", "revoke-token", revoked.split(".")[2], "--swarm", str(swarm), "--coordinator", coord.address)
        proc = run("node", "start", "--backend", "onnx", "--model-path", str(model), "--join", revoked, "--coordinator",
                   coord.address, "--listen", "127.0.0.1:0", "--key-path", str(tmp_path / "n3.key"), ok=False)
        assert proc.returncode == 2 and "the join token is revoked" in proc.stderr
        proc = run("node", "start", "--backend", "onnx", "--model-path", str(model), "--listen", "0.0.0.0:0",
                   "--key-path", str(tmp_path / "n2.key"), ok=False)
        assert proc.returncode == 2 and "--insecure" in proc.stderr
    finally:
        coord.stop()


def test_bench_overhead_tls_reports_both_paths_from_one_run(tmp_path: Path) -> None:
    out = run("bench", "overhead", "--tls", "--nodes", "3", "--k", "2", "--rounds", "4", "--warmup", "1", "--json",
              "--workdir", str(tmp_path), timeout=900.0)  # eight daemons start first: slow on a loaded machine
    r = json.loads(out.stdout)
    assert set(r["paths"]) == {"grpc", "mtls"} and r["interleaved"]
    for path in r["paths"].values():
        assert path["round"]["p50_ms"] > 0 and path["bare_fanout"]["p50_ms"] > 0
    assert r["tls_round_ratio"] == round(r["paths"]["mtls"]["round"]["p50_ms"] / r["paths"]["grpc"]["round"]["p50_ms"], 4)
    assert r["tls_goal_met"] == (r["tls_round_ratio"] <= r["tls_goal_ratio"])
    assert "mTLS vs plaintext" in out.stderr

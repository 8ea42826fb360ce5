"""``swarmrank bench overhead --http`` as a real command: instant-node processes, a coordinator
serving gRPC and HTTP, and every HTTP client measured in the same run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def test_bench_overhead_http_reports_every_client_against_grpc(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "swarmrank.cli.main", "bench", "overhead", "--http", "--nodes", "3",
                           "--k", "2", "--rounds", "4", "--warmup", "1", "--json", "--workdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=900.0, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    r = json.loads(proc.stdout)["http"]
    assert r["goal_client"] == "aiohttp" and {"aiohttp", "httpx", "openai"} <= r["clients"].keys()
    grpc_p50 = r["grpc_ask"]["p50_ms"]
    assert grpc_p50 > 0
    for c in [r["grpc_ask"], *r["clients"].values()]:
        assert c["coordinator_cpu_ms_per_round"] is None or c["coordinator_cpu_ms_per_round"] >= 0
    if Path("/proc/self/stat").exists():  # Linux: the coordinator's CPU is read from /proc
        assert sum(c["coordinator_cpu_ms_per_round"] for c in [r["grpc_ask"], *r["clients"].values()]) > 0
    for c in r["clients"].values():
        assert c["p50_ms"] > 0 and c["added_ms_p50"] == round(c["p50_ms"] - grpc_p50, 3)
    assert r["http_added_ms_p50"] == r["clients"]["aiohttp"]["added_ms_p50"]
    assert r["goal_met"] == (r["http_added_ms_p50"] <= r["goal_ms"])
    assert "decides the goal" in proc.stderr and "openai" in proc.stderr

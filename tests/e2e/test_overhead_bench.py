"""``swarmrank bench overhead`` end to end on a tiny swarm (fast settings): the ratio and the
breakdown it reports (coordinator stages, CPU, the bare fan-out's stages), under both durabilities."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


@pytest.mark.parametrize("durability", ["normal", "full"])
def test_overhead_reports_ratio_and_where_the_time_goes(durability: str) -> None:
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "bench", "overhead", "--nodes", "3", "--k", "2",
                          "--rounds", "4", "--warmup", "1", "--seed", "0", "--durability", durability, "--json"],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert r["durability"] == durability and r["overhead_ratio"] > 0
    path = r["paths"]["grpc"]
    assert path["round"]["p50_ms"] > 0 and path["bare_fanout"]["p50_ms"] > 0
    # every stage of the 4 measured rounds was observed by the coordinator's own metrics
    assert set(path["stage_ms_mean"]) == {"dispatch", "generate", "judge", "fit", "commit"}
    assert all(v > 0 for v in path["stage_ms_mean"].values())
    assert path["coordinator_cpu_ms_per_round"] > 0 and path["bare_client_cpu_ms_per_round"] > 0
    assert path["judge_calls_per_round"] >= 1 and path["bare_judge_calls_per_round"] >= 1
    assert path["bare_stage_ms_mean"]["generate"] > 0 and path["bare_stage_ms_mean"]["judge"] > 0
    assert "coordinator stages" in out.stderr and "bare fan-out stages" in out.stderr

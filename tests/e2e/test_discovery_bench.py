"""``swarmrank bench discovery`` prints the documented JSON and sees the whole (small) swarm."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("libp2p")


def test_bench_discovery_json() -> None:
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "bench", "discovery", "--nodes", "3", "--window", "5",
                          "--json"], capture_output=True, text=True, timeout=900)
    assert out.returncode == 0, out.stderr[-2000:]
    result = json.loads(out.stdout)
    assert result["discovered_all"] is True and result["nodes_in_view"] >= 3
    assert result["wrong_key_refused"] is True
    assert result["seconds_to_full_view"] > 0 and result["seconds_to_all_admitted"] > 0
    assert result["gossip_published_per_node_per_minute"] > 0
    assert result["baseline_static_seconds_to_all_admitted"] > 0

"""The live benchmark with the three real models (llama.cpp, GGUF) on a couple of questions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import requires_models

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "objective_sets" / "arc_easy_test.jsonl.gz").exists(),
                                reason="../shared/data not beside the repo")

pytestmark = [requires_models, pytest.mark.models]


@needs_data
def test_live_bench_with_the_real_models() -> None:
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "bench", "live", "--data", str(DATA), "--json",
                          "--suite", "arc-easy", "--limit", "2", "--max-tokens", "16"], capture_output=True, text=True, timeout=3600)
    assert out.returncode == 0, out.stderr[-3000:]
    r = json.loads(out.stdout)
    assert r["questions"] == 2 and r["nodes"] == 3 and set(r["single_accuracy"]) == {"smollm2-135m", "qwen2.5-coder-0.5b", "gemma3-270m"}
    assert r["seconds_per_round"] > 0 and 0 <= r["swarm_accuracy"] <= r["oracle_accuracy"] <= 1



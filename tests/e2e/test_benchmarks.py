"""The replay and live benchmarks on a few questions, through the real gRPC path (fast settings)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from swarmrank.bench.datasets import load

DATA = Path(__file__).resolve().parents[3] / "shared" / "data"
needs_data = pytest.mark.skipif(not (DATA / "mmlu_pro" / "predictions.csv.gz").exists(), reason="../shared/data not beside the repo")


def bench(*args: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "bench", "replay", "--data", str(DATA), "--json", *args],
                         capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout)


@needs_data
def test_mmlu_pro_replay_through_real_nodes() -> None:
    models = "gpt4o_cot_api,gemini-1.5-pro-002_5shots,Meta-Llama-3_1-70B-Instruct_5shots,Yi-34B_5shots,Mistral-7B-v0.1_5shots"
    r = bench("--dataset", "mmlu-pro", "--models", models, "--limit", "40", "--seed", "1")
    assert r["questions"] == 40 and r["nodes"] == 5 and r["dataset"] == "mmlu-pro"
    for key in ("swarm_accuracy", "plurality_accuracy", "weighted_vote_accuracy", "best_single_accuracy", "oracle_accuracy"):
        assert 0.0 <= r[key] <= 1.0
    assert r["oracle_accuracy"] >= max(r["swarm_accuracy"], r["plurality_accuracy"], r["best_single_accuracy"])
    assert r["judge_calls_per_round"] > 0 and r["rounds_per_second"] > 0
    assert r["unanswered"] == 0  # rounds without a quorum of answers (counted wrong)


@needs_data
def test_an_empty_answer_graded_right_is_the_empty_string() -> None:
    crux = load(DATA, "crux")  # CRUXEval: some outputs are the empty string, recorded as an empty cell
    q = next(q for q in crux.questions if q.gold == "''")
    right = [m for m in crux.models if crux.correct[m].get(q.qid)]
    assert right and all(crux.answers[m][q.qid] == "''" for m in right)
    wrong = [m for m in crux.models if not crux.correct[m].get(q.qid, True)]
    assert all(crux.answers[m].get(q.qid, "") != "''" for m in wrong)


@needs_data
def test_gsm_replay_with_colluding_adversaries() -> None:
    r = bench("--dataset", "gsm", "--models", "Athene-70B,DeepSeek-Coder-V2-0724,Llama-3.1-405B-Inst@sambanova",
              "--limit", "20", "--adversaries", "1", "--adversary-kind", "colluding", "--spot-check-rate", "0.5")
    assert r["nodes"] == 4 and r["adversaries"] == 1 and r["questions"] == 20
    assert r["swarm_accuracy"] >= 0.5  # three strong models outvote one liar on GSM8K


@needs_data
def test_judgebench_panel_of_recorded_judges() -> None:
    r = bench("--dataset", "judgebench", "--limit", "12", "--held-out", "0.1")
    assert r["dataset"] == "judgebench" and r["questions"] == 12 and r["nodes"] == 8  # 2 responders + 6 judges
    assert r["judges_per_pair"] == 6 and 0 < r["judge_calls_per_round"] <= 6
    assert set(r["single_accuracy"]) >= {"o1-mini-2024-09-12"}
    assert r["oracle_accuracy"] >= r["best_single_accuracy"] == pytest.approx(max(r["single_accuracy"].values()), abs=1e-4)


@needs_data
def test_adversary_sweep_writes_a_plot(tmp_path: Path) -> None:
    plot = tmp_path / "sweep.png"
    r = bench("--dataset", "gsm", "--models", "Athene-70B,DeepSeek-Coder-V2-0724,Llama-3.1-405B-Inst@sambanova",
              "--limit", "10", "--sweep-adversaries", "0,1", "--plot", str(plot))
    assert [run["adversaries"] for run in r["runs"]] == [0, 1]
    assert [run["nodes"] for run in r["runs"]] == [3, 4]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

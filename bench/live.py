"""``swarmrank bench live``: the three offline models answer and judge for real (llama.cpp, CPU).

A real coordinator and one real gRPC node per model run in this process; every question goes
through the whole round (generation, pairwise judging in both orders, Bradley-Terry). Reported on
the same questions: swarm accuracy, plurality vote over the candidates' final answers, each single
node, oracle, seconds per round, judge calls per round, and how often a judge preferred the same
position in both orders of a pair (``inconsistent_pair_rate``: position bias, the reason both
orders are judged). Spot checks are off: models this small fail ground truth and would all be
quarantined (which the trust layer is right to do); calibration at admission still runs, with
threshold 0.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from swarmrank.client import AsyncClient
from swarmrank.node import catalogue
from swarmrank.protos.answers import answer_kind, final_answer, same_answer
from swarmrank.node.backends.llama import LlamaCppBackend

from .replay import vote
from .local_swarm import LocalSwarm
from .progress import ProgressBar, report

SUITES = {"arc-easy": "objective_sets/arc_easy_test.jsonl.gz", "arc-challenge": "objective_sets/arc_challenge_test.jsonl.gz",
          "gsm8k": "gsm8k_openai_solutions/test.jsonl.gz"}


def load_suite(data: Path, suite: str, limit: int) -> list[tuple[str, str]]:
    """(prompt, gold answer) pairs, read by path from the shared data directory."""
    with gzip.open(data / SUITES[suite], "rt") as f:
        items = [json.loads(line) for line, _ in zip(f, range(limit))]
    if suite == "gsm8k":
        return [(f"{x['question']}\nGive the final answer as a number.", x["answer"].split("####")[-1].strip().replace(",", ""))
                for x in items]
    return [(x["question"] + "\n" + "\n".join(f"{k}) {v}" for k, v in x["options"].items())
             + "\nAnswer with the letter of the correct option.", x["answer"]) for x in items]


async def run(args: argparse.Namespace) -> dict[str, Any]:
    questions = load_suite(args.data, args.suite, args.limit)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    backends = [LlamaCppBackend(catalogue.prepare(m), catalogue.lookup(m), n_threads=args.n_threads, judge_mode=args.judge_mode)
                for m in models]
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="swarmrank-live-") as tmp:
        async with LocalSwarm(Path(tmp), backends, k=len(backends), seed=args.seed, calibration_threshold=0.0,
                              spot_check_rate=0.0, default_max_tokens=args.max_tokens, heartbeat_interval=30.0,
                              generate_timeout=600.0, judge_timeout=600.0) as swarm:
            name_of = dict(zip(swarm.node_ids, models))
            progress = ProgressBar("rounds", len(questions), unit="q", scale=1)
            # Retries on UNAVAILABLE: on a loaded machine a node's heartbeat can arrive late while the
            # others compute, and the round then waits for it to be healthy again instead of failing.
            async with AsyncClient(swarm.address, retries=10) as client:
                for prompt, gold in questions:
                    started = time.perf_counter()
                    answer = await client.ask(prompt, timeout=1200)
                    kind = answer_kind(gold)
                    texts = {name_of[c.node_id]: c.text for c in answer.candidates}
                    correct = {m: same_answer(t, gold) for m, t in texts.items()}
                    finals = {m: final_answer(t, kind) or "" for m, t in texts.items()}
                    pairs: dict[tuple[str, frozenset[str]], list[str]] = defaultdict(list)
                    for j in answer.judgments:
                        pairs[(j.judge_node_id, frozenset((j.candidate_a_id, j.candidate_b_id)))].append(j.preference)
                    both = [p for p in pairs.values() if len(p) == 2]
                    rows.append({
                        "swarm": same_answer(answer.text, gold), "plurality": vote(finals, correct, {}),
                        "oracle": any(correct.values()), "single": correct, "seconds": time.perf_counter() - started,
                        "judge_calls": len({j.judge_node_id for j in answer.judgments}),
                        "pairs": len(both), "inconsistent": sum(p[0] == p[1] != "tie" for p in both),
                    })
                    progress(len(rows))
    n = len(rows)
    pairs_total = sum(r["pairs"] for r in rows)
    return {
        "benchmark": "live", "suite": args.suite, "questions": n, "nodes": len(models), "seed": args.seed,
        "swarm_accuracy": sum(r["swarm"] for r in rows) / n,
        "plurality_accuracy": sum(r["plurality"] for r in rows) / n,
        "single_accuracy": {m: sum(r["single"].get(m, False) for r in rows) / n for m in models},
        "oracle_accuracy": sum(r["oracle"] for r in rows) / n,
        "seconds_per_round": sum(r["seconds"] for r in rows) / n,
        "judge_calls_per_round": sum(r["judge_calls"] for r in rows) / n,
        "inconsistent_pair_rate": sum(r["inconsistent"] for r in rows) / pairs_total if pairs_total else None,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmrank bench live", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data directory (read by path)")
    parser.add_argument("--suite", choices=sorted(SUITES), default="arc-easy")
    parser.add_argument("--limit", type=int, default=20)
    parser.add_argument("--models", default="smollm2-135m,qwen2.5-coder-0.5b,gemma3-270m")
    parser.add_argument("--max-tokens", type=int, default=48)
    parser.add_argument("--n-threads", type=int, default=1, help="llama.cpp threads per model")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--judge-mode", choices=("verdict", "likelihood"), default="verdict",
                        help="verdict: score the A/B/T token of a judge prompt; likelihood: score each answer alone "
                             "(mean log-prob per token given the question: no position to be biased toward)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)
    result = asyncio.run(run(args))
    table = "\n".join(f"{k:<24}{v}" for k, v in result.items())
    report(result, table, args.json)
    return 0

"""``swarmrank bench replay``: consensus quality on real answers of real models, through the real system.

A real coordinator and one real gRPC node per model run in this process (``LocalSwarm``); each node
answers with its model's recorded answer (``ReplayBackend``) and judges reference-guided: it prefers
the candidate whose final answer matches its own recorded answer and says tie when neither or both
match (a proxy for a judge that solves the question itself). Reputation is learned online the way the
live system learns it: calibration at admission and hidden spot checks, both drawn from a held-out
split of the dataset that is never scored. Ground truth is read only to grade and to build that
held-out challenge bank.

Reported on the same scored questions in the same run: swarm accuracy, plurality vote, reputation-
weighted vote (reputations as the coordinator held them before each question), best single node
(chosen in hindsight), oracle (any node right), rounds per second and judge calls per round.
``--sweep-adversaries`` repeats the run per number of adversaries and ``--plot`` draws a chart
(``plot``); ``--dataset judgebench`` measures a panel of recorded judges (``judgebench``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

import numpy as np

from swarmrank.coordinator import evidence, spot_checks
from swarmrank.protos.answers import same_answer
from swarmrank.node.backends.adversarial import KINDS, Adversary, wrong_answer
from swarmrank.node.backends.replay import ANSWER_TEMPLATE, ReplayBackend

from . import judgebench, plot
from .datasets import DATASETS, AnswerMatrix, Question, load
from .local_swarm import LocalSwarm
from .progress import report

ADMISSION_CALLS = 6  # adversaries behave during the 4 + 2 admission challenges
REJOIN_NEVER = 1e9  # a quarantined node stays out for the run (its return would depend on wall-clock time)
TOP_K = 4  # nodes in the "top-k vote" reference (the coordinator's default top_judges)


def split(matrix: AnswerMatrix, seed: int, held_out: float) -> tuple[list[Question], list[Question]]:
    order = np.random.default_rng(seed).permutation(len(matrix.questions))
    cut = max(20, int(len(order) * held_out))
    return [matrix.questions[i] for i in order[cut:]], [matrix.questions[i] for i in order[:cut]]


def write_bank(path: Path, matrix: AnswerMatrix, questions: list[Question]) -> None:
    """The held-out split as a challenge bank: generation challenges with the gold answer, and a pair
    (gold vs the most common wrong recorded answer) for each question that has one."""
    with path.open("w") as f:
        for q in questions:
            f.write(json.dumps({"question": q.prompt, "answer": q.gold}) + "\n")
            wrong = Counter(matrix.answers[m].get(q.qid, "") for m in matrix.models if not matrix.correct[m].get(q.qid, False))
            wrong.pop("", None)
            if wrong:
                f.write(json.dumps({"question": q.prompt, "better": ANSWER_TEMPLATE.format(answer=q.gold),
                                    "worse": ANSWER_TEMPLATE.format(answer=wrong.most_common(1)[0][0])}) + "\n")


def vote(answers: dict[str, str], correct: dict[str, bool], weights: dict[str, float]) -> float:
    """Accuracy of a (weighted) vote over recorded answers; ties broken uniformly (expected value)."""
    tally: dict[str, float] = defaultdict(float)
    for node, a in answers.items():
        if a:
            tally[a] += weights.get(node, 1.0)
    if not tally:
        return 0.0
    top = max(tally.values())
    winners = [a for a, w in tally.items() if abs(w - top) < 1e-12]
    return sum(any(correct[n] for n, x in answers.items() if x == a) for a in winners) / len(winners)


def chosen_on_calibration(matrix: AnswerMatrix, models: list[str], held_out: list[Question],
                          top: int) -> tuple[str, dict[str, float]]:
    """What the held-out split alone picks: the best single node, and the log-odds weights of the
    ``top`` nodes by held-out accuracy (the offline "top-k vote" reference)."""
    chance = evidence.chance_of(held_out[0].prompt) if held_out else evidence.FREE_FORM_CHANCE
    right = {m: sum(matrix.correct[m].get(q.qid, False) for q in held_out) for m in models}
    ranked = sorted(models, key=lambda m: (-right[m], m))
    weights = {m: evidence.log_odds_above((right[m] + 1) / (len(held_out) + 2), chance) for m in ranked[:top]}
    return ranked[0], weights


async def run(args: argparse.Namespace) -> dict[str, Any]:
    matrix = load(args.data, args.dataset)
    models = args.models.split(",") if args.models else matrix.models
    unknown = sorted(set(models) - set(matrix.models))
    if unknown:
        raise ValueError(f"unknown model(s) {', '.join(unknown)}; the {args.dataset} data has: {', '.join(matrix.models)}")
    scored, held_out = split(matrix, args.seed, args.held_out)
    if args.limit:
        scored = scored[: args.limit]
    tables = {m: {q.prompt: matrix.answers[m].get(q.qid, "") for q in matrix.questions} for m in models}
    backends: list[Any] = [ReplayBackend(tables[m], name=m) for m in models]
    gold = {q.prompt: q.gold for q in matrix.questions}
    for i in range(args.adversaries):
        honest = ReplayBackend(gold, name=f"{args.adversary_kind}-{i}")
        backends.append(Adversary(honest, args.adversary_kind, member=i, seed=args.seed + i, honest_calls=ADMISSION_CALLS))
    k = args.k or TOP_K + 1
    with tempfile.TemporaryDirectory(prefix="swarmrank-replay-") as tmp:
        bank = Path(tmp) / "bank.jsonl"
        write_bank(bank, matrix, held_out)
        print(f"{args.dataset}: {len(scored)} scored questions, {len(held_out)} held out for calibration and spot checks, "
              f"{len(backends)} nodes", file=sys.stderr)
        async with LocalSwarm(Path(tmp) / "swarm", backends, k=k, max_k=max(k, len(backends)), seed=args.seed,
                              calibration_bank=bank, calibration_threshold=args.calibration_threshold,
                              spot_check_rate=args.spot_check_rate, judges_per_pair=args.judges_per_pair or TOP_K,
                              probation_rate=args.probation_rate, probation_checks=args.probation_checks,
                              heartbeat_interval=30.0, spot_checks_in_order=args.concurrency == 1,
                              refusal_cooldown=REJOIN_NEVER,
                              generate_timeout=60.0, judge_timeout=60.0) as swarm:
            adversaries = {swarm.names[node_id] for node_id in swarm.node_ids[len(models):]}
            asked = await swarm.ask_all([q.prompt for q in scored], concurrency=args.concurrency, label="rounds")
    calibration_pick, top_weights = chosen_on_calibration(matrix, models, held_out, TOP_K)
    rows: list[dict[str, Any]] = []
    for q, answer, reputation in zip(scored, asked.answers, asked.reputations):
        node_answers, node_correct = {}, {}
        for name in swarm.names.values():
            if name in adversaries:  # what it answered, for the vote baselines
                node_answers[name] = wrong_answer(q.gold) if args.adversary_kind in ("colluding", "sybil", "two-faced") else q.gold
                node_correct[name] = node_answers[name] == q.gold
            else:
                node_answers[name] = matrix.answers[name].get(q.qid, "")
                node_correct[name] = matrix.correct[name].get(q.qid, False)
        judgments = answer.judgments if answer else ()
        if answer is None:
            swarm_ok = False
        else:
            winner = swarm.names[answer.winner_node_id]
            swarm_ok = node_correct[winner] if winner in matrix.correct else same_answer(answer.text, q.gold)
        rows.append({
            "qid": q.qid, "swarm": bool(swarm_ok), "answered": answer is not None,
            "plurality": vote(node_answers, node_correct, {}),
            "weighted": vote(node_answers, node_correct, reputation),
            "top_k": vote({m: node_answers[m] for m in top_weights}, node_correct, top_weights),
            "oracle": any(node_correct.values()),
            "single": {m: matrix.correct[m].get(q.qid, False) for m in models},
            "judge_calls": len({j.judge_node_id for j in judgments}),
            "comparisons": len(judgments),
            "failures": len(answer.failures) if answer else 0,
        })
    final = {swarm.names[n.node_id]: round(n.reputation, 4) for n in asked.final}
    n = len(rows)
    singles = {m: sum(r["single"][m] for r in rows) / n for m in models}
    best = max(singles, key=singles.__getitem__)
    return {
        "benchmark": "replay",
        "dataset": args.dataset,
        "questions": n,
        "held_out": len(held_out),
        "nodes": len(backends),
        "adversaries": args.adversaries,
        "adversary_kind": args.adversary_kind if args.adversaries else None,
        "k": k,
        "seed": args.seed,
        "spot_check_rate": args.spot_check_rate,
        "probation_rate": args.probation_rate,
        "probation_checks": args.probation_checks,
        "swarm_accuracy": sum(r["swarm"] for r in rows) / n,
        "unanswered": sum(not r["answered"] for r in rows),  # rounds without a quorum of answers (counted wrong)
        "plurality_accuracy": sum(r["plurality"] for r in rows) / n,
        "weighted_vote_accuracy": sum(r["weighted"] for r in rows) / n,
        "top_k_vote_accuracy": sum(r["top_k"] for r in rows) / n,
        "top_k_models": list(top_weights),
        "calibration_pick_accuracy": singles[calibration_pick],
        "calibration_pick_model": calibration_pick,
        "best_single_accuracy": singles[best],
        "best_single_model": best,
        "oracle_accuracy": sum(r["oracle"] for r in rows) / n,
        "rounds_per_second": n / asked.elapsed_seconds,
        "judge_calls_per_round": sum(r["judge_calls"] for r in rows) / n,
        "comparisons_per_round": sum(r["comparisons"] for r in rows) / n,
        "failed_calls": sum(r["failures"] for r in rows),
        "final_reputation": final,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmrank bench replay", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data directory (read by path)")
    parser.add_argument("--dataset", choices=DATASETS, default="mmlu-pro")
    parser.add_argument("--models", default="", help="comma-separated model columns, or judges for judgebench (default: all)")
    parser.add_argument("--k", type=int, default=0, help="generators per client round (default 5, the strongest proven; spot checks reach every node)")
    parser.add_argument("--limit", type=int, default=0, help="scored questions (default: all not held out)")
    parser.add_argument("--seed", type=int, default=0, help="held-out split, coordinator and adversaries")
    parser.add_argument("--held-out", type=float, default=None,
                        help="fraction held out for calibration and spot checks (default 0.05; judgebench 0.2)")
    parser.add_argument("--judges-per-pair", type=int, default=0,
                        help="judges comparing each pair, a panel when > 1 (default 4, the judges that count; judgebench: every judge)")
    parser.add_argument("--spot-check-rate", type=float, default=None,
                        help="probability that a round is followed by a hidden spot check from the held-out split "
                             "(default 0.1; judgebench 0.25, whose 70 held-out pairs would otherwise go mostly unused)")
    parser.add_argument("--probation-rate", type=float, default=spot_checks.PROBATION_RATE,
                        help="spot checks per round while some node's ground-truth record is short (the coordinator's "
                             "probation budget; 0: none)")
    parser.add_argument("--probation-checks", type=int, default=spot_checks.PROBATION_CHECKS,
                        help="ground-truth observations per role that end a node's probation budget")
    parser.add_argument("--calibration-threshold", type=float, default=0.0,
                        help="admission threshold (default 0: every model takes part, so the comparison with plurality is fair)")
    parser.add_argument("--adversaries", type=int, default=0,
                        help="misbehaving nodes to add (they pass admission honestly, then misbehave)")
    parser.add_argument("--adversary-kind", choices=[k for k in KINDS if k != "lazy"] + ["lazy"], default="colluding",
                        help="random/always-a judges, colluding clique (one wrong answer, votes for it), sybil, "
                             "two-faced, lazy generators")
    parser.add_argument("--concurrency", type=int, default=1,
                        help="rounds in flight at once (1, the default: rounds and their spot checks in order, so a seed fixes the result)")
    parser.add_argument("--sweep-adversaries", default="",
                        help="comma-separated adversary counts, e.g. 0,5,10,15: one run per count on the same questions")
    parser.add_argument("--plot", type=Path, help="write a PNG: each method's accuracy, or accuracy against adversaries with a sweep")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)
    if args.spot_check_rate is None:
        args.spot_check_rate = 0.25 if args.dataset == "judgebench" else 0.1
    if args.held_out is None:
        args.held_out = 0.2 if args.dataset == "judgebench" else 0.05
    if args.dataset == "judgebench" and (args.adversaries or args.sweep_adversaries):
        parser.error("adversaries are answering nodes; use them with mmlu-pro, gsm, math-l5 or crux")
    if args.sweep_adversaries:
        try:
            counts = [int(x) for x in args.sweep_adversaries.split(",")]
        except ValueError:
            parser.error(f"--sweep-adversaries wants counts like 0,5,10, got {args.sweep_adversaries!r}")
        runs = []
        for count in counts:
            print(f"sweep: {count} adversarial node(s)", file=sys.stderr)
            runs.append(asyncio.run(run(argparse.Namespace(**{**vars(args), "adversaries": count}))))
        result: dict[str, Any] = {"benchmark": "replay-sweep", "dataset": args.dataset, "adversary_kind": args.adversary_kind,
                                  "seed": args.seed, "runs": runs}
        table = "\n".join([f"{'adversaries':>11}  {'swarm':>7}  {'weighted':>8}  {'plurality':>9}  {'best single':>11}"] + [
            f"{r['adversaries']:>11}  {r['swarm_accuracy']:>7.4f}  {r['weighted_vote_accuracy']:>8.4f}  "
            f"{r['plurality_accuracy']:>9.4f}  {r['best_single_accuracy']:>11.4f}" for r in runs])
    else:
        result = asyncio.run(judgebench.run(args) if args.dataset == "judgebench" else run(args))
        table = "\n".join(f"{key:<26}{result[key]:.4f}" if isinstance(result[key], float) else f"{key:<26}{result[key]}"
                          for key in ("dataset", "questions", "nodes", "swarm_accuracy", "plurality_accuracy",
                                      "weighted_vote_accuracy", "top_k_vote_accuracy", "calibration_pick_accuracy",
                                      "best_single_accuracy", "best_single_model", "oracle_accuracy",
                                      "rounds_per_second", "judge_calls_per_round"))
    if args.plot and args.sweep_adversaries:
        plot.sweep(result["runs"], args.plot)
    elif args.plot:
        plot.methods(result, args.plot)
    if args.plot:
        print(f"wrote {args.plot}", file=sys.stderr)
    report(result, table, args.json)
    return 0

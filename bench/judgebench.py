"""``swarmrank bench replay --dataset judgebench``: a panel of real judges, through the real system.

JudgeBench pairs two responses of one model to a hard question, one correct and one not. Here two
generate-only replay nodes answer each question with the pair's two recorded responses, and one
judge-only node per real judge (o1-mini with the arena-hard prompt, five reward models) answers with
that judge's recorded verdicts, in the order the coordinator shows the responses. The coordinator
runs its normal round with a panel (``judges_per_pair``, default: every judge) and learns judge
reputations from calibration and hidden spot checks drawn from a held-out split of the pairs.

Reported on the same scored pairs: the swarm (the round's winner; an exact tie counts one half);
each judge alone (both orders summed, a tie one half, as JudgeBench scores a judge); the unweighted
panel vote; the reputation-weighted panel vote (weights = reputation², the coordinator's judge
weight, as held before each pair); and the oracle (any judge right).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from swarmrank.coordinator import evidence
from swarmrank.node.backends.replay import RecordedJudgeBackend, ReplayBackend
from swarmrank.protos.types import Preference, Role

from .datasets import JudgeBench, JudgedPair, load_judgebench
from .local_swarm import LocalSwarm

RESPONDERS = ("response-1", "response-2")
PREFERENCE = {1: Preference.A, -1: Preference.B, 0: Preference.TIE}


def _half(score: float, better: str) -> float:
    """1 if ``score`` (> 0: A, < 0: B) picks the better response, 0.5 on a tie, else 0."""
    if abs(score) < 1e-12:
        return 0.5
    return float((score > 0) == (better == "A"))


def verdict_table(bench: JudgeBench, judge: str) -> dict[tuple[str, str, str], Preference]:
    """(question, first shown, second shown) -> this judge's recorded verdict, for both orders."""
    table = {}
    for p in bench.pairs:
        a_first, b_first = bench.verdicts[judge][p.pair_id]
        table[(p.question, p.response_a, p.response_b)] = PREFERENCE[a_first]
        table[(p.question, p.response_b, p.response_a)] = PREFERENCE[-b_first]  # B shown first: "A" means B
    return table


def write_bank(path: Path, pairs: list[JudgedPair]) -> None:
    """Held-out pairs as challenges: the correct response is the generation reference and the better
    answer of a known pair."""
    with path.open("w") as f:
        for p in pairs:
            better, worse = (p.response_a, p.response_b) if p.better == "A" else (p.response_b, p.response_a)
            f.write(json.dumps({"question": p.question, "answer": better}) + "\n")
            f.write(json.dumps({"question": p.question, "better": better, "worse": worse}) + "\n")


async def run(args: argparse.Namespace) -> dict[str, Any]:
    bench = load_judgebench(args.data)
    if args.models:
        chosen = args.models.split(",")
        unknown = sorted(set(chosen) - set(bench.judges))
        if unknown:
            raise ValueError(f"unknown judge(s) {', '.join(unknown)}; JudgeBench has: {', '.join(bench.judges)}")
        bench = JudgeBench(bench.pairs, chosen, {j: bench.verdicts[j] for j in chosen})
    order = np.random.default_rng(args.seed).permutation(len(bench.pairs))
    cut = max(20, int(len(order) * args.held_out))
    held_out = [bench.pairs[i] for i in order[:cut]]
    scored = [bench.pairs[i] for i in order[cut:]][: args.limit or None]
    # Which response each responder node gives is drawn per pair, so neither node is "the good one".
    swap = np.random.default_rng(args.seed + 1).random(len(bench.pairs)) < 0.5
    answers: list[dict[str, str]] = [{}, {}]
    for p, s in zip(bench.pairs, swap):
        answers[int(s)][p.question], answers[1 - int(s)][p.question] = p.response_a, p.response_b
    backends: list[Any] = [ReplayBackend(answers[i], name=name, template="{answer}", role=Role.GENERATE_ONLY)
                           for i, name in enumerate(RESPONDERS)]
    backends += [RecordedJudgeBackend(verdict_table(bench, j), name=j) for j in bench.judges]
    per_pair = args.judges_per_pair or len(bench.judges)
    with tempfile.TemporaryDirectory(prefix="swarmrank-judgebench-") as tmp:
        bank = Path(tmp) / "bank.jsonl"
        write_bank(bank, held_out)
        print(f"judgebench: {len(scored)} scored pairs, {len(held_out)} held out for calibration and spot checks, "
              f"{len(bench.judges)} judges, {per_pair} per pair", file=sys.stderr)
        async with LocalSwarm(Path(tmp) / "swarm", backends, k=2, seed=args.seed, calibration_bank=bank,
                              calibration_threshold=args.calibration_threshold, spot_check_rate=args.spot_check_rate,
                              probation_rate=args.probation_rate, probation_checks=args.probation_checks,
                              judges_per_pair=per_pair, default_max_tokens=1024, heartbeat_interval=30.0,
                              spot_checks_in_order=args.concurrency == 1, refusal_cooldown=1e9,  # no rejoin mid-run
                              generate_timeout=60.0, judge_timeout=60.0) as swarm:
            asked = await swarm.ask_all([p.question for p in scored], concurrency=args.concurrency, label="pairs")
    calibrated = {j: sum(_half(sum(bench.verdicts[j][p.pair_id]), p.better) for p in held_out) for j in bench.judges}
    ranked = sorted(bench.judges, key=lambda j: (-calibrated[j], j))
    top_weights = {j: evidence.log_odds_above((calibrated[j] + 1) / (len(held_out) + 2), 0.5) for j in ranked[:4]}
    rows: list[dict[str, Any]] = []
    for p, answer, reputation in zip(scored, asked.answers, asked.reputations):
        better_text = p.response_a if p.better == "A" else p.response_b
        judgments = answer.judgments if answer else ()
        singles = {j: sum(bench.verdicts[j][p.pair_id]) for j in bench.judges}
        rows.append({
            # no answer (no quorum) is wrong; an exact tie is half right, as for a single judge
            "swarm": 0.0 if answer is None else 0.5 if abs(answer.confidence - 0.5) < 1e-9 else float(answer.text.strip() == better_text),
            "single": {j: _half(s, p.better) for j, s in singles.items()},
            "scores": singles, "better": p.better,
            "panel": _half(sum(float(np.sign(s)) for s in singles.values()), p.better),
            "weighted": _half(sum(reputation[j] ** 2 * s for j, s in singles.items()), p.better),
            "top_k": _half(sum(top_weights[j] * float(np.sign(singles[j])) for j in top_weights), p.better),
            "oracle": any(_half(s, p.better) == 1.0 for s in singles.values()),
            "judge_calls": len({j.judge_node_id for j in judgments}),
            "comparisons": len(judgments),
            "answered": answer is not None,
        })
    final = {swarm.names[n.node_id]: round(n.reputation, 4) for n in asked.final}
    n = len(rows)
    singles = {j: sum(r["single"][j] for r in rows) / n for j in bench.judges}
    best = max(singles, key=singles.__getitem__)
    # Can the panel add anything to its best judge? Only where that judge has no verdict (a tie).
    ties = [r for r in rows if r["scores"][best] == 0]
    rest = [_half(sum(float(np.sign(s)) for j, s in r["scores"].items() if j != best), r["better"]) for r in ties]
    return {
        "benchmark": "replay",
        "dataset": "judgebench",
        "questions": n,
        "held_out": len(held_out),
        "nodes": len(backends),
        "judges_per_pair": per_pair,
        "seed": args.seed,
        "spot_check_rate": args.spot_check_rate,
        "probation_rate": args.probation_rate,
        "probation_checks": args.probation_checks,
        "swarm_accuracy": sum(r["swarm"] for r in rows) / n,
        "unanswered": sum(not r["answered"] for r in rows),  # rounds without a quorum of answers (counted wrong)
        "plurality_accuracy": sum(r["panel"] for r in rows) / n,
        "weighted_vote_accuracy": sum(r["weighted"] for r in rows) / n,
        "top_k_vote_accuracy": sum(r["top_k"] for r in rows) / n,
        "top_k_models": list(top_weights),
        "calibration_pick_accuracy": singles[ranked[0]],
        "calibration_pick_model": ranked[0],
        "best_single_accuracy": singles[best],
        "best_single_model": best,
        "oracle_accuracy": sum(r["oracle"] for r in rows) / n,
        "single_accuracy": {j: round(a, 4) for j, a in singles.items()},
        "best_judge_ties": len(ties),
        "rest_of_panel_accuracy_on_best_judge_ties": sum(rest) / len(rest) if rest else None,
        "rounds_per_second": n / asked.elapsed_seconds,
        "judge_calls_per_round": sum(r["judge_calls"] for r in rows) / n,
        "comparisons_per_round": sum(r["comparisons"] for r in rows) / n,
        "final_reputation": final,
        "quarantined": sorted(swarm.names[n.node_id] for n in asked.final if n.state == "quarantined"),
    }

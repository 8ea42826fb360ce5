"""``swarmrank bench offline``: the consensus rule on the answer matrices, without the network.

A fast approximation of ``swarmrank bench replay`` for choosing a rule (seconds to minutes where the
real path takes hours on the full MMLU-Pro set): the same split, the same pure functions
(``consensus.rank_candidates``, ``reputation.judge_weights``, ``judging_plan``, ``evidence``), the
same reference-guided judges, but no gRPC, no signatures, no ledger. What it simplifies: a hidden
spot check (probability ``--spot-check-rate`` after each round) draws a held-out question, records
5 explored generators right or wrong and every judge on the known pair (gold vs the most common
wrong answer: right, wrong, or an abstention when its own answer is neither); client rounds go to
the ``--k`` generators with the best proven record and each pair to 4 judges that wrote neither
answer. Free-form answers are compared as strings (the real path normalises them), so use it for
multiple choice (MMLU-Pro); the confirming numbers come from ``bench replay``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from swarmrank.coordinator import consensus, evidence, judging_plan, reputation
from swarmrank.coordinator.domain import Candidate, Judgment
from swarmrank.coordinator.trust import Trust
from swarmrank.protos.types import Preference

from .datasets import AnswerMatrix, Question, load
from .progress import report
from .replay import TOP_K, chosen_on_calibration, split, vote

EXPLORED = 5  # generators measured by one spot check


class Records:
    """Each node's ground-truth record as the coordinator would hold it (per topic for judges)."""

    def __init__(self, models: list[str]) -> None:
        self.generator = {m: [0.0, 0] for m in models}
        self.judge = {m: [0.0, 0] for m in models}
        self.topics: dict[str, dict[str, list[float]]] = {m: {} for m in models}
        self.passed = dict.fromkeys(models, 0)

    def trust(self, m: str) -> Trust:
        status = "established" if self.passed[m] >= reputation.PROVEN_AFTER else "probation"
        topics = tuple((t, v[0], int(v[1])) for t, v in sorted(self.topics[m].items()))
        return Trust(0.5, 0.5, status, 0.0, self.passed[m], self.generator[m][0], int(self.generator[m][1]),
                     self.judge[m][0], int(self.judge[m][1]), 0, topics)


def spot_check(matrix: AnswerMatrix, q: Question, records: Records, rng: np.random.Generator) -> None:
    models = matrix.models
    for i in rng.choice(len(models), min(EXPLORED, len(models)), replace=False):
        ok = matrix.correct[models[int(i)]].get(q.qid, False)
        records.generator[models[int(i)]][0] += ok
        records.generator[models[int(i)]][1] += 1
        records.passed[models[int(i)]] += ok
    wrong = Counter(matrix.answers[m].get(q.qid, "") for m in models if not matrix.correct[m].get(q.qid, False))
    wrong.pop("", None)
    if not wrong:
        return
    worse, topic = wrong.most_common(1)[0][0], evidence.topic_of(q.prompt)
    for m in models:
        mine = matrix.answers[m].get(q.qid, "")
        if mine not in (q.gold, worse):
            continue  # neither: a tie both ways, an abstention
        value = 1.0 if mine == q.gold else -1.0
        records.judge[m][0] += value
        records.judge[m][1] += 1
        records.passed[m] += value > 0
        if topic:
            cell = records.topics[m].setdefault(topic, [0.0, 0])
            cell[0] += value
            cell[1] += 1


def one_round(matrix: AnswerMatrix, q: Question, records: Records, k: int, rng: np.random.Generator) -> bool:
    models = matrix.models
    trusts = {m: records.trust(m) for m in models}
    proof = {m: evidence.wilson(*trusts[m].generator_record, evidence.WEIGHT_Z)[0] for m in models}
    if any(proof.values()):
        chosen = sorted(models, key=lambda m: (-proof[m], m))[:k]
    else:
        chosen = [models[int(i)] for i in rng.choice(len(models), min(k, len(models)), replace=False)]
    answers = {m: matrix.answers[m].get(q.qid, "").strip() for m in chosen}
    candidates = [Candidate(f"c{i}", m, m, answers[m], b"", b"") for i, m in enumerate(chosen) if answers[m]]
    if not candidates:
        return False
    texts = [c.text for c in candidates]
    pairs = [(a, b) for a, b in judging_plan.schedule(len(candidates), rng) if texts[a] != texts[b]]
    topic = evidence.topic_of(q.prompt)
    weights = reputation.judge_weights(trusts, sorted(models), reputation.TOP_JUDGES, topic)
    planned, _ = judging_plan.assign(pairs, [frozenset({c.node_id}) for c in candidates], sorted(models), rng,
                                     round_tag="offline", per_pair=TOP_K, weights=weights)
    judgments = []
    for p in planned:
        mine = matrix.answers[p.judge].get(q.qid, "").strip()
        a, b = texts[p.answer_a] == mine, texts[p.answer_b] == mine
        preference = Preference.A if a and not b else Preference.B if b and not a else Preference.TIE
        judgments.append(Judgment(p.judge, p.comparison_id, p.answer_a, p.answer_b, preference, 1.0, "",
                                  weights.get(p.judge, 0.0), b"", b""))
    winner = candidates[consensus.rank_candidates(candidates, judgments, trusts, prompt=q.prompt).winner]
    return matrix.correct[winner.node_id].get(q.qid, False)


def run(args: argparse.Namespace) -> dict[str, Any]:
    matrix = load(args.data, args.dataset)
    scored, held_out = split(matrix, args.seed, args.held_out)
    scored = scored[: args.limit] if args.limit else scored
    rng = np.random.default_rng(args.seed)
    records = Records(matrix.models)
    pick, top_weights = chosen_on_calibration(matrix, matrix.models, held_out, TOP_K)
    swarm = top_k = 0.0
    for q in scored:
        swarm += one_round(matrix, q, records, args.k, rng)
        top_k += vote({m: matrix.answers[m].get(q.qid, "") for m in top_weights},
                      {m: matrix.correct[m].get(q.qid, False) for m in top_weights}, top_weights)
        if rng.random() < args.spot_check_rate:
            spot_check(matrix, held_out[int(rng.integers(0, len(held_out)))], records, rng)
    n = len(scored)
    return {"benchmark": "offline", "dataset": args.dataset, "seed": args.seed, "questions": n, "held_out": len(held_out),
            "swarm_accuracy": swarm / n, "top_k_vote_accuracy": top_k / n,
            "calibration_pick_accuracy": sum(matrix.correct[pick].get(q.qid, False) for q in scored) / n,
            "calibration_pick_model": pick}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmrank bench offline", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path("../shared/data"), help="the shared data directory (read by path)")
    parser.add_argument("--dataset", choices=("mmlu-pro", "gsm", "math-l5", "crux"), default="mmlu-pro")
    parser.add_argument("--limit", type=int, default=0, help="scored questions (default: all not held out)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=TOP_K + 1, help="generators per client round")
    parser.add_argument("--held-out", type=float, default=0.05)
    parser.add_argument("--spot-check-rate", type=float, default=0.1)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)
    print(f"{args.dataset}: offline rounds, seed {args.seed}", file=sys.stderr)
    result = run(args)
    table = "\n".join(f"{key:<26}{value:.4f}" if isinstance(value, float) else f"{key:<26}{value}" for key, value in result.items())
    report(result, table, args.json)
    return 0

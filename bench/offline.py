"""``swarmrank bench offline``: the consensus rule on the answer matrices, without the network.

A fast approximation of ``swarmrank bench replay`` for choosing a rule (seconds to minutes where the
real path takes hours on the full MMLU-Pro set): the same split, the same pure functions
(``consensus.rank_candidates``, ``reputation.judge_weights``, ``judging_plan``, ``evidence``), the
same reference-guided judges, and the coordinator's own spot-check plan (``spot_checks.Plan``: the
probation budget while a record is short, then ``--spot-check-rate``; held-out questions dealt
without repeats), but no gRPC, no signatures, no ledger. A hidden spot check records the explored
generators (``--explored``, default every node as in the replay, whose spot checks reach every
node; short records first) right or wrong (no answer is wrong) and, as the coordinator does, every
judge on the known pair (gold vs the most common wrong answer: right, wrong, or an abstention when
its own answer is neither; in its weight record only when the voters among those generators
disagreed). What it simplifies: client rounds go to the ``--k`` generators with the best proven
record (those without an answer drop out, with no second wave) and each pair to 4 judges that wrote
neither answer; nobody is quarantined. Free-form answers are compared as strings (the real path normalises them), so use
it for multiple choice (MMLU-Pro); the confirming numbers come from ``bench replay``.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from swarmrank.coordinator import consensus, evidence, judging_plan, reputation, spot_checks
from swarmrank.coordinator.domain import Candidate, Judgment
from swarmrank.coordinator.trust import Trust
from swarmrank.protos.types import Preference

from .datasets import AnswerMatrix, Question, load
from .progress import report
from .replay import TOP_K, chosen_on_calibration, split, vote



class Records:
    """Each node's ground-truth record as the coordinator would hold it (overall and per topic)."""

    def __init__(self, models: list[str]) -> None:
        self.generator = {m: [0.0, 0] for m in models}
        self.judge = {m: [0.0, 0] for m in models}
        self.judge_disputed = {m: [0.0, 0] for m in models}
        self.judge_topics: dict[str, dict[str, list[float]]] = {m: {} for m in models}
        self.generator_topics: dict[str, dict[str, list[float]]] = {m: {} for m in models}
        self.passed = dict.fromkeys(models, 0)

    def measured(self) -> dict[str, int]:
        """Per node, the shorter of its two ground-truth records (``spot_checks.measured``)."""
        return {m: int(min(self.generator[m][1], self.judge[m][1])) for m in self.generator}

    def trust(self, m: str) -> Trust:
        status = "established" if self.passed[m] >= reputation.PROVEN_AFTER else "probation"
        return Trust(0.5, 0.5, status, 0.0, self.passed[m], self.generator[m][0], int(self.generator[m][1]),
                     self.judge[m][0], int(self.judge[m][1]), 0, _topics(self.judge_topics[m]), _topics(self.generator_topics[m]),
                     self.judge_disputed[m][0], int(self.judge_disputed[m][1]))


def _topics(table: dict[str, list[float]]) -> tuple[tuple[str, float, int], ...]:
    return tuple((t, v[0], int(v[1])) for t, v in sorted(table.items()))


def _observe(record: list[float], value: float, table: dict[str, list[float]] | None = None, topic: str = "") -> None:
    """One more observation ``value`` in a record (sum, count) and, with a topic, in ``table``'s cell for it."""
    for cell in (record, table.setdefault(topic, [0.0, 0])) if table is not None and topic else (record,):
        cell[0] += value
        cell[1] += 1


def spot_check(matrix: AnswerMatrix, q: Question, records: Records, rng: np.random.Generator, explored: int = 0,
               probation_checks: int = spot_checks.PROBATION_CHECKS) -> None:
    """One hidden spot check on ``q``: ``explored`` generators (0: every node), the ones with a
    generator record shorter than ``probation_checks`` first (as ``dispatch`` orders spot checks)."""
    models, topic = matrix.models, evidence.topic_of(q.prompt)
    keys = rng.random(len(models)) + np.array([records.generator[m][1] < probation_checks for m in models])
    dispatched = [models[int(i)] for i in np.argsort(-keys, kind="stable")[: explored or len(models)]]
    generators = [Candidate(f"c{i}", m, m, matrix.answers[m].get(q.qid, "").strip(), b"", b"") for i, m in enumerate(dispatched)]
    disputed = consensus.voters_disagree([c for c in generators if c.text], {m: records.trust(m) for m in dispatched}, q.prompt)
    for m in dispatched:
        ok = matrix.correct[m].get(q.qid, False)
        _observe(records.generator[m], float(ok), records.generator_topics[m], topic)
        records.passed[m] += ok
    wrong = Counter(matrix.answers[m].get(q.qid, "") for m in models if not matrix.correct[m].get(q.qid, False))
    wrong.pop("", None)
    if not wrong:
        return
    worse = wrong.most_common(1)[0][0]
    for m in models:
        mine = matrix.answers[m].get(q.qid, "")
        if mine not in (q.gold, worse):
            continue  # neither: a tie both ways, an abstention
        value = 1.0 if mine == q.gold else -1.0
        _observe(records.judge[m], value)
        if disputed:  # the weight record (``reputation.spot_check_events``)
            _observe(records.judge_disputed[m], value, records.judge_topics[m], topic)
        records.passed[m] += value > 0


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
    plan = spot_checks.Plan(held_out, spot_checks.Schedule(args.spot_check_rate, args.probation_rate, args.probation_checks))
    checks = 0
    pick, top_weights = chosen_on_calibration(matrix, matrix.models, held_out, TOP_K)
    swarm = top_k = 0.0
    for q in scored:
        swarm += one_round(matrix, q, records, args.k, rng)
        top_k += vote({m: matrix.answers[m].get(q.qid, "") for m in top_weights},
                      {m: matrix.correct[m].get(q.qid, False) for m in top_weights}, top_weights)
        for check in plan.after_round(records.measured(), rng):
            spot_check(matrix, check, records, rng, args.explored, args.probation_checks)
            checks += 1
    n = len(scored)
    return {"benchmark": "offline", "dataset": args.dataset, "seed": args.seed, "questions": n, "held_out": len(held_out),
            "spot_checks": checks, "probation_rate": args.probation_rate, "probation_checks": args.probation_checks,
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
    parser.add_argument("--spot-check-rate", type=float, default=0.1, help="spot checks per round once every record is long")
    parser.add_argument("--probation-rate", type=float, default=spot_checks.PROBATION_RATE,
                        help="spot checks per round while some record is short (0: no probation budget)")
    parser.add_argument("--probation-checks", type=int, default=spot_checks.PROBATION_CHECKS,
                        help="ground-truth observations that end a node's probation budget")
    parser.add_argument("--explored", type=int, default=0, help="generators one spot check measures (0: every node)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)
    print(f"{args.dataset}: offline rounds, seed {args.seed}", file=sys.stderr)
    result = run(args)
    table = "\n".join(f"{key:<26}{value:.4f}" if isinstance(value, float) else f"{key:<26}{value}" for key, value in result.items())
    report(result, table, args.json)
    return 0

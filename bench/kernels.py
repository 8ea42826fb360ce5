"""``swarmrank bench kernels``: our Bradley-Terry kernels vs choix on the same data, in one run.

Data: rounds of 16 candidates judged on the coordinator's sparse schedule (adjacent + cross pairs
around a random cycle, both orders: 48 comparisons), outcomes drawn from a Bradley-Terry model with
random strengths, seeded. Only rounds whose comparison graph is strongly connected are kept, so
the maximum-likelihood estimate exists and both libraries fit exactly the same objective (our
``prior=0``, choix's ``alpha=0``); estimates are compared after centring.

(a) one round at a time: ``fit`` vs choix's fastest pairwise solver (chosen in this run among
    ilsr_pairwise, opt_pairwise and mm_pairwise), each the median of five passes over the rounds;
(b) many rounds: ``fit_batch`` on the CPU (after one warm-up pass, median of five) vs looping that choix solver over
    the same rounds once.
"""

from __future__ import annotations

import argparse
import functools
import json
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np

from swarmrank.kernels.bradley_terry import fit, p_beats, win_matrix


def make_rounds(count: int, n: int, rng: np.random.Generator) -> list[np.ndarray]:
    from scipy.sparse.csgraph import connected_components

    rounds: list[np.ndarray] = []
    while len(rounds) < count:
        theta = rng.normal(scale=0.7, size=n)
        cycle = rng.permutation(n)
        edges = [(cycle[i], cycle[(i + 1) % n]) for i in range(n)] + [(cycle[i], cycle[(i + n // 2) % n]) for i in range((n + 1) // 2)]
        a = np.array([x for x, y in edges] + [y for x, y in edges])
        b = np.array([y for x, y in edges] + [x for x, y in edges])
        won = rng.random(len(a)) < p_beats(theta[a], theta[b])
        c = np.stack([a, b, won.astype(float)], axis=1)
        if connected_components(win_matrix(n, c) > 0, directed=True, connection="strong")[0] == 1:
            rounds.append(c)
    return rounds


def _pairs(c: np.ndarray) -> list[tuple[int, int]]:
    return [(int(x), int(y)) if o == 1 else (int(y), int(x)) for x, y, o in c]


def _choix_solvers(n: int) -> dict[str, Callable[[list[tuple[int, int]]], np.ndarray]]:
    import choix

    return {
        "ilsr_pairwise": lambda d: choix.ilsr_pairwise(n, d, alpha=0.0, max_iter=10_000),
        "opt_pairwise": lambda d: choix.opt_pairwise(n, d, alpha=0.0),
        "mm_pairwise": lambda d: choix.mm_pairwise(n, d, alpha=0.0, max_iter=100_000),
    }


def _solve(solver: Callable[[list[tuple[int, int]]], np.ndarray], pairs: list[list[tuple[int, int]]], k: int) -> np.ndarray:
    return solver(pairs[k])


def _centred(x: np.ndarray) -> np.ndarray:
    return np.asarray(x - x.mean())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmrank bench kernels", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--items", type=int, default=16, help="candidates per round (default 16)")
    parser.add_argument("--single-rounds", type=int, default=200, help="rounds timed one by one in (a) (default 200)")
    parser.add_argument("--batch-rounds", type=int, default=10_000, help="rounds in (b) (default 10000)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)
    import torch

    from swarmrank.kernels.batch import fit_batch

    rng = np.random.default_rng(args.seed)
    n = args.items
    rounds = make_rounds(max(args.single_rounds, args.batch_rounds), n, rng)
    pairs = [_pairs(c) for c in rounds]
    solvers = _choix_solvers(n)

    def per_round(fn: Callable[[int], object], count: int, passes: int = 1) -> float:
        """Seconds per round: median over ``passes`` passes through ``count`` rounds, after a warm-up."""
        fn(0)
        times = []
        for _ in range(passes):
            started = time.perf_counter()
            for k in range(count):
                fn(k)
            times.append((time.perf_counter() - started) / count)
        return statistics.median(times)

    # Pick choix's fastest solver on this data.
    probe = min(50, len(rounds))
    solver_times = {name: per_round(functools.partial(_solve, s, pairs), probe) for name, s in solvers.items()}
    best = min(solver_times, key=solver_times.__getitem__)
    choix_solve = solvers[best]
    print(f"choix solvers, seconds per round: { {k: round(v, 6) for k, v in solver_times.items()} } -> {best}", file=sys.stderr)

    # (a) single round
    count = args.single_rounds
    ours_single = per_round(lambda k: fit(n, rounds[k], prior=0.0), count, passes=5)
    choix_single = per_round(lambda k: choix_solve(pairs[k]), count, passes=5)
    diff_single = max(float(np.abs(fit(n, rounds[k], prior=0.0).strengths - _centred(choix_solve(pairs[k]))).max())
                      for k in range(count))

    # (b) many rounds: fit_batch on the CPU vs looping choix
    batch = np.stack(rounds[: args.batch_rounds])  # the padded (B, M, 3) form fit_batch accepts
    fit_batch(n, batch, prior=0.0, device="cpu")  # warm-up: the first pass pays for memory allocation
    batch_times = []
    for _ in range(5):  # a sub-second measurement: take the median of five
        started = time.perf_counter()
        result = fit_batch(n, batch, prior=0.0, device="cpu")
        batch_times.append(time.perf_counter() - started)
    ours_batch = statistics.median(batch_times)
    started = time.perf_counter()
    reference = [choix_solve(p) for p in pairs[: args.batch_rounds]]
    choix_batch = time.perf_counter() - started
    diff_batch = max(float(np.abs(result.strengths[k] - _centred(r)).max()) for k, r in enumerate(reference))

    out = {
        "benchmark": "kernels",
        "items": n,
        "comparisons_per_round": int(len(rounds[0])),
        "seed": args.seed,
        "choix_solver": best,
        "single_round": {
            "rounds": count,
            "ours_seconds": ours_single,
            "choix_seconds": choix_single,
            "speedup_vs_choix": round(choix_single / ours_single, 2),
            "max_abs_diff": diff_single,
        },
        "batch": {
            "rounds": len(batch),
            "device": "cpu",
            "torch_threads": torch.get_num_threads(),
            "ours_seconds": ours_batch,
            "choix_loop_seconds": choix_batch,
            "speedup_vs_choix": round(choix_batch / ours_batch, 2),
            "max_abs_diff": diff_batch,
            "median_iterations": float(statistics.median(result.iterations.tolist())),
        },
    }
    table = (
        f"{'case':<30}{'ours (s)':>12}{'choix (s)':>12}{'speedup':>10}{'max |diff|':>12}\n"
        f"{'(a) one round, per round':<30}{ours_single:>12.6f}{choix_single:>12.6f}{out['single_round']['speedup_vs_choix']:>10}{diff_single:>12.2e}\n"
        f"{f'(b) {len(batch)} rounds, fit_batch':<30}{ours_batch:>12.3f}{choix_batch:>12.3f}{out['batch']['speedup_vs_choix']:>10}{diff_batch:>12.2e}"
    )
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(out, indent=2))
    else:
        print(table)
    return 0

"""``swarmrank bench scale``: the coordinator's decisions and heartbeat handling with many nodes.

* **Decisions per query** (pure, no network): choosing k generators among N registered nodes
  (``dispatch.choose_from_pool`` on a columnar pool) and the judging plan (schedule, assignment of
  each pair to a judge among all N, anonymising, batching). The pool is built when the swarm
  changes, not per query; its build time is reported apart, and so is the per-query cost when it
  is rebuilt every time (``choose_generators`` on a list), for comparison.
* **Heartbeats**: the registry's handling (in memory, persisted in batches to a real SQLite file)
  plus the Ed25519 check of each heartbeat's signature, as the servicer does: heartbeats/s one
  coordinator core sustains, against the rate N nodes need (N / heartbeat interval).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from swarmrank.coordinator import dispatch, judging_plan
from swarmrank.coordinator.domain import NodeRecord
from swarmrank.coordinator.registry import Registry
from swarmrank.coordinator.store import Store
from swarmrank.coordinator.trust import Trust
from swarmrank.protos import limits, signing
from swarmrank.protos.signing import Identity
from swarmrank.protos.types import ModelInfo

from .overhead import latency_summary
from .progress import report


def make_nodes(n: int, models: int, rng: np.random.Generator) -> list[NodeRecord]:
    reps = rng.uniform(0.1, 1.0, size=n)
    return [NodeRecord(f"{i:032x}", bytes(32), f"10.0.{i // 250}.{i % 250}:50061", (ModelInfo(f"model-{i % models}"),),
                       4, 0.0, 0.0, Trust(float(r), float(r), "established", 0.0, 5)) for i, r in enumerate(reps)]


def decide(pool: dispatch.Pool, judge_ids: list[str], judge_weights: np.ndarray, k: int, rng: np.random.Generator,
           in_flight: dict[str, int]) -> int:
    """One query's decisions; returns the number of planned comparisons."""
    chosen = dispatch.choose_from_pool(pool, k, rng, in_flight=in_flight)
    pairs = judging_plan.schedule(len(chosen), rng)
    planned, _ = judging_plan.assign(pairs, [frozenset({c.node_id}) for c in chosen], judge_ids, rng,
                                     round_tag="t", weights=judge_weights)
    planned = judging_plan.anonymise(planned, rng, round_tag="t")
    judging_plan.batches(planned, limits.MAX_COMPARISONS_PER_JUDGE_CALL)
    return len(planned)


def measure_decisions(n: int, models: int, k: int, queries: int, seed: int) -> dict[str, Any]:
    rng = np.random.default_rng(seed)
    nodes = make_nodes(n, models, rng)
    started = time.perf_counter()
    pool = dispatch.Pool.build(nodes)
    judge_ids = [x.node_id for x in nodes]
    judge_weights = np.array([x.trust.judge for x in nodes]) ** 2
    build = time.perf_counter() - started
    in_flight = {nodes[int(i)].node_id: 4 for i in rng.choice(n, size=min(n, 200), replace=False)}  # some busy
    times, comparisons = [], 0
    for _ in range(queries):
        t = time.perf_counter()
        comparisons += decide(pool, judge_ids, judge_weights, k, rng, in_flight)
        times.append(time.perf_counter() - t)
    rebuild = []
    for _ in range(max(queries // 20, 5)):
        t = time.perf_counter()
        dispatch.choose_generators(nodes, k, rng, in_flight=in_flight)
        rebuild.append(time.perf_counter() - t)
    per_query = latency_summary(times)
    return {"per_query": per_query, "comparisons_per_query": round(comparisons / queries, 2),
            "pool_build_ms": round(build * 1000, 3), "per_query_with_pool_rebuild": latency_summary(rebuild),
            "goal_ms": 1.0, "goal_met": per_query["p50_ms"] <= 1.0}


def measure_heartbeats(n: int, seconds: float, interval: float) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="swarmrank-scale-") as tmp:
        coordinator = Identity.generate()
        store = Store(Path(tmp) / "scale.db", coordinator)
        keys = [Identity.generate() for _ in range(min(n, 200))]  # signing keys, reused across node ids
        nodes = [NodeRecord(f"{i:032x}", keys[i % len(keys)].public_key, "127.0.0.1:1", (ModelInfo("m"),), 1, 0.0, 0.0,
                            Trust(0.5, 0.5, "established", 0.0, 5)) for i in range(n)]
        store.commit([], {}, new_nodes=nodes)
        registry = Registry(store, interval)
        now = time.time()
        beats = [(node.node_id, node.public_key, now, keys[i % len(keys)].sign(signing.heartbeat_bytes(node.node_id, now)))
                 for i, node in enumerate(nodes)]
        done, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            node_id, public_key, ts, signature = beats[done % n]
            if not signing.verify(public_key, signature, signing.heartbeat_bytes(node_id, ts)) or not registry.heartbeat(node_id):
                raise RuntimeError("heartbeat refused")
            done += 1
        elapsed = time.perf_counter() - started
        registry.flush_heartbeats()
        store.close()
    rate = done / elapsed
    needed = n / interval
    return {"heartbeats_per_s": round(rate, 1), "needed_per_s": round(needed, 1), "headroom": round(rate / needed, 2),
            "heartbeat_interval_s": interval}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="swarmrank bench scale", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=10_000)
    p.add_argument("--models", type=int, default=50, help="distinct model names among the nodes (default 50)")
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--queries", type=int, default=2000)
    p.add_argument("--heartbeat-seconds", type=float, default=5.0, help="how long to drive heartbeats (default 5)")
    p.add_argument("--heartbeat-interval", type=float, default=5.0, help="the coordinator's default interval")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    decisions = measure_decisions(args.nodes, args.models, args.k, args.queries, args.seed)
    heartbeats = measure_heartbeats(args.nodes, args.heartbeat_seconds, args.heartbeat_interval)
    result = {"benchmark": "scale", "nodes": args.nodes, "models": args.models, "k": args.k, "queries": args.queries,
              "seed": args.seed, "decisions": decisions, "heartbeats": heartbeats}
    d, h = decisions, heartbeats
    text = "\n".join([
        f"scale: {args.nodes} nodes ({args.models} models), k={args.k}, {args.queries} queries, seed {args.seed}",
        f"dispatch + judging plan per query: p50 {d['per_query']['p50_ms']:.3f} ms  p99 {d['per_query']['p99_ms']:.3f} ms"
        f"  ({d['comparisons_per_query']} comparisons; goal <= 1 ms)",
        f"pool build (when the swarm changes): {d['pool_build_ms']:.1f} ms;"
        f" dispatch with a rebuild per query: p50 {d['per_query_with_pool_rebuild']['p50_ms']:.2f} ms",
        f"heartbeats: {h['heartbeats_per_s']:.0f}/s sustained (verify + registry + batched SQLite);"
        f" {args.nodes} nodes every {h['heartbeat_interval_s']:.0f}s need {h['needed_per_s']:.0f}/s (x{h['headroom']})",
    ])
    report(result, text, args.json)
    return 0

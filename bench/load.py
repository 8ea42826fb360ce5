"""``swarmrank bench load``: many concurrent asks against one coordinator and N instant nodes.

The coordinator and every node are separate processes on 127.0.0.1, so the coordinator's resident
memory and open file descriptors are its own (sampled from /proc while the run goes on). Reports
errors by gRPC status, rounds per second, latency p50/p99, the coordinator's peak RSS and fds, RSS
after each 1,000 rounds (memory must stay flat), and the database's growth per round.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import grpc

from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc

from swarmrank.protos import limits

from .overhead import latency_summary
from .process_swarm import ProcessSwarm, open_fds, peak_rss_bytes, rss_bytes
from .progress import ProgressBar, report

MB = 1024 * 1024


async def _sample(pid: int, stop: asyncio.Event, peaks: dict[str, int]) -> None:
    while not stop.is_set():
        try:
            peaks["rss"] = max(peaks["rss"], rss_bytes(pid))
            peaks["fds"] = max(peaks["fds"], open_fds(pid))
        except OSError:  # the process is gone (chaos): stop sampling
            return
        await asyncio.sleep(0.2)


def _db_size(workdir: Path) -> int:
    return sum(p.stat().st_size for p in workdir.glob("coordinator.db*") if p.is_file())


async def run_load(workdir: Path, *, nodes: int, asks: int, concurrency: int, k: int, seed: int,
                   timeout: float) -> dict[str, Any]:
    coordinator_args = ["--seed", str(seed), "--spot-check-rate", "0", "--k", str(k), "--capacity-wait", str(timeout)]
    async with ProcessSwarm(workdir, nodes, coordinator_args) as swarm:
        assert swarm.coordinator is not None
        pid = swarm.coordinator.pid
        peaks = {"rss": rss_bytes(pid), "fds": open_fds(pid)}
        start_rss, start_fds, start_db = rss_bytes(pid), open_fds(pid), _db_size(workdir)
        stop = asyncio.Event()
        sampler = asyncio.create_task(_sample(pid, stop, peaks))
        errors: Counter[str] = Counter()
        details: dict[str, str] = {}  # first message per status
        latencies: list[float] = []
        rss_per_1000: list[float] = []
        done = 0
        progress = ProgressBar("asks", asks, unit="asks", scale=1)
        gate = asyncio.Semaphore(concurrency)
        # One connection per 100 asks in flight, as many clients would have (HTTP/2 streams per
        # connection are bounded on both sides).
        channels = [grpc.aio.insecure_channel(swarm.address, options=[*limits.GRPC_OPTIONS, ("grpc.use_local_subchannel_pool", 1), ("grpc.http2.bdp_probe", 0)])
                    for _ in range(max(1, concurrency // 100))]
        stubs = [coordinator_pb2_grpc.CoordinatorStub(c) for c in channels]

        async def one(i: int) -> None:
            nonlocal done
            async with gate:
                started = time.perf_counter()
                try:
                    await stubs[i % len(stubs)].Ask(cpb.AskRequest(prompt=f"Load question {i} (seed {seed})?", k=k), timeout=timeout)
                    latencies.append(time.perf_counter() - started)
                except grpc.aio.AioRpcError as exc:
                    errors[exc.code().name] += 1
                    details.setdefault(exc.code().name, f"{(exc.details() or '')[:200]} (first after {time.perf_counter() - started:.1f}s in flight, {time.perf_counter() - t0:.1f}s into the run)")
            done += 1
            progress(done)
            if done % 1000 == 0:
                rss_per_1000.append(round(rss_bytes(pid) / MB, 2))

        started = t0 = time.perf_counter()
        await asyncio.gather(*(one(i) for i in range(asks)))
        elapsed = time.perf_counter() - started
        stop.set()
        await sampler
        for channel in channels:
            await channel.close()
        end_rss, end_fds, end_db = rss_bytes(pid), open_fds(pid), _db_size(workdir)
        hwm = peak_rss_bytes(pid)
    answered = len(latencies)
    growth = (rss_per_1000[-1] - rss_per_1000[0]) / (len(rss_per_1000) - 1) if len(rss_per_1000) > 1 else None
    return {
        "answered": answered, "errors": dict(errors), "error_count": sum(errors.values()), "error_details": details,
        "seconds": round(elapsed, 2), "rounds_per_s": round(answered / elapsed, 2),
        "latency": latency_summary(latencies),
        "coordinator": {
            "rss_start_mb": round(start_rss / MB, 2), "rss_end_mb": round(end_rss / MB, 2),
            "rss_peak_mb": round(max(hwm, peaks["rss"]) / MB, 2), "rss_mb_after_each_1000": rss_per_1000,
            "rss_growth_mb_per_1000_rounds": round(growth, 3) if growth is not None else None,
            "fds_start": start_fds, "fds_peak": peaks["fds"], "fds_end": end_fds,
        },
        "db_bytes_per_round": round((end_db - start_db) / max(answered, 1), 1),
    }


def table(r: dict[str, Any]) -> str:
    c = r["coordinator"]
    return "\n".join([
        f"load: {r['asks']} asks, {r['concurrency']} concurrent, {r['nodes']} instant nodes, k={r['k']}, seed {r['seed']}",
        f"answered {r['answered']}  errors {r['error_count']} {r['errors'] or ''}",
        f"rounds/s {r['rounds_per_s']}  latency p50 {r['latency']['p50_ms']:.1f} ms  p99 {r['latency']['p99_ms']:.1f} ms",
        f"coordinator RSS start {c['rss_start_mb']} MB  peak {c['rss_peak_mb']} MB  end {c['rss_end_mb']} MB  "
        f"growth per 1,000 rounds {c['rss_growth_mb_per_1000_rounds']} MB",
        f"coordinator fds start {c['fds_start']}  peak {c['fds_peak']}  end {c['fds_end']}",
        f"database growth per round {r['db_bytes_per_round']} bytes",
    ])


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="swarmrank bench load", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--asks", type=int, default=1000)
    p.add_argument("--concurrency", type=int, default=1000, help="asks in flight at once (default 1000)")
    p.add_argument("--nodes", type=int, default=7)
    p.add_argument("--k", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--timeout", type=float, default=600.0, help="seconds each ask may take (default 600)")
    p.add_argument("--workdir", type=Path, default=None)
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="swarmrank-load-") as tmp:
        r = asyncio.run(run_load(args.workdir or Path(tmp), nodes=args.nodes, asks=args.asks,
                                 concurrency=args.concurrency, k=args.k, seed=args.seed, timeout=args.timeout))
    result = {"benchmark": "load", "asks": args.asks, "concurrency": args.concurrency, "nodes": args.nodes,
              "k": args.k, "seed": args.seed, **r, "goal_zero_errors": r["error_count"] == 0}
    report(result, table(result), args.json)
    return 0 if r["error_count"] == 0 else 1

"""``swarmrank bench overhead``: what the coordinator itself costs per round.

A coordinator and N instant nodes run as separate processes on 127.0.0.1 (real daemons, real
gRPC). Two paths alternate, one request at a time, so drift in machine load hits both alike:

* **round**: a full consensus round through the coordinator's Ask (dispatch, k Generate calls,
  signature checks, judging plan, batched Judge calls, Bradley-Terry, ledger and round store);
* **bare fan-out**: the same k Generate calls and the same Judge batches, made directly by this
  process with nothing else around them.

``overhead_ratio`` = round p50 ÷ bare fan-out p50 (1.0 = the coordinator costs nothing).

Each compared path is a ``Transport``: how the daemons are started (extra flags), how this process
dials a node for the bare fan-out, and how it runs one round. More paths (mTLS, the HTTP API) are
more ``Transport`` values measured in the same run.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from swarmrank.coordinator import judging_plan
from swarmrank.protos import limits
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc
from swarmrank.protos.v1 import node_pb2 as npb
from swarmrank.protos.v1 import node_pb2_grpc

from .process_swarm import ProcessSwarm
from .progress import report

RoundCall = Callable[[str], Awaitable[None]]  # runs one full round for a prompt
CallTimeout = 60.0


def plaintext_channel(address: str) -> grpc.aio.Channel:
    return grpc.aio.insecure_channel(address, options=limits.GRPC_OPTIONS)


async def grpc_ask(swarm: ProcessSwarm, k: int) -> tuple[RoundCall, Callable[[], Awaitable[None]]]:
    """The gRPC Ask path: a round call and a closer."""
    channel = plaintext_channel(swarm.address)
    stub = coordinator_pb2_grpc.CoordinatorStub(channel)

    async def ask(prompt: str) -> None:
        reply = await stub.Ask(cpb.AskRequest(prompt=prompt, k=k), timeout=CallTimeout)
        if len(reply.candidates) < 2:
            raise RuntimeError(f"round {reply.round_id} had {len(reply.candidates)} candidate(s)")

    return ask, channel.close


@dataclass(frozen=True)
class Transport:
    """One way of reaching the swarm, measured as a pair of paths (round, bare fan-out)."""

    name: str
    coordinator_args: Callable[[Path], Sequence[str]] = lambda workdir: ()
    node_args: Callable[[Path], Sequence[str]] = lambda workdir: ()
    node_channel: Callable[[Path, str], grpc.aio.Channel] = lambda workdir, address: plaintext_channel(address)
    round_call: Callable[[ProcessSwarm, int], Awaitable[tuple[RoundCall, Callable[[], Awaitable[None]]]]] = grpc_ask
    client_options: Callable[[Path], dict[str, Any]] = lambda workdir: {}  # how the harness's SDK client connects


PLAINTEXT = Transport("grpc")


class BareFanOut:
    """The round's node calls with nothing around them: k Generate streams at once, then the Judge
    batches the coordinator's plan would send (each unordered pair, both orders, to one judge that
    wrote neither answer), all at once."""

    def __init__(self, channels: Sequence[grpc.aio.Channel], k: int, rng: np.random.Generator) -> None:
        self._stubs = [node_pb2_grpc.NodeStub(c) for c in channels]
        self._k = k
        self._rng = rng

    async def _generate(self, i: int, round_id: str, nonce: bytes, prompt: str) -> str:
        async for event in self._stubs[i].Generate(npb.GenerateRequest(round_id=round_id, nonce=nonce, prompt=prompt),
                                                   timeout=CallTimeout):
            if event.HasField("candidate"):
                return str(event.candidate.text)
        raise RuntimeError("stream ended without a candidate")

    async def run(self, prompt: str) -> None:
        n = len(self._stubs)
        generators = [int(i) for i in self._rng.choice(n, size=self._k, replace=False)]
        round_id = uuid.uuid4().hex
        nonces = [os.urandom(16) for _ in generators]
        texts = await asyncio.gather(*(self._generate(g, round_id, nonce, prompt) for g, nonce in zip(generators, nonces)))
        pairs = [(a, b) for a, b in judging_plan.schedule(len(texts), self._rng) if texts[a] != texts[b]]
        planned, _ = judging_plan.assign(pairs, [frozenset({str(g)}) for g in generators], [str(j) for j in range(n)],
                                         self._rng, round_tag=round_id[:8])
        calls = judging_plan.batches(planned, limits.MAX_COMPARISONS_PER_JUDGE_CALL)
        judge_nonce = os.urandom(16)

        async def judge(j: str, batch: list[judging_plan.PlannedComparison]) -> None:
            reply = await self._stubs[int(j)].Judge(npb.JudgeRequest(
                round_id=round_id, nonce=judge_nonce, question=prompt,
                comparisons=[npb.Comparison(comparison_id=p.comparison_id, answer_a=texts[p.answer_a],
                                            answer_b=texts[p.answer_b], nonce_a=nonces[p.answer_a],
                                            nonce_b=nonces[p.answer_b]) for p in batch]), timeout=CallTimeout)
            if len(reply.verdicts) != len(batch):
                raise RuntimeError("a judge skipped comparisons")

        await asyncio.gather(*(judge(j, b) for j, group in calls.items() for b in group))


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def latency_summary(seconds: Sequence[float]) -> dict[str, float]:
    ms = [s * 1000 for s in seconds]
    return {"p50_ms": round(percentile(ms, 50), 3), "p99_ms": round(percentile(ms, 99), 3),
            "mean_ms": round(statistics.fmean(ms), 3) if ms else float("nan")}


async def measure(transport: Transport, workdir: Path, *, nodes: int, k: int, rounds: int, warmup: int,
                  seed: int) -> dict[str, Any]:
    """Run both paths of one transport against a fresh swarm; alternate them round by round."""
    workdir.mkdir(parents=True, exist_ok=True)
    coordinator_args = ["--seed", str(seed), "--spot-check-rate", "0", "--k", str(k),
                        *transport.coordinator_args(workdir)]
    async with ProcessSwarm(workdir, nodes, coordinator_args, transport.node_args(workdir),
                            client_options=transport.client_options(workdir)) as swarm:
        channels = [transport.node_channel(workdir, a) for a in swarm.node_addresses]
        bare = BareFanOut(channels, k, np.random.default_rng(seed))
        ask, close = await transport.round_call(swarm, k)
        times: dict[str, list[float]] = {"round": [], "bare": []}
        try:
            for i in range(warmup + rounds):
                prompt = f"Question {i} (seed {seed}): what should a load benchmark measure?"
                for path, call in (("round", ask), ("bare", bare.run)) if i % 2 == 0 else (("bare", bare.run), ("round", ask)):
                    started = time.perf_counter()
                    await call(prompt)
                    if i >= warmup:
                        times[path].append(time.perf_counter() - started)
        finally:
            await close()
            for c in channels:
                await c.close()
    round_s, bare_s = latency_summary(times["round"]), latency_summary(times["bare"])
    return {"round": round_s, "bare_fanout": bare_s,
            "overhead_ms_p50": round(round_s["p50_ms"] - bare_s["p50_ms"], 3),
            "overhead_ratio": round(round_s["p50_ms"] / bare_s["p50_ms"], 4)}


def table(result: dict[str, Any]) -> str:
    lines = [f"overhead: {result['nodes']} instant nodes, k={result['k']}, {result['rounds']} rounds per path, seed {result['seed']}",
             f"{'path':<10}{'round p50':>11}{'p99':>9}{'bare p50':>10}{'p99':>9}{'ratio':>8}"]
    for name, r in result["paths"].items():
        lines.append(f"{name:<10}{r['round']['p50_ms']:>9.2f}ms{r['round']['p99_ms']:>7.2f}ms"
                     f"{r['bare_fanout']['p50_ms']:>8.2f}ms{r['bare_fanout']['p99_ms']:>7.2f}ms{r['overhead_ratio']:>8.3f}")
    lines.append(f"overhead_ratio (round p50 / bare fan-out p50): {result['overhead_ratio']} (goal <= 1.5)")
    return "\n".join(lines)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="swarmrank bench overhead", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nodes", type=int, default=7, help="instant nodes (default 7)")
    p.add_argument("--k", type=int, default=5, help="generators per round (default 5)")
    p.add_argument("--rounds", type=int, default=200, help="measured rounds per path (default 200)")
    p.add_argument("--warmup", type=int, default=20, help="unmeasured rounds first (default 20)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workdir", type=Path, default=None, help="keep databases and logs here (default: a temp dir)")
    p.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    p.add_argument("--tls", action="store_true", help="also measure a private swarm (mTLS to nodes, TLS + API key to the "
                   "coordinator) in the same run and report its round latency against plaintext")
    p.add_argument("--http", action="store_true", help="also measure the HTTP API's added latency over gRPC Ask "
                   "(clients: aiohttp, which decides the goal, httpx and the openai package)")
    return p


def run(args: argparse.Namespace, transports: Sequence[Transport]) -> dict[str, Any]:
    """Measure every transport (each against its own fresh swarm) and build the report."""
    if args.nodes < 3 or not 2 <= args.k <= args.nodes:
        raise ValueError("need --nodes >= 3 and 2 <= --k <= --nodes")
    paths: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="swarmrank-overhead-") as tmp:
        root = args.workdir or Path(tmp)
        for t in transports:
            paths[t.name] = asyncio.run(measure(t, root / t.name, nodes=args.nodes, k=args.k, rounds=args.rounds,
                                                warmup=args.warmup, seed=args.seed))
    first = next(iter(paths.values()))
    return {"benchmark": "overhead", "nodes": args.nodes, "k": args.k, "rounds": args.rounds, "seed": args.seed,
            "paths": paths, "overhead_ratio": first["overhead_ratio"], "goal_ratio": 1.5,
            "goal_met": first["overhead_ratio"] <= 1.5}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    result = run(args, [PLAINTEXT])
    text = table(result)
    report(result, text, args.json)
    return 0

"""``swarmrank bench overhead --http``: what the OpenAI-compatible HTTP API adds to a round.

One swarm of instant-node processes, its coordinator serving both gRPC and HTTP; each measured
round alternates (order flipped every round, so drift in machine load hits both alike) between
gRPC ``Ask`` and ``POST /v1/chat/completions`` (non-streamed, same k). The difference of the p50s
is the HTTP layer's cost: JSON parsing and checks, the JSON answer, uvicorn, and HTTP/1.1 over a
kept-alive connection instead of HTTP/2. Goal: at most 2 ms at p50.
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc

from .overhead import CallTimeout, latency_summary, plaintext_channel
from .process_swarm import ProcessSwarm

GOAL_MS = 2.0


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def measure_http(workdir: Path, *, nodes: int, k: int, rounds: int, warmup: int, seed: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    args = ["--seed", str(seed), "--spot-check-rate", "0", "--k", str(k), "--http-listen", f"127.0.0.1:{port}"]
    async with ProcessSwarm(workdir, nodes, args) as swarm:
        channel = plaintext_channel(swarm.address)
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)
        times: dict[str, list[float]] = {"grpc": [], "http": []}
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=CallTimeout) as http:

            async def grpc_round(prompt: str) -> None:
                reply = await stub.Ask(cpb.AskRequest(prompt=prompt, k=k), timeout=CallTimeout)
                if len(reply.candidates) < 2:
                    raise RuntimeError(f"round {reply.round_id} had {len(reply.candidates)} candidate(s)")

            async def http_round(prompt: str) -> None:
                r = await http.post("/v1/chat/completions", json={
                    "model": "swarm", "messages": [{"role": "user", "content": prompt}], "swarm": {"k": k}})
                r.raise_for_status()
                if len(r.json()["swarm"]["ranking"]) < 2:
                    raise RuntimeError("an HTTP round had fewer than 2 candidates")

            try:
                for i in range(warmup + rounds):
                    prompt = f"Question {i} (seed {seed}): what does the HTTP layer cost?"
                    order = (("grpc", grpc_round), ("http", http_round))
                    for path, call in order if i % 2 == 0 else order[::-1]:
                        started = time.perf_counter()
                        await call(prompt)
                        if i >= warmup:
                            times[path].append(time.perf_counter() - started)
            finally:
                await channel.close()
    g, h = latency_summary(times["grpc"]), latency_summary(times["http"])
    added = round(h["p50_ms"] - g["p50_ms"], 3)
    return {"grpc_ask": g, "http_chat_completions": h, "http_added_ms_p50": added, "goal_ms": GOAL_MS,
            "goal_met": added <= GOAL_MS}


def table(r: dict[str, Any]) -> str:
    g, h = r["grpc_ask"], r["http_chat_completions"]
    return (f"HTTP API vs gRPC Ask (same swarm, alternating): gRPC p50 {g['p50_ms']:.2f}ms p99 {g['p99_ms']:.2f}ms, "
            f"HTTP p50 {h['p50_ms']:.2f}ms p99 {h['p99_ms']:.2f}ms, added {r['http_added_ms_p50']:+.2f}ms at p50 "
            f"(goal <= {r['goal_ms']:.0f} ms: {'met' if r['goal_met'] else 'NOT met'})")


def measure_into(result: dict[str, Any], args: argparse.Namespace) -> str:
    """Measure with ``overhead``'s options, store it as ``result["http"]``, return the table line."""
    with tempfile.TemporaryDirectory(prefix="swarmrank-overhead-http-") as tmp:
        result["http"] = asyncio.run(measure_http((args.workdir or Path(tmp)) / "http", nodes=args.nodes, k=args.k,
                                                  rounds=args.rounds, warmup=args.warmup, seed=args.seed))
    return table(result["http"])

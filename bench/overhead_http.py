"""``swarmrank bench overhead --http``: what the OpenAI-compatible HTTP API adds to a round.

One swarm of instant-node processes, its coordinator serving both gRPC and HTTP. Each measured
round runs the same question once per path, in an order rotated every round (so drift in machine
load hits all paths alike): gRPC ``Ask``, and ``POST /v1/chat/completions`` (non-streamed, same k)
from three HTTP clients on kept-alive connections:

* **aiohttp**: a lean client (C-accelerated HTTP parser, little per-request Python). It decides the
  goal: the gRPC path's client is grpcio's C core, so a lean HTTP client compares the two APIs
  rather than two client libraries.
* **httpx** and the **openai** package (built on httpx, parses the answer into pydantic models):
  what most users run, reported so the numbers tell the whole story.

The difference of the p50s (path minus gRPC) is the HTTP side's cost: uvicorn, JSON parsing and
checks, the JSON answer, HTTP/1.1 instead of HTTP/2, and the client. Goal: at most 2 ms at p50
with the lean client.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc

from .overhead import CallTimeout, latency_summary, plaintext_channel
from .process_swarm import ProcessSwarm

GOAL_MS = 2.0
GOAL_CLIENT = "aiohttp"
RoundCall = Callable[[str], Awaitable[None]]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, all threads) a process has used so far; None without Linux's /proc."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _check_ranking(ranking: list[Any]) -> None:
    if len(ranking) < 2:
        raise RuntimeError("an HTTP round had fewer than 2 candidates")


async def _http_clients(stack: AsyncExitStack, base: str, k: int) -> dict[str, RoundCall]:
    """One round call per HTTP client, each on its own kept-alive connection (openai: when installed)."""
    import aiohttp
    import httpx

    url = base + "/v1/chat/completions"

    def body(prompt: str) -> dict[str, Any]:
        return {"model": "swarm", "messages": [{"role": "user", "content": prompt}], "swarm": {"k": k}}

    session = await stack.enter_async_context(aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=CallTimeout)))
    hx = await stack.enter_async_context(httpx.AsyncClient(timeout=CallTimeout))

    async def with_aiohttp(prompt: str) -> None:
        async with session.post(url, json=body(prompt)) as r:
            r.raise_for_status()
            _check_ranking((await r.json())["swarm"]["ranking"])

    async def with_httpx(prompt: str) -> None:
        r = await hx.post(url, json=body(prompt))
        r.raise_for_status()
        _check_ranking(r.json()["swarm"]["ranking"])

    calls: dict[str, RoundCall] = {"aiohttp": with_aiohttp, "httpx": with_httpx}
    try:
        from openai import AsyncOpenAI
    except ImportError:  # the dev extra installs it; without it the bench reports the other clients
        return calls
    client = await stack.enter_async_context(AsyncOpenAI(base_url=base + "/v1", api_key="unused-on-loopback",
                                                         max_retries=0, timeout=CallTimeout))

    async def with_openai(prompt: str) -> None:
        reply = await client.chat.completions.create(model="swarm", messages=[{"role": "user", "content": prompt}],
                                                     extra_body={"swarm": {"k": k}})
        _check_ranking((reply.model_extra or {})["swarm"]["ranking"])

    calls["openai"] = with_openai
    return calls


async def measure_http(workdir: Path, *, nodes: int, k: int, rounds: int, warmup: int, seed: int) -> dict[str, Any]:
    workdir.mkdir(parents=True, exist_ok=True)
    port = _free_port()
    args = ["--seed", str(seed), "--spot-check-rate", "0", "--k", str(k), "--http-listen", f"127.0.0.1:{port}"]
    async with ProcessSwarm(workdir, nodes, args) as swarm, AsyncExitStack() as stack:
        channel = plaintext_channel(swarm.address)
        stack.push_async_callback(channel.close)
        stub = coordinator_pb2_grpc.CoordinatorStub(channel)

        async def grpc_round(prompt: str) -> None:
            reply = await stub.Ask(cpb.AskRequest(prompt=prompt, k=k), timeout=CallTimeout)
            if len(reply.candidates) < 2:
                raise RuntimeError(f"round {reply.round_id} had {len(reply.candidates)} candidate(s)")

        paths = [("grpc", grpc_round), *(await _http_clients(stack, f"http://127.0.0.1:{port}", k)).items()]
        times: dict[str, list[float]] = {name: [] for name, _ in paths}
        # The coordinator's own CPU per round, by path: unlike latency, barely moved by other load
        # on the machine (clock-tick resolution, so only the sum over all rounds means something).
        assert swarm.coordinator is not None
        pid = swarm.coordinator.pid
        cpu: dict[str, float | None] = {name: 0.0 for name, _ in paths}
        for i in range(warmup + rounds):
            prompt = f"Question {i} (seed {seed}): what does the HTTP layer cost?"
            shift = i % len(paths)
            for name, call in paths[shift:] + paths[:shift]:
                cpu_before = _cpu_seconds(pid)
                started = time.perf_counter()
                await call(prompt)
                elapsed = time.perf_counter() - started
                cpu_after = _cpu_seconds(pid)
                if i >= warmup:
                    times[name].append(elapsed)
                    used = cpu[name]
                    cpu[name] = None if used is None or cpu_before is None or cpu_after is None else \
                        used + cpu_after - cpu_before

    def cpu_ms(name: str) -> float | None:
        used = cpu[name]
        return None if used is None else round(used / len(times[name]) * 1000, 3)

    grpc_p50 = latency_summary(times["grpc"])["p50_ms"]
    g: dict[str, Any] = {**latency_summary(times["grpc"]), "coordinator_cpu_ms_per_round": cpu_ms("grpc")}
    clients: dict[str, dict[str, Any]] = {
        name: {**latency_summary(t), "added_ms_p50": round(latency_summary(t)["p50_ms"] - grpc_p50, 3),
               "coordinator_cpu_ms_per_round": cpu_ms(name)} for name, t in times.items() if name != "grpc"}
    lean = clients[GOAL_CLIENT]
    return {"grpc_ask": g, "http_chat_completions": {k_: v for k_, v in lean.items() if k_ != "added_ms_p50"},
            "http_added_ms_p50": lean["added_ms_p50"], "goal_client": GOAL_CLIENT, "clients": clients,
            "goal_ms": GOAL_MS, "goal_met": lean["added_ms_p50"] <= GOAL_MS}


def _cpu(c: dict[str, Any]) -> str:
    value = c.get("coordinator_cpu_ms_per_round")
    return f"{value:>11.2f}ms" if value is not None else f"{'-':>13}"


def table(r: dict[str, Any]) -> str:
    g = r["grpc_ask"]
    lines = ["HTTP API vs gRPC Ask (same swarm and questions, order rotated every round)",
             f"{'path':<14}{'p50':>9}{'p99':>10}{'added p50':>12}{'coord. CPU/round':>18}",
             f"{'grpc Ask':<14}{g['p50_ms']:>7.2f}ms{g['p99_ms']:>8.2f}ms{'':>12}{_cpu(g):>18}"]
    for name, c in r["clients"].items():
        lines.append(f"{'HTTP ' + name:<14}{c['p50_ms']:>7.2f}ms{c['p99_ms']:>8.2f}ms{c['added_ms_p50']:>+10.2f}ms"
                     f"{_cpu(c):>18}" + ("  (decides the goal)" if name == r["goal_client"] else ""))
    lines.append(f"HTTP added at p50 ({r['goal_client']}): {r['http_added_ms_p50']:+.2f} ms "
                 f"(goal <= {r['goal_ms']:.0f} ms: {'met' if r['goal_met'] else 'NOT met'})")
    return "\n".join(lines)


def measure_into(result: dict[str, Any], args: argparse.Namespace) -> str:
    """Measure with ``overhead``'s options, store it as ``result["http"]``, return the table."""
    with tempfile.TemporaryDirectory(prefix="swarmrank-overhead-http-") as tmp:
        result["http"] = asyncio.run(measure_http((args.workdir or Path(tmp)) / "http", nodes=args.nodes, k=args.k,
                                                  rounds=args.rounds, warmup=args.warmup, seed=args.seed))
    return table(result["http"])

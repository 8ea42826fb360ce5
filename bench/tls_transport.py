"""The mTLS path of ``swarmrank bench overhead --tls``: a throwaway private swarm (CA, coordinator
certificate, a join token for the nodes, the admin API key for the rounds), so the round and the
bare fan-out pay exactly what a private swarm pays: TLS to the coordinator, mTLS to every node."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import grpc
import numpy as np

from swarmrank.coordinator.access import AccessControl
from swarmrank.protos import limits
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import coordinator_pb2_grpc
from swarmrank.rpc import pki, swarm_dir, tls

from . import overhead, overhead_http
from .overhead import PLAINTEXT, BareFanOut, CallTimeout, RoundCall, Transport, latency_summary
from .progress import report
from .process_swarm import ProcessSwarm


def _swarm(workdir: Path) -> Path:
    return workdir / "swarm"


def coordinator_args(workdir: Path) -> Sequence[str]:
    """Create the swarm and a join token for every node before the coordinator starts (the token goes
    straight into the coordinator's database, as `swarmrank swarm invite` would put it)."""
    info, _ = swarm_dir.init(_swarm(workdir), [])
    access = AccessControl(workdir / "coordinator.db", swarm_dir.load_coordinator(info.directory), node_cert_lifetime=86400.0)
    try:
        token, _ = access.create_token(3600.0, 10_000)
    finally:
        access.close()
    pki.write_private(workdir / "join.token", str(token).encode())
    return ["--swarm", str(info.directory)]


def node_args(workdir: Path) -> Sequence[str]:
    return ["--join", pki.read_private(workdir / "join.token").decode()]


def client_options(workdir: Path) -> dict[str, Any]:
    info = swarm_dir.load_info(_swarm(workdir))
    return {"ca": info.ca_path, "api_key": info.admin_key()}


def node_channel(workdir: Path, address: str) -> grpc.aio.Channel:
    """The bare fan-out dials nodes as the coordinator does: mTLS with the coordinator's certificate."""
    creds = swarm_dir.load_coordinator(_swarm(workdir))
    return grpc.aio.secure_channel(address, tls.channel_credentials(creds.ca_pem, creds.key_pem, creds.chain_pem),
                                   options=[*limits.GRPC_OPTIONS, *tls.name_override(pki.NODE_NAME)])


async def round_call(swarm: ProcessSwarm, k: int) -> tuple[RoundCall, Callable[[], Awaitable[None]]]:
    options = client_options(swarm.workdir)
    channel = grpc.aio.secure_channel(swarm.address, tls.channel_credentials(Path(options["ca"]).read_bytes()),
                                      options=limits.GRPC_OPTIONS)
    stub = coordinator_pb2_grpc.CoordinatorStub(channel)
    metadata = (("authorization", f"Bearer {options['api_key']}"),)

    async def ask(prompt: str) -> None:
        reply = await stub.Ask(cpb.AskRequest(prompt=prompt, k=k), metadata=metadata, timeout=CallTimeout)
        if len(reply.candidates) < 2:
            raise RuntimeError(f"round {reply.round_id} had {len(reply.candidates)} candidate(s)")

    return ask, channel.close


MTLS = Transport("mtls", coordinator_args=coordinator_args, node_args=node_args, node_channel=node_channel,
                 round_call=round_call, client_options=client_options)


TLS_GOAL = 1.10  # a private swarm may cost at most 10% more round latency than plaintext


def tls_cost(result: dict[str, Any]) -> tuple[dict[str, Any], str]:
    """Round latency over mTLS against plaintext, from an overhead report holding both paths."""
    plain, mtls = result["paths"]["grpc"], result["paths"][MTLS.name]
    ratio = round(mtls["round"]["p50_ms"] / plain["round"]["p50_ms"], 4)
    bare = round(mtls["bare_fanout"]["p50_ms"] / plain["bare_fanout"]["p50_ms"], 4)
    summary = {"tls_round_ratio": ratio, "tls_bare_fanout_ratio": bare, "tls_goal_ratio": TLS_GOAL, "tls_goal_met": ratio <= TLS_GOAL}
    line = (f"mTLS vs plaintext, round p50: {mtls['round']['p50_ms']:.2f}ms vs {plain['round']['p50_ms']:.2f}ms = {ratio} "
            f"(goal <= {TLS_GOAL}); bare fan-out {bare}")
    return summary, line


async def measure_interleaved(transports: Sequence[Transport], workdir: Path, *, nodes: int, k: int, rounds: int,
                              warmup: int, seed: int, durability: str | None = None) -> dict[str, dict[str, Any]]:
    """Like ``overhead.measure``, but every transport's swarm runs at once and the rounds alternate
    between them (and between round and bare fan-out), so load drift on a shared machine hits every
    path alike: the mTLS / plaintext ratio is a same-moment comparison."""
    async with contextlib.AsyncExitStack() as stack:
        runs = []
        for t in transports:
            w = workdir / t.name
            w.mkdir(parents=True, exist_ok=True)
            args = ["--seed", str(seed), "--spot-check-rate", "0", "--k", str(k),
                    *(("--durability", durability) if durability else ()), *t.coordinator_args(w)]
            swarm = await stack.enter_async_context(ProcessSwarm(w, nodes, args, t.node_args(w), client_options=t.client_options(w)))
            channels = [t.node_channel(w, a) for a in swarm.node_addresses]
            for c in channels:
                stack.push_async_callback(c.close)
            ask, close = await t.round_call(swarm, k)
            stack.push_async_callback(close)
            runs.append((t.name, ask, BareFanOut(channels, k, np.random.default_rng(seed)).run))
        times: dict[str, dict[str, list[float]]] = {name: {"round": [], "bare": []} for name, _, _ in runs}
        for i in range(warmup + rounds):
            prompt = f"Question {i} (seed {seed}): what should a load benchmark measure?"
            calls = [(name, path, call) for name, ask, bare in runs for path, call in (("round", ask), ("bare", bare))]
            shift = i % len(calls)
            for name, path, call in calls[shift:] + calls[:shift]:  # rotate who goes first
                started = time.perf_counter()
                await call(prompt)
                if i >= warmup:
                    times[name][path].append(time.perf_counter() - started)
    out: dict[str, dict[str, Any]] = {}
    for name, samples in times.items():
        r, b = latency_summary(samples["round"]), latency_summary(samples["bare"])
        out[name] = {"round": r, "bare_fanout": b, "overhead_ms_p50": round(r["p50_ms"] - b["p50_ms"], 3),
                     "overhead_ratio": round(r["p50_ms"] / b["p50_ms"], 4)}
    return out


def run_with_tls(args: Any) -> dict[str, Any]:
    """``bench overhead --tls``: plaintext and mTLS swarms side by side, rounds interleaved."""
    import tempfile

    if args.nodes < 3 or not 2 <= args.k <= args.nodes:
        raise ValueError("need --nodes >= 3 and 2 <= --k <= --nodes")
    with tempfile.TemporaryDirectory(prefix="swarmrank-overhead-") as tmp:
        paths = asyncio.run(measure_interleaved([PLAINTEXT, MTLS], args.workdir or Path(tmp), nodes=args.nodes, k=args.k,
                                                rounds=args.rounds, warmup=args.warmup, seed=args.seed,
                                                durability=args.durability))
    first = paths[PLAINTEXT.name]
    return {"benchmark": "overhead", "nodes": args.nodes, "k": args.k, "rounds": args.rounds, "seed": args.seed,
            "paths": paths, "overhead_ratio": first["overhead_ratio"], "goal_ratio": 1.5,
            "goal_met": first["overhead_ratio"] <= 1.5, "interleaved": True}


def main(argv: list[str] | None = None) -> int:
    """``swarmrank bench overhead [--tls] [--http]``: without either, exactly ``overhead.main``."""
    args = overhead.parser().parse_args(argv)
    if not args.tls and not args.http:
        return overhead.main(argv)
    if args.tls:
        result = run_with_tls(args)
        summary, line = tls_cost(result)
        result.update(summary)
        text = overhead.table(result) + "\n" + line
    else:
        result = overhead.run(args, [PLAINTEXT])
        text = overhead.table(result)
    if args.http:  # the HTTP API against gRPC Ask, on a swarm of its own in the same run
        text += "\n" + overhead_http.measure_into(result, args)
    report(result, text, args.json)
    return 0

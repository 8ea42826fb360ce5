"""``swarmrank bench node``: tokens/s of a model called in-process vs through a gRPC node.

Both paths use the same loaded model, prompt, token budget and greedy decoding, and the runs
alternate (in-process, node, in-process, ...) so that drift in machine load hits both alike. The
node path is the real one: a node daemon on 127.0.0.1 and a client streaming every token over gRPC.
``ratio`` = node tokens/s ÷ in-process tokens/s (1.0 = the node costs nothing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import grpc

from swarmrank.protos import limits
from swarmrank.protos.v1 import node_pb2 as pb
from swarmrank.protos.v1 import node_pb2_grpc

from swarmrank.node import catalogue
from swarmrank.node.backends.base import Completion, GenerationParams
from swarmrank.node.backends.llama import LlamaCppBackend
from swarmrank.node.daemon import serve
from swarmrank.node.settings import NodeSettings

PROMPT = "Count from 1 to 300, separated by commas."


def _in_process(backend: LlamaCppBackend, tokens: int) -> tuple[int, float]:
    started = time.perf_counter()
    *_, done = backend.stream(GenerationParams(PROMPT, max_tokens=tokens), lambda: False)
    assert isinstance(done, Completion)
    return done.completion_tokens, time.perf_counter() - started


def _through_node(stub: node_pb2_grpc.NodeStub, tokens: int) -> tuple[int, float]:
    started = time.perf_counter()
    request = pb.GenerateRequest(round_id="bench", nonce=os.urandom(16), prompt=PROMPT, max_tokens=tokens)
    *_, last = stub.Generate(request, timeout=600)
    return last.candidate.completion_tokens, time.perf_counter() - started


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="swarmrank bench node", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="smollm2-135m", choices=sorted(catalogue.CATALOGUE))
    parser.add_argument("--tokens", type=int, default=128, help="tokens generated per request (default 128)")
    parser.add_argument("--repeats", type=int, default=5, help="requests per path (default 5)")
    parser.add_argument("--n-threads", type=int, default=0, help="llama.cpp threads (0: all cores)")
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout (table on stderr)")
    args = parser.parse_args(argv)

    backend = LlamaCppBackend(catalogue.prepare(args.model), catalogue.lookup(args.model), n_threads=args.n_threads or None)
    loop = asyncio.new_event_loop()
    threading.Thread(target=loop.run_forever, daemon=True).start()
    ready = threading.Event()
    address: list[str] = []
    stop = asyncio.Event()
    with tempfile.TemporaryDirectory() as tmp:
        settings = NodeSettings(listen="127.0.0.1:0", key_path=Path(tmp) / "bench.key", model=args.model,
                                max_tokens_limit=max(args.tokens, 16))

        def on_ready(_: str, addr: str) -> None:
            address.append(addr)
            ready.set()

        server = asyncio.run_coroutine_threadsafe(serve(settings, backend=backend, on_ready=on_ready, stop=stop), loop)
        ready.wait(60)
        runs: dict[str, list[tuple[int, float]]] = {"in_process": [], "node": []}
        with grpc.insecure_channel(address[0], options=limits.GRPC_OPTIONS) as channel:
            stub = node_pb2_grpc.NodeStub(channel)
            _in_process(backend, 8), _through_node(stub, 8)  # warm-up: first-call allocations
            for i in range(args.repeats):
                runs["in_process"].append(_in_process(backend, args.tokens))
                runs["node"].append(_through_node(stub, args.tokens))
                print(f"run {i + 1}/{args.repeats}: in-process {runs['in_process'][-1][0] / runs['in_process'][-1][1]:.1f} tok/s, "
                      f"node {runs['node'][-1][0] / runs['node'][-1][1]:.1f} tok/s", file=sys.stderr)
        loop.call_soon_threadsafe(stop.set)
        server.result(60)

    def rate(path: str) -> float:
        return sum(t for t, _ in runs[path]) / sum(s for _, s in runs[path])

    result = {
        "benchmark": "node",
        "model": args.model,
        "tokens_per_request": args.tokens,
        "repeats": args.repeats,
        "in_process_tokens_per_s": round(rate("in_process"), 2),
        "node_tokens_per_s": round(rate("node"), 2),
        "ratio": round(rate("node") / rate("in_process"), 4),
        "median_request_seconds": {p: round(statistics.median(s for _, s in runs[p]), 4) for p in runs},
        "tokens_checked_equal": [t for t, _ in runs["in_process"]] == [t for t, _ in runs["node"]],
    }
    table = (f"{'path':<12}{'tokens/s':>10}\n{'in-process':<12}{result['in_process_tokens_per_s']:>10}\n"
             f"{'gRPC node':<12}{result['node_tokens_per_s']:>10}\nratio (node / in-process): {result['ratio']}")
    if args.json:
        print(table, file=sys.stderr)
        print(json.dumps(result, indent=2))
    else:
        print(table)
    return 0

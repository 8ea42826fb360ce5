"""Fuzzing every RPC of a real node and a real coordinator (instant backend, 127.0.0.1): random raw
bytes, random well-formed messages and byte-mutated valid messages. Each call must end with a clear
status, the servers must keep serving, and a refused request must not add a ledger entry.

Examples per RPC: the hypothesis profile's (conftest: a few in the quick loop, many with
SWARMRANK_HYPOTHESIS=long), or SWARMRANK_FUZZ_EXAMPLES=N.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import grpc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import RunningCoordinator, RunningNode, coordinator_settings, wait_for
from swarmrank.node.backends.instant import InstantBackend
from swarmrank.node.settings import NodeSettings
from swarmrank.protos import limits
from swarmrank.protos.v1 import coordinator_pb2 as cpb
from swarmrank.protos.v1 import node_pb2 as npb

EXAMPLES = int(os.environ.get("SWARMRANK_FUZZ_EXAMPLES", settings().max_examples))
pytestmark = pytest.mark.slow
# Statuses a refused request may get. INTERNAL only for bytes that are not the message at all (gRPC's
# own deserialisation failure, with that message), never from our handlers.
CLEAR = {grpc.StatusCode.OK, grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.PERMISSION_DENIED,
         grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION, grpc.StatusCode.RESOURCE_EXHAUSTED,
         grpc.StatusCode.UNAVAILABLE}

NODE_RPCS: dict[str, tuple[Any, bool]] = {
    "Describe": (npb.DescribeRequest(), False),
    "Generate": (npb.GenerateRequest(round_id="r1", nonce=b"n" * 16, prompt="What is 2 + 3?"), True),
    "Judge": (npb.JudgeRequest(round_id="r1", nonce=b"n" * 16, question="q?", comparisons=[
        npb.Comparison(comparison_id="c1", answer_a="one", answer_b="two")]), False),
}
COORDINATOR_RPCS: dict[str, tuple[Any, bool]] = {
    "Ask": (cpb.AskRequest(prompt="What is 2 + 3?"), False),
    "AskStream": (cpb.AskRequest(prompt="What is 2 + 3?"), True),
    "Challenge": (cpb.ChallengeRequest(public_key=b"k" * 32), False),
    "Register": (cpb.RegisterRequest(public_key=b"k" * 32, nonce=b"n" * 16, address="127.0.0.1:1",
                                     max_concurrency=1, signature=b"s" * 64), False),
    "Heartbeat": (cpb.HeartbeatRequest(node_id="ab" * 16, timestamp_unix=time.time(), signature=b"s" * 64), False),
    "ListNodes": (cpb.ListNodesRequest(), False),
    "GetRound": (cpb.GetRoundRequest(round_id="nope"), False),
}


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    from helpers import BackgroundLoop

    tmp = tmp_path_factory.mktemp("fuzz")
    bg = BackgroundLoop()
    coord = RunningCoordinator(bg, coordinator_settings(tmp, heartbeat_interval=0.5, k=3, seed=3))
    nodes = [RunningNode(bg, NodeSettings(listen="127.0.0.1:0", key_path=tmp / f"n{i}.key", model=f"instant-{i}",
                                          coordinator=coord.address, max_queue=64),
                         InstantBackend(name=f"instant-{i}", seed=i)) for i in range(3)]
    node_channel = grpc.insecure_channel(nodes[0].address, options=limits.GRPC_OPTIONS)
    coord_channel = grpc.insecure_channel(coord.address, options=limits.GRPC_OPTIONS)
    from swarmrank.protos.v1 import coordinator_pb2_grpc

    stub = coordinator_pb2_grpc.CoordinatorStub(coord_channel)
    wait_for(lambda: sum(n.state == "healthy" for n in stub.ListNodes(cpb.ListNodesRequest(), timeout=5).nodes) == 3, 120)
    yield {"node": node_channel, "coordinator": coord_channel, "db": tmp / "c.db"}
    node_channel.close()
    coord_channel.close()
    for n in nodes:
        n.stop()
    coord.stop()
    bg.close()


def _ledger_entries(db: Path) -> int:
    con = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        return int(con.execute("SELECT count(*) FROM ledger").fetchone()[0])
    finally:
        con.close()


def _call(channel: grpc.Channel, service: str, method: str, payload: bytes, streaming: bool) -> tuple[grpc.StatusCode, str]:
    path = f"/{service}/{method}"
    try:
        if streaming:
            stream_call: Any = channel.unary_stream(path)
            for _ in stream_call(payload, timeout=30):
                pass
        else:
            unary_call: Any = channel.unary_unary(path)
            unary_call(payload, timeout=30)
    except grpc.RpcError as exc:
        return exc.code(), exc.details() or ""
    return grpc.StatusCode.OK, ""


def _check(servers: dict[str, Any], side: str, method: str, payload: bytes, streaming: bool) -> None:
    service = "swarmrank.v1.Node" if side == "node" else "swarmrank.v1.Coordinator"
    before = _ledger_entries(servers["db"])
    code, details = _call(servers[side], service, method, payload, streaming)
    deserialisation = code == grpc.StatusCode.INTERNAL and "deserializ" in details.lower()
    assert code in CLEAR or deserialisation, (method, code, details)
    if code != grpc.StatusCode.OK and method != "Ask" and method != "AskStream":
        assert _ledger_entries(servers["db"]) == before, f"{method} refused ({code}) but wrote to the ledger"
    if code != grpc.StatusCode.OK and method in ("Ask", "AskStream") and not deserialisation:
        assert code != grpc.StatusCode.INTERNAL
    # still serving
    assert _call(servers[side], service, "Describe" if side == "node" else "ListNodes", b"", False)[0] == grpc.StatusCode.OK


def _mutate(data: bytes, flips: list[tuple[int, int]]) -> bytes:
    out = bytearray(data)
    for pos, value in flips:
        if out:
            out[pos % len(out)] = value
    return bytes(out)


FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
ALL = [("node", m, msg, s) for m, (msg, s) in NODE_RPCS.items()] + [("coordinator", m, msg, s) for m, (msg, s) in COORDINATOR_RPCS.items()]


@pytest.mark.parametrize("side, method, valid, streaming", ALL, ids=[f"{a}.{b}" for a, b, _, _ in ALL])
def test_random_bytes(servers: dict[str, Any], side: str, method: str, valid: Any, streaming: bool) -> None:
    @FUZZ
    @given(st.binary(max_size=512))
    def run(payload: bytes) -> None:
        _check(servers, side, method, payload, streaming)

    run()


@pytest.mark.parametrize("side, method, valid, streaming", ALL, ids=[f"{a}.{b}" for a, b, _, _ in ALL])
def test_mutated_valid_messages(servers: dict[str, Any], side: str, method: str, valid: Any, streaming: bool) -> None:
    data = valid.SerializeToString()

    @FUZZ
    @given(st.lists(st.tuples(st.integers(0, 4096), st.integers(0, 255)), min_size=1, max_size=6),
           st.binary(max_size=16))
    def run(flips: list[tuple[int, int]], tail: bytes) -> None:
        _check(servers, side, method, _mutate(data, flips) + tail, streaming)

    run()


def _message(cls: Any, text: st.SearchStrategy[str]) -> st.SearchStrategy[bytes]:
    """Well-formed messages of ``cls`` with random scalar fields (strings, bytes, numbers)."""
    fields: dict[str, st.SearchStrategy[Any]] = {}
    for f in cls.DESCRIPTOR.fields:
        if f.label == f.LABEL_REPEATED or f.message_type is not None:
            continue
        if f.type == f.TYPE_STRING:
            fields[f.name] = text
        elif f.type == f.TYPE_BYTES:
            fields[f.name] = st.binary(max_size=80)
        elif f.type in (f.TYPE_DOUBLE, f.TYPE_FLOAT):
            fields[f.name] = st.floats(allow_nan=True, allow_infinity=True, width=32)
        elif f.type == f.TYPE_BOOL:
            fields[f.name] = st.booleans()
        elif f.type == f.TYPE_ENUM:
            fields[f.name] = st.integers(-3, 8)
        elif f.type in (f.TYPE_UINT32, f.TYPE_UINT64, f.TYPE_FIXED32, f.TYPE_FIXED64):
            fields[f.name] = st.integers(0, 2**32 - 1)
        else:
            fields[f.name] = st.integers(-(2**31), 2**31 - 1)
    return st.fixed_dictionaries({}, optional=fields).map(lambda d: cls(**d).SerializeToString())


@pytest.mark.parametrize("side, method, valid, streaming", ALL, ids=[f"{a}.{b}" for a, b, _, _ in ALL])
def test_random_wellformed_messages(servers: dict[str, Any], side: str, method: str, valid: Any, streaming: bool) -> None:
    text = st.one_of(st.text(max_size=60), st.text(max_size=3), st.just("x" * (limits.MAX_PROMPT_CHARS + 1)))

    @FUZZ
    @given(_message(type(valid), text))
    def run(payload: bytes) -> None:
        _check(servers, side, method, payload, streaming)

    run()

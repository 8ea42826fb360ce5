"""The SDK (sync and async), the CLI and settings loading, against a real swarm on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json

import pytest

from helpers import RunningCoordinator, coordinator_settings
from swarmrank.client import (
    AsyncClient, Client, Completed, Dispatched, Event, InvalidRequest, JudgingProgress, NotFound, Unavailable,
)
from swarmrank.cli.main import main


def test_sync_client_ask_stream_nodes_round(module_swarm) -> None:
    coord, nodes, _ = module_swarm
    with Client(coord.address) as client:
        answer = client.ask("The capital of France", k=3)
        assert answer.text == answer.winner.text and len(answer.candidates) == 3
        assert client.round(answer.round_id) == answer
        events = list(client.stream("The capital of France"))
        assert isinstance(events[0], Dispatched) and isinstance(events[-1], Completed)
        assert any(isinstance(e, JudgingProgress) for e in events)
        listed = client.nodes()
        assert {n.node_id for n in listed} == {n.node_id for n in nodes} and all(n.state == "healthy" for n in listed)
        assert sum(n.rounds for n in listed) > 0


def test_typed_errors(module_swarm) -> None:
    coord, _, _ = module_swarm
    with Client(coord.address) as client:
        with pytest.raises(InvalidRequest, match="prompt is empty") as info:
            client.ask("   ")
        assert info.value.code == "INVALID_ARGUMENT"
        with pytest.raises(NotFound):
            client.round("missing")


def test_unavailable_is_retried_then_raised(bg, tmp_path) -> None:
    coord = RunningCoordinator(bg, coordinator_settings(tmp_path))
    try:
        with Client(coord.address, retries=2, backoff=0.01) as client:
            with pytest.raises(Unavailable, match="healthy node"):
                client.ask("hello")
    finally:
        coord.stop()
    with Client("127.0.0.1:1", retries=1, backoff=0.01, timeout=5) as client:  # nobody listens there
        with pytest.raises(Unavailable):
            client.nodes(timeout=2)


def test_async_client(module_swarm) -> None:
    coord, _, _ = module_swarm

    async def go() -> tuple[str, list[Event]]:
        async with AsyncClient(coord.address) as client:
            answer = await client.ask("The capital of France")
            events = [e async for e in client.stream("The capital of France", k=2)]
            return answer.text, events

    text, events = asyncio.run(go())
    assert text and isinstance(events[-1], Completed) and len(events[-1].answer.candidates) == 2


def test_cli_ask_json_and_nodes(module_swarm, capsys) -> None:
    coord, _, _ = module_swarm
    assert main(["ask", "The capital of France", "--coordinator", coord.address, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"answer", "round_id", "winner_node", "candidates", "judgments"} <= set(data)
    assert main(["nodes", "--coordinator", coord.address]) == 0
    assert capsys.readouterr().out.count("healthy") == 3
    assert main(["ask", "", "--coordinator", coord.address]) == 2  # clear error, no traceback
    assert "prompt is empty" in capsys.readouterr().err

"""The SDK (sync and async), the CLI and settings loading, against a real swarm on 127.0.0.1."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys

import pytest

from helpers import RunningCoordinator, coordinator_settings
from swarmrank.client import (
    AsyncClient, Client, Completed, Dispatched, Event, InvalidRequest, JudgingProgress, NotFound, Unavailable,
)
from swarmrank.cli.main import main
from swarmrank.cli.config import load_settings
from swarmrank.node.settings import NodeSettings


def test_sync_client_ask_stream_nodes_round(swarm) -> None:
    coord, nodes, _ = swarm
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


def test_typed_errors(swarm) -> None:
    coord, _, _ = swarm
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


def test_async_client(swarm) -> None:
    coord, _, _ = swarm

    async def go() -> tuple[str, list[Event]]:
        async with AsyncClient(coord.address) as client:
            answer = await client.ask("The capital of France")
            events = [e async for e in client.stream("The capital of France", k=2)]
            return answer.text, events

    text, events = asyncio.run(go())
    assert text and isinstance(events[-1], Completed) and len(events[-1].answer.candidates) == 2


def test_cli_ask_json_and_nodes(swarm, capsys) -> None:
    coord, _, _ = swarm
    assert main(["ask", "The capital of France", "--coordinator", coord.address, "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert {"answer", "round_id", "winner_node", "candidates", "judgments"} <= set(data)
    assert main(["nodes", "--coordinator", coord.address]) == 0
    assert capsys.readouterr().out.count("healthy") == 3
    assert main(["ask", "", "--coordinator", coord.address]) == 2  # clear error, no traceback
    assert "prompt is empty" in capsys.readouterr().err


def test_help_explains_every_command() -> None:
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "node", "start", "--help"], capture_output=True, text=True)
    assert out.returncode == 0 and "--model" in out.stdout and "--max-queue" in out.stdout and "--coordinator" in out.stdout
    out = subprocess.run([sys.executable, "-m", "swarmrank.cli", "--help"], capture_output=True, text=True)
    for command in ("demo", "node", "coordinator", "ask", "nodes", "round", "bench"):
        assert command in out.stdout


def test_settings_precedence(tmp_path, monkeypatch) -> None:
    config = tmp_path / "node.toml"
    config.write_text('model = "gemma3-270m"\nmax_queue = 3\nlisten = "127.0.0.1:7000"\n')
    monkeypatch.setenv("SWARMRANK_NODE_MAX_QUEUE", "5")
    s = load_settings(NodeSettings, config, {"listen": "127.0.0.1:9000", "model": None})
    assert (s.model, s.max_queue, s.listen) == ("gemma3-270m", 5, "127.0.0.1:9000")  # file < env < flag
    with pytest.raises(FileNotFoundError):
        load_settings(NodeSettings, tmp_path / "missing.toml", {})
    with pytest.raises(ValueError):
        load_settings(NodeSettings, None, {"max_queue": "-1"})


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux-only")
def test_demo_children_die_with_a_killed_demo(tmp_path) -> None:
    """A child the demo started asks the kernel for SIGTERM when the demo dies, even by SIGKILL,
    and is spawned without a fork-time hook (the demo's gRPC threads make those unsafe)."""
    import os
    import signal
    import time

    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from swarmrank.cli.demo import Child\n"
        f"c = Child('coordinator', ['coordinator', 'start', '--listen', '127.0.0.1:0', '--db', r'{tmp_path / 'c.db'}',"
        f" '--key-path', r'{tmp_path / 'c.key'}'], Path(r'{tmp_path / 'c.log'}'))\n"
        "c.wait_ready(60)\n"
        "print(c.proc.pid, flush=True)\n"
        "time.sleep(600)\n"
    )
    demo = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        assert demo.stdout is not None
        child = int(demo.stdout.readline())
        os.kill(child, 0)  # running
        demo.kill()
        demo.wait(10)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                os.kill(child, 0)
            except ProcessLookupError:
                return
            time.sleep(0.1)
        os.kill(child, signal.SIGKILL)
        pytest.fail("the demo's child outlived the demo")
    finally:
        if demo.poll() is None:
            demo.kill()

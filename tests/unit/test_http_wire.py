"""The HTTP API's wire helpers (pure): JSON encoding with and without orjson, and the transport
that sends the writes of one event-loop turn as one."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import numpy as np
import pytest

from swarmrank.coordinator import http_json
from swarmrank.coordinator.http_protocol import CoalescingTransport

ANSWER = {"id": "chatcmpl-1", "choices": [{"message": {"content": "Paris, c'est là — 🗼"}}],
          "swarm": {"confidence": np.float64(0.75), "ranking": [{"rank": np.int64(1), "strength": np.float32(0.5)}],
                    "ok": np.bool_(True), "none": None}}
EXPECTED = {"id": "chatcmpl-1", "choices": [{"message": {"content": "Paris, c'est là — 🗼"}}],
            "swarm": {"confidence": 0.75, "ranking": [{"rank": 1, "strength": 0.5}], "ok": True, "none": None}}


@pytest.fixture(params=["orjson", "stdlib"])
def encoder(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "stdlib":
        monkeypatch.setattr(http_json, "orjson", None)
    elif getattr(http_json, "orjson") is None:
        pytest.skip("orjson is not installed")
    return str(request.param)


def test_dumps_is_compact_utf8_and_takes_numpy_scalars(encoder: str) -> None:
    out = http_json.dumps(ANSWER)
    assert json.loads(out) == EXPECTED
    assert out.startswith(b'{"id":"chatcmpl-1","choices":[{"message":{"content":"Paris')  # compact
    assert "c'est là — 🗼".encode() in out  # UTF-8, not \u-escaped


def test_loads_refuses_what_is_not_json(encoder: str) -> None:
    assert http_json.loads(b'{"model": "swarm", "n": 1}') == {"model": "swarm", "n": 1}
    for bad in (b"{not json", b"", b'{"a": 1} trailing'):
        with pytest.raises(http_json.JSONDecodeError):
            http_json.loads(bad)
    with pytest.raises((http_json.JSONDecodeError, UnicodeDecodeError)):
        http_json.loads(b'"\xff"')
    with pytest.raises(TypeError):
        http_json.dumps({"not": object()})


class RecordingTransport(asyncio.Transport):
    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.events: list[str] = []
        self.closing = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self.events.append("write")

    def close(self) -> None:
        self.closing = True
        self.events.append("close")

    def abort(self) -> None:
        self.closing = True
        self.events.append("abort")

    def is_closing(self) -> bool:
        return self.closing

    def get_write_buffer_size(self) -> int:
        return 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


async def one_turn() -> None:
    await asyncio.sleep(0)


def test_writes_of_one_turn_leave_as_one() -> None:
    async def scenario() -> None:
        real = RecordingTransport()
        t = CoalescingTransport(real, asyncio.get_running_loop())
        t.write(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n")
        t.write(b"")
        t.write(memoryview(b"{}"))
        assert real.writes == [] and t.get_write_buffer_size() == 40
        await one_turn()
        assert real.writes == [b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}"]
        t.write(b"data: 1\n\n")  # a later turn (a streamed chunk) leaves on its own, without waiting for more
        await one_turn()
        assert real.writes[1:] == [b"data: 1\n\n"]
        assert t.get_extra_info("peername") == ("127.0.0.1", 1) and not t.is_closing()

    asyncio.run(scenario())


def test_close_sends_what_is_pending_first_and_abort_drops_it() -> None:
    async def scenario() -> None:
        closed, aborted = RecordingTransport(), RecordingTransport()
        a = CoalescingTransport(closed, asyncio.get_running_loop())
        a.write(b"last bytes")
        a.close()
        assert closed.events == ["write", "close"] and closed.writes == [b"last bytes"]
        b = CoalescingTransport(aborted, asyncio.get_running_loop())
        b.write(b"never sent")
        b.abort()
        await one_turn()  # the scheduled flush finds nothing to send (and would not write to a closing transport)
        assert aborted.events == ["abort"]
        c = CoalescingTransport(RecordingTransport(), asyncio.get_running_loop())
        c.write(b"x")
        c._transport.close()  # the peer went away before the turn ended
        await one_turn()
        assert c._transport.writes == []  # type: ignore[attr-defined]

    asyncio.run(scenario())

"""The coordinator's HTTP server (``start_http``) on 127.0.0.1: every connection runs on the
coalescing transport, and a JSON answer and a streamed answer arrive whole and in order."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import FastAPI
from fastapi.responses import StreamingResponse

from swarmrank.coordinator.http_api import FastJSONResponse, start_http
from swarmrank.coordinator.http_protocol import CoalescingTransport


async def _exchange(address: str, request: bytes) -> bytes:
    host, port = address.rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        writer.write(request)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), 30)  # Connection: close, so read to EOF
    finally:
        writer.close()


def test_answers_go_out_through_the_coalescing_transport() -> None:
    app = FastAPI()
    seen: list[object] = []

    @app.get("/json")
    async def json_answer() -> FastJSONResponse:
        return FastJSONResponse({"answer": "là", "n": 1})

    @app.get("/stream")
    async def stream() -> StreamingResponse:
        async def chunks() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"data: {i}\n\n".encode()
                await asyncio.sleep(0)

        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def scenario() -> None:
        running = await start_http(app, "127.0.0.1:0")
        try:
            req = "GET {} HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"
            reply = await _exchange(running.address, req.format("/json").encode())
            head, _, body = reply.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200") and b"content-length: " + str(len(body)).encode() in head
            assert body == '{"answer":"là","n":1}'.encode() and b"server: uvicorn" not in head.lower()
            streamed = await _exchange(running.address, req.format("/stream").encode())
            assert streamed.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in streamed
            assert streamed.index(b"data: 0") < streamed.index(b"data: 1") < streamed.index(b"data: 2")
            assert streamed.endswith(b"0\r\n\r\n")
            # an open connection's protocol writes through the coalescing transport
            host, port = running.address.rsplit(":", 1)
            _, writer = await asyncio.open_connection(host, int(port))
            for _ in range(200):
                if running.server.server_state.connections:
                    break
                await asyncio.sleep(0.01)
            seen.extend(getattr(c, "transport", None) for c in running.server.server_state.connections)
            writer.close()
        finally:
            await running.stop(grace=1)

    asyncio.run(scenario())
    assert seen and all(isinstance(t, CoalescingTransport) for t in seen)

"""The live dashboard: static assets shipped in the package, a small read-only JSON API and a
server-sent-events feed of answered rounds.

Reputation history is sampled in memory (at start and after every round), bounded per node; the
ledger head is verified off the event loop and cached for a few seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.responses import FileResponse, HTMLResponse, Response, StreamingResponse

from . import ledger
from . import openai_format as fmt
from .domain import RoundResult
from .registry import Registry
from .store import Store

HISTORY_POINTS = 120
RECENT_ROUNDS = 20
LEDGER_CACHE_SECONDS = 5.0
KEEPALIVE_SECONDS = 15.0
MAX_SUBSCRIBERS = 64
ASSETS = {"app.js": "text/javascript", "style.css": "text/css"}


def round_summary(r: RoundResult) -> dict[str, Any]:
    return {"question": r.prompt[:500], "answer": r.answer[:2000], "created_unix": r.created_unix,
            "texts": {rc.candidate.candidate_id: rc.candidate.text[:300] for rc in r.candidates},
            **fmt.swarm_extension(r)}


class Dashboard:
    def __init__(self, registry: Registry, store: Store) -> None:
        self._registry = registry
        self._store = store
        self._history: dict[str, deque[tuple[float, float, float]]] = {}
        self._subscribers: set[asyncio.Queue[dict[str, Any] | None]] = set()
        self._ledger: dict[str, Any] = {}
        self._ledger_at = 0.0
        self._ledger_lock = asyncio.Lock()
        self.sample()

    def sample(self) -> None:
        now = time.time()
        for n in self._registry.all():
            points = self._history.setdefault(n.node_id, deque(maxlen=HISTORY_POINTS))
            point = (now, n.trust.generator, max(0.0, n.trust.judge_reliability))
            if not points or points[-1][1:] != point[1:]:
                points.append(point)

    def on_round(self, result: RoundResult) -> None:
        """Runner listener (event loop thread): sample reputations and tell every open page."""
        self.sample()
        event = {"type": "round", "round": round_summary(result)}
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(event)

    def close(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)

    def nodes(self) -> list[dict[str, Any]]:
        out = []
        for n in self._registry.all():
            out.append({
                "node_id": n.node_id, "address": n.address, "model": n.model_name,
                "models": [m.name for m in n.models], "role": n.role.name.lower(), "status": self._registry.state(n),
                "trust_status": n.trust.status, "reputation": n.reputation, "generator": n.trust.generator,
                "judge": max(0.0, n.trust.judge_reliability), "rounds": n.rounds, "last_seen_unix": n.last_seen_unix,
                "history": [list(p) for p in self._history.get(n.node_id, ())],
            })
        return out

    async def ledger_head(self) -> dict[str, Any]:
        async with self._ledger_lock:
            if time.monotonic() - self._ledger_at > LEDGER_CACHE_SECONDS or not self._ledger:
                seq, head = await asyncio.to_thread(self._store.ledger_head)
                checked = await asyncio.to_thread(ledger.verify, Path(self._store.path))
                self._ledger = {"verified": checked.ok, "entries": checked.entries, "head_seq": seq,
                                "head_hash": head.hex(), "coordinator_key": checked.coordinator_key,
                                "problem": checked.reason, "checked_unix": time.time()}
                self._ledger_at = time.monotonic()
            return self._ledger

    async def events(self, request: Request) -> AsyncIterator[bytes]:
        queue: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue(maxsize=256)
        self._subscribers.add(queue)
        try:
            yield b"retry: 2000\n\n"
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    yield b": keepalive\n\n"
                    continue
                if event is None:  # the coordinator is shutting down
                    return
                yield f"event: {event['type']}\ndata: {json.dumps(event['round'])}\n\n".encode()
        finally:
            self._subscribers.discard(queue)

    def routes(self, app: FastAPI, require: Callable[[str], Callable[..., Any]]) -> None:
        read = [Depends(require("read"))]
        static = resources.files("swarmrank.coordinator") / "static"

        @app.get("/", response_class=HTMLResponse)
        async def index() -> Response:
            return HTMLResponse((static / "index.html").read_text(encoding="utf-8"))

        @app.get("/static/{name}")
        async def asset(name: str) -> Response:
            if name not in ASSETS:
                return Response("not found", 404)
            with resources.as_file(static / name) as path:
                return FileResponse(path, media_type=ASSETS[name], headers={"Cache-Control": "no-cache"})

        @app.get("/api/nodes", dependencies=read)
        async def nodes() -> list[dict[str, Any]]:
            return self.nodes()

        @app.get("/api/rounds", dependencies=read)
        async def rounds(limit: int = RECENT_ROUNDS) -> list[dict[str, Any]]:
            recent = await asyncio.to_thread(self._store.recent_rounds, max(1, min(limit, 100)))
            return [round_summary(r) for r in recent]

        @app.get("/api/ledger", dependencies=read)
        async def ledger_state() -> dict[str, Any]:
            return await self.ledger_head()

        @app.get("/api/events", dependencies=read)
        async def events(request: Request) -> Response:
            if len(self._subscribers) >= MAX_SUBSCRIBERS:
                return Response("too many open dashboards", 503)
            return StreamingResponse(self.events(request), media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

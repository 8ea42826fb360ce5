"""The coordinator's HTTP side: an OpenAI-compatible API (``/v1/chat/completions``, ``/v1/models``),
Prometheus ``/metrics`` and the dashboard, served by uvicorn inside the coordinator's own event loop.

Thin like the gRPC servicer: read and check the request (``openai_format``), call the same
``RoundRunner``, map errors to OpenAI-style error objects with matching HTTP statuses.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from . import openai_format as fmt
from .domain import RoundEvent, RoundResult
from .errors import CoordinatorError, InvalidAsk, QuorumNotReached, RateLimited
from .http_auth import Authenticator, AuthRefused, Principal, bearer_token
from .http_json import JSONDecodeError, dumps, loads
from .http_protocol import OneWriteHttpProtocol
from .metrics import CoordinatorMetrics
from .observed import ObservedRoundRunner
from .registry import Registry

log = logging.getLogger("swarmrank.coordinator.http")

# HTTP status, OpenAI error type and code for each coordinator error.
HTTP_FOR_ERROR: dict[type[CoordinatorError], tuple[int, str, str]] = {
    InvalidAsk: (400, "invalid_request_error", "invalid_request"),
    QuorumNotReached: (503, "service_unavailable_error", "no_healthy_nodes"),
    RateLimited: (429, "rate_limit_error", "rate_limited"),
}
AUTH_TYPES = {401: "authentication_error", 403: "permission_error", 429: "rate_limit_error"}
_END = object()


class _PlainRoute(Route):
    """A Starlette route that names itself in the scope, as FastAPI's routes do (requests by route)."""

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is not Match.NONE:
            child["route"] = self
        return match, child


class ApiError(Exception):
    def __init__(self, status: int, message: str, kind: str, code: str | None = None, param: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.kind, self.code, self.param, self.headers = status, kind, code, param, headers


def _from_coordinator(exc: CoordinatorError) -> ApiError:
    status, kind, code = next((v for k, v in HTTP_FOR_ERROR.items() if isinstance(exc, k)), (500, "server_error", "internal"))
    return ApiError(status, str(exc), kind, code)


def _sse(payload: dict[str, Any] | str) -> bytes:
    return b"data: " + (payload.encode() if isinstance(payload, str) else dumps(payload)) + b"\n\n"


class FastJSONResponse(Response):
    """JSON with the fastest encoder at hand (orjson when installed): the answer is the hot path."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return dumps(content)


def member_models(registry: Registry) -> list[str]:
    """Models a client may ask for by name: those some healthy node generates with."""
    return sorted({m.name for n in registry.healthy() if n.role.generates for m in n.models if m.name})


async def _read_body(request: Request, limit: int) -> Any:
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise ApiError(413, f"request body larger than {limit} bytes", "invalid_request_error", "body_too_large")
    body = bytearray()
    async for piece in request.stream():
        body += piece
        if len(body) > limit:
            raise ApiError(413, f"request body larger than {limit} bytes", "invalid_request_error", "body_too_large")
    try:
        return loads(body)
    except (UnicodeDecodeError, JSONDecodeError) as exc:
        raise ApiError(400, f"the body is not valid JSON: {exc}", "invalid_request_error", "invalid_json") from None


def build_app(runner: ObservedRoundRunner, registry: Registry, metrics: CoordinatorMetrics, authenticator: Authenticator,
              *, max_body_bytes: int, max_k: int, extra_routes: Callable[[FastAPI, Callable[..., Any]], None] | None = None,
              ) -> FastAPI:
    options: dict[str, Any] = {}
    if "telemetry" in inspect.signature(FastAPI).parameters:  # FastAPI >= 0.16x asks OpenTelemetry on every request
        options["telemetry"] = {"tracing": False, "metrics": False, "logs": False}
    app = FastAPI(title="swarmrank coordinator", docs_url=None, redoc_url=None, openapi_url=None, **options)

    def error_response(exc: ApiError) -> Response:
        return FastJSONResponse(fmt.error_body(str(exc), exc.kind, exc.code, exc.param), exc.status, headers=exc.headers)

    @app.exception_handler(ApiError)
    async def on_api_error(request: Request, exc: ApiError) -> Response:
        return error_response(exc)

    @app.exception_handler(StarletteHTTPException)
    async def on_http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        kind = "not_found_error" if exc.status_code == 404 else "invalid_request_error"
        return JSONResponse(fmt.error_body(f"{exc.detail}: {request.method} {request.url.path}", kind, str(exc.status_code)),
                            exc.status_code)

    @app.exception_handler(Exception)
    async def on_crash(request: Request, exc: Exception) -> JSONResponse:
        log.exception("HTTP %s %s failed", request.method, request.url.path)
        return JSONResponse(fmt.error_body("internal error", "server_error", "internal"), 500)

    app.add_middleware(_CountRequests, metrics=metrics)

    def authenticate(request: Request, scope: str) -> Principal:
        try:
            return authenticator.authenticate(bearer_token(request.headers.get("authorization")), scope)
        except AuthRefused as exc:
            metrics.auth_refusals.labels(exc.reason).inc()
            log.warning("HTTP %s refused (%s) from %s", request.url.path, exc.reason,
                        request.client.host if request.client else "?")
            headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
            raise ApiError(exc.status, str(exc), AUTH_TYPES.get(exc.status, "authentication_error"), exc.reason,
                           headers=headers) from None

    def require(scope: str) -> Callable[[Request], Awaitable[Principal]]:
        async def check(request: Request) -> Principal:  # async: no thread-pool hop per request
            return authenticate(request, scope)
        return check

    read_scope = Depends(require("read"))

    @app.get("/v1/models", dependencies=[read_scope])
    async def list_models() -> dict[str, Any]:
        return fmt.models_list(member_models(registry), int(time.time()))

    @app.get("/v1/models/{model_id}", dependencies=[read_scope])
    async def get_model(model_id: str) -> dict[str, Any]:
        for m in fmt.models_list(member_models(registry), int(time.time()))["data"]:
            if m["id"] == model_id:
                return dict(m)
        raise ApiError(404, f"the model {model_id!r} does not exist or no node serves it", "invalid_request_error",
                       "model_not_found", "model")

    # The hot path is a plain Starlette route: FastAPI's dependency solving and request handler cost
    # more per request than everything this endpoint does itself (bench overhead --http).
    async def chat_completions(request: Request) -> Response:
        authenticate(request, "ask")
        body = await _read_body(request, max_body_bytes)
        try:
            # Member models only matter when one is named: no registry scan for the usual "swarm".
            named = not (isinstance(body, dict) and body.get("model") == fmt.SWARM_MODEL)
            chat = fmt.parse_chat_request(body, set(member_models(registry)) if named else set(), max_k)
        except fmt.RequestProblem as exc:
            status = 404 if exc.code == "model_not_found" else 400
            raise ApiError(status, str(exc), "invalid_request_error", exc.code, exc.param) from None
        if not chat.stream:
            try:
                result = await runner.run(chat.params)
            except CoordinatorError as exc:
                raise _from_coordinator(exc) from None
            return FastJSONResponse(fmt.completion(result, chat.model))
        return await _stream(chat)

    app.router.routes.append(_PlainRoute("/v1/chat/completions", chat_completions, methods=["POST"]))

    async def _stream(chat: fmt.ChatRequest) -> Response:
        events: asyncio.Queue[Any] = asyncio.Queue()
        task = asyncio.create_task(runner.run(chat.params, events.put_nowait))
        task.add_done_callback(lambda _: events.put_nowait(_END))
        first = await events.get()  # a round that fails at once (bad ask, no nodes) gets a real HTTP status
        if first is _END:
            exc = task.exception()
            if isinstance(exc, CoordinatorError):
                raise _from_coordinator(exc)
            raise exc if exc else RuntimeError("round ended without a result")
        completion_id, created = f"chatcmpl-{getattr(first, 'round_id', '')}", int(time.time())

        def progress(event: RoundEvent) -> Iterator[bytes]:
            shown = fmt.progress(event)
            if shown is not None:
                yield _sse(fmt.chunk(completion_id, created, chat.model, None, swarm=shown))

        async def body() -> AsyncIterator[bytes]:
            try:
                yield _sse(fmt.chunk(completion_id, created, chat.model, {"role": "assistant", "content": ""}))
                item = first
                while True:
                    if item is _END:
                        exc = task.exception()
                        error = _from_coordinator(exc) if isinstance(exc, CoordinatorError) else \
                            ApiError(500, "internal error", "server_error", "internal")
                        if not isinstance(exc, CoordinatorError):
                            log.error("streamed round failed: %r", exc)
                        yield _sse(fmt.error_body(str(error), error.kind, error.code))
                        return
                    if isinstance(item, RoundResult):
                        for piece in fmt.answer_chunks(item, completion_id, created, chat.model, chat.include_usage):
                            yield _sse(piece)
                        yield _sse("[DONE]")
                        return
                    for line in progress(item):
                        yield line
                    item = await events.get()
            finally:
                if not task.done():  # the client went away mid-round: stop the round's calls
                    task.cancel()
                    with contextlib.suppress(BaseException):
                        await task

        return StreamingResponse(body(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    # Same rule as the API: open on a loopback dev coordinator, any client API key in a swarm
    # (Prometheus sends one as a bearer token). --metrics-listen serves an unauthenticated copy for
    # an internal address.
    @app.get("/metrics", dependencies=[read_scope])
    async def scrape() -> Response:
        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    async def healthz() -> dict[str, Any]:
        return {"status": "ok", "healthy_nodes": len(registry.healthy())}

    if extra_routes is not None:
        extra_routes(app, require)
    return app


class _CountRequests:
    """Requests by route and status, as a plain ASGI middleware (no extra task per request)."""

    def __init__(self, app: ASGIApp, metrics: CoordinatorMetrics) -> None:
        self._app = app
        self._metrics = metrics
        self._counters: dict[tuple[str, int], Any] = {}  # labels() takes a lock and builds a key per call

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        status = 500

        async def watch(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self._app(scope, receive, watch)
        finally:
            route = getattr(scope.get("route"), "path", "unmatched")  # a bounded set: routes, not raw paths
            counter = self._counters.get((route, status))
            if counter is None:
                counter = self._counters[route, status] = self._metrics.http_requests.labels(route, str(status))
            counter.inc()


class _EmbeddedServer(uvicorn.Server):
    """uvicorn without its own signal handling: the coordinator's composition root owns SIGTERM."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield

    def install_signal_handlers(self) -> None:
        pass


@dataclass
class RunningHttp:
    server: uvicorn.Server
    task: asyncio.Task[None]
    address: str

    async def stop(self, grace: float = 5.0) -> None:
        self.server.should_exit = True
        try:
            await asyncio.wait_for(asyncio.shield(self.task), grace + 5.0)
        except TimeoutError:
            self.task.cancel()
            with contextlib.suppress(BaseException):
                await self.task


def bind(listen: str) -> socket.socket:
    host, _, port = listen.rpartition(":")
    host = host.strip("[]") or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # proto=IPPROTO_TCP explicitly: asyncio sets TCP_NODELAY on accepted connections only when the
    # listening socket says TCP; with proto 0, Nagle meets delayed ACKs and every reply waits ~40 ms.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, int(port)))
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {listen}: {exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


async def start_http(app: FastAPI, listen: str, *, grace: float = 3.0,
                     tls_files: tuple[Path, Path] | None = None) -> RunningHttp:
    """Serve ``app`` on ``listen`` (port 0: a free one) in this event loop; returns once it accepts.
    ``tls_files`` (certificate chain, key): HTTPS."""
    sock = bind(listen)
    host, port = sock.getsockname()[:2]
    certfile, keyfile = (str(tls_files[0]), str(tls_files[1])) if tls_files else (None, None)
    # No "server: uvicorn" header: it names the stack and is parsed by every client for nothing.
    config = uvicorn.Config(app, http=OneWriteHttpProtocol, ws="none", server_header=False, log_level="warning",
                            access_log=False, lifespan="off", timeout_graceful_shutdown=int(max(1, grace)),
                            timeout_keep_alive=5, ssl_certfile=certfile, ssl_keyfile=keyfile)
    server = _EmbeddedServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            sock.close()
            task.result()
            raise OSError(f"HTTP server on {listen} stopped at start-up")
        await asyncio.sleep(0.01)
    shown = f"[{host}]" if ":" in host else host
    return RunningHttp(server, task, f"{shown}:{port}")

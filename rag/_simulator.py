"""A loopback HTTP server that speaks the chat-completions API like Mistral and Azure AI.

End-to-end tests point the real clients (the ``mistralai`` SDK, httpx) at it: it checks
requests like the real APIs, answers from the passages in the prompt (see
:mod:`rag._simulator_answers`), plays scripted replies and tool calls, and injects faults
(429, 5xx, broken bodies, content filters, resets, slowness) in the order they were queued.
It records every request as it arrived, so tests can check what left the process.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import socket
import socketserver
import struct
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl, urlsplit

from rag._simulator_answers import (
    EARLY_FAULTS,
    FAULTS,
    UNAUTHORIZED,
    Answer,
    Dialect,
    Response,
    Shape,
    check_request,
    chunks,
    completion,
    cut,
    default_answer,
    error,
    fault_response,
    json_response,
    prompt_tokens,
)

CHAT_ROUTES = frozenset({"/v1/chat/completions", "/chat/completions"})
MODEL_ROUTES = frozenset({"/v1/models", "/models"})
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
T = TypeVar("T")


@dataclass(frozen=True)
class RecordedRequest:
    """One request as it reached the simulator (recorded before faults and delays)."""

    method: str
    path: str
    query: dict[str, str]
    #: Header names as the client sent them; use :meth:`header` to look up any case.
    headers: dict[str, str]
    body: bytes
    #: The parsed body, or None when it was empty or not JSON.
    json: Any
    received_at: float

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


@dataclass(frozen=True)
class _Fault:
    kind: str
    options: Mapping[str, Any]


@dataclass(frozen=True)
class _Reply:
    content: str
    #: (name, arguments as JSON text) per call; ids are given when the reply is sent.
    calls: tuple[tuple[str, str], ...]
    finish_reason: str


class _Script(Generic[T]):
    """Items used in order, each ``times`` times (None: forever). Callers hold the lock."""

    def __init__(self) -> None:
        self._items: list[tuple[T, int | None]] = []

    def add(self, item: T, times: int | None) -> None:
        if times is not None and (not isinstance(times, int) or times < 1):
            raise ValueError(f"times must be a positive integer or None, not {times!r}")
        self._items.append((item, times))

    def take(self) -> T | None:
        if not self._items:
            return None
        item, left = self._items[0]
        if left is not None:
            if left <= 1:
                self._items.pop(0)
            else:
                self._items[0] = (item, left - 1)
        return item

    def clear(self) -> None:
        self._items.clear()


class MistralSimulator:
    """Mistral's chat-completions API (and Azure AI's two routes) on ``127.0.0.1``.

    ``api_key=None`` turns auth off; ``chunk_chars`` is the size of streamed content
    pieces; ``supports_json_schema=False`` refuses ``json_schema`` response formats with
    422, like models that only have JSON mode. Use as a context manager, or call
    :meth:`start` and :meth:`stop`.
    """

    def __init__(
        self,
        api_key: str | None = "test-key",
        model: str = "mistral-large-2402",
        chunk_chars: int = 7,
        supports_json_schema: bool = True,
    ) -> None:
        if chunk_chars < 1:
            raise ValueError("chunk_chars must be at least 1")
        self.api_key = api_key
        self.model = model
        self.chunk_chars = chunk_chars
        self.supports_json_schema = supports_json_schema
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._faults: _Script[_Fault] = _Script()
        self._replies: _Script[_Reply] = _Script()
        self._counter = 0
        self._connections: set[socket.socket] = set()
        # Set by stop(): wakes slow faults at once so stop() never waits for them.
        self._stopping = threading.Event()
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> MistralSimulator:
        with self._lock:
            if self._server is not None:
                return self
            self._stopping.clear()
            server = _Server(self)
            thread = threading.Thread(
                target=server.serve_forever,
                kwargs={"poll_interval": 0.05},
                name="mistral-simulator",
                daemon=True,
            )
            thread.start()
            self._server, self._thread = server, thread
        return self

    def stop(self) -> None:
        """Stops serving and drops open connections; idempotent, returns within ~2 s."""
        self._stopping.set()
        with self._lock:
            server, thread = self._server, self._thread
            self._server = self._thread = None
        if server is None:
            return
        server.shutdown()  # the serve loop polls every 50 ms
        server.server_close()
        with self._lock:  # after shutdown: no connection is accepted any more
            connections = list(self._connections)
        for conn in connections:  # idle keep-alive readers and pending slow requests
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if thread is not None:
            thread.join(timeout=2.0)

    def __enter__(self) -> MistralSimulator:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        server = self._server
        if server is None:
            raise RuntimeError("the simulator is not running: call start() or use `with`")
        return f"http://127.0.0.1:{server.server_address[1]}"

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of the requests received so far, in arrival order."""
        with self._lock:
            return list(self._requests)

    def fault(self, kind: str, times: int | None = 1, **options: Any) -> None:
        """Queues a fault for the next ``times`` chat requests (None: all of them).

        Kinds and options: ``rate_limit`` (``retry_after`` seconds, default 1; None sends
        no Retry-After), ``server_error`` (``status``, default 500), ``malformed`` (content
        that is not JSON), ``malformed_body`` (``body``, ``content_type``), ``content_filter``,
        ``content_filter_prompt`` (Azure's 400), ``length``, ``slow`` (``delay_s``, default
        5), ``disconnect``, ``unauthorized``. Faults apply to chat completions only, after
        the auth check; ``malformed``, ``length`` and ``content_filter`` break the default
        answer and leave scripted replies queued.
        """
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(FAULTS)}")
        unknown = set(options) - FAULTS[kind]
        if unknown:
            raise ValueError(f"fault {kind!r} takes no option(s) {sorted(unknown)}")
        status = options.get("status", 500)
        if kind == "server_error" and not (isinstance(status, int) and 500 <= status <= 599):
            raise ValueError(f"server_error status must be 5xx, not {status!r}")
        with self._lock:
            self._faults.add(_Fault(kind, dict(options)), times)

    def reply(
        self,
        content: str = "",
        tool_calls: Sequence[Mapping[str, Any]] | None = None,
        finish_reason: str | None = None,
        times: int | None = 1,
    ) -> None:
        """Queues a scripted reply, used before the default answer ``times`` times (None:
        forever). ``tool_calls`` items are ``{"name": str, "arguments": dict | str}``."""
        calls: list[tuple[str, str]] = []
        for call in tool_calls or ():
            name, arguments = call.get("name"), call.get("arguments", {})
            if not isinstance(name, str) or not name:
                raise ValueError("every scripted tool call needs a non-empty 'name'")
            text = arguments if isinstance(arguments, str) else json.dumps(arguments)
            calls.append((name, text))
        finish = finish_reason or ("tool_calls" if calls else "stop")
        with self._lock:
            self._replies.add(_Reply(content, tuple(calls), finish), times)

    def clear(self) -> None:
        """Forgets recorded requests, queued faults and scripted replies."""
        with self._lock:
            self._requests.clear()
            self._faults.clear()
            self._replies.clear()
            self._counter = 0

    # Used by the request handler.

    def _record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    def _take_fault(self) -> _Fault | None:
        with self._lock:
            return self._faults.take()

    def _take_reply(self) -> _Reply | None:
        with self._lock:
            return self._replies.take()

    def _digest(self, prefix: str) -> bytes:
        # Deterministic ids that look random: a hash of a per-simulator counter.
        with self._lock:
            self._counter += 1
            n = self._counter
        return hashlib.sha256(f"{prefix}-{n}".encode()).digest()

    def _completion_id(self) -> str:
        return "cmpl-" + self._digest("cmpl").hex()[:32]

    def _call_id(self) -> str:
        n = int.from_bytes(self._digest("call"), "big")
        out = []
        for _ in range(9):
            n, r = divmod(n, 62)
            out.append(_BASE62[r])
        return "".join(out)

    def _connected(self, conn: socket.socket, open_: bool) -> None:
        with self._lock:
            if open_:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False

    def __init__(self, sim: MistralSimulator) -> None:
        self.sim = sim
        super().__init__(("127.0.0.1", 0), _Handler)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host name (getfqdn), which can stall offline.
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = "127.0.0.1", self.server_address[1]


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, like the real endpoints
    server: _Server
    timeout = 10.0  # idle keep-alive connections do not hold a thread forever

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: tests read :attr:`MistralSimulator.requests` instead."""

    def setup(self) -> None:
        super().setup()
        # Headers and body go out in separate writes; without this, Nagle's algorithm and
        # delayed ACKs add ~40 ms to every keep-alive request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.sim._connected(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.sim._connected(self.connection, False)

    def _handle(self) -> None:
        sim = self.server.sim
        raw = self._read_body()
        url = urlsplit(self.path)
        path = url.path
        try:
            parsed = json.loads(raw) if raw else None
        except ValueError:
            parsed = None
        headers = dict(self.headers.items())
        query = dict(parse_qsl(url.query))
        sim._record(
            RecordedRequest(self.command, path, query, headers, raw, parsed, time.monotonic())
        )
        dialect: Dialect = "mistral" if path.startswith("/v1/") else "azure"
        try:
            if path not in CHAT_ROUTES | MODEL_ROUTES:
                self._send(error(dialect, 404, f"no route {path}", type_="not_found"))
            elif (self.command == "POST") != (path in CHAT_ROUTES):
                self._send(error(dialect, 405, f"{self.command} is not allowed on {path}"))
            elif not self._authorized():
                self._send(error(dialect, 401, UNAUTHORIZED, type_="authentication_error"))
            elif path in MODEL_ROUTES:
                data = [{"id": sim.model, "object": "model", "owned_by": "mistralai"}]
                self._send(json_response(200, {"object": "list", "data": data}))
            else:
                self._chat(raw, dialect)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away; nothing to answer

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle

    def _read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                parts.append(self.rfile.read(size))
                self.rfile.readline()
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass  # trailers
            return b"".join(parts)
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _authorized(self) -> bool:
        key = self.server.sim.api_key
        if key is None:
            return True
        bearer = self.headers.get("Authorization") or ""
        return bearer == f"Bearer {key}" or self.headers.get("api-key") == key

    def _chat(self, raw: bytes, dialect: Dialect) -> None:
        sim = self.server.sim
        fault = sim._take_fault()
        kind = fault.kind if fault else None
        if fault is not None and kind == "slow":
            if sim._stopping.wait(float(fault.options.get("delay_s", 5.0))):
                return self._drop()
        elif kind == "disconnect":
            return self._drop()
        elif fault is not None and kind in EARLY_FAULTS:
            return self._send(fault_response(fault.kind, fault.options, dialect))
        try:
            body = json.loads(raw)
        except ValueError:
            return self._send(error(dialect, 400, "the request body is not valid JSON"))
        problem = check_request(body, supports_json_schema=sim.supports_json_schema)
        if problem is not None:
            return self._send(error(dialect, problem.status, problem.message, param=problem.param))
        answer = self._answer(body, kind)
        shape = Shape(
            sim._completion_id(),
            body.get("model") or sim.model,
            int(time.time()),
            prompt_tokens(body["messages"]),
        )
        if not body.get("stream"):
            return self._send(json_response(200, completion(answer, shape)))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the end of the body is the end of the stream
        self.end_headers()
        self.close_connection = True
        for chunk in chunks(answer, shape, sim.chunk_chars):
            self.wfile.write(b"data: " + json.dumps(chunk, ensure_ascii=False).encode() + b"\n\n")
        self.wfile.write(b"data: [DONE]\n\n")

    def _answer(self, body: dict[str, Any], kind: str | None) -> Answer:
        sim = self.server.sim
        if kind == "content_filter":
            return Answer("", finish_reason="content_filter")
        if kind == "length":
            return Answer(cut(default_answer(body)), finish_reason="length")
        if kind == "malformed":
            return Answer(cut(default_answer(body)))
        reply = sim._take_reply()
        if reply is None:
            return Answer(default_answer(body))
        calls = tuple(
            {"id": sim._call_id(), "type": "function", "function": {"name": n, "arguments": a}}
            for n, a in reply.calls
        )
        return Answer(reply.content, calls, reply.finish_reason)

    def _send(self, response: Response) -> None:
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.payload)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.payload)

    def _drop(self) -> None:
        """Closes the connection without a response; SO_LINGER 0 makes it a reset (RST)."""
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()

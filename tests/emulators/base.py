"""The shared machinery of the shop emulators: a threaded loopback HTTP server that
records every request, routes to the platform subclass, and injects faults on demand
(HTTP errors, 429 with Retry-After, slow answers, answers lost after the write happened)
so retry paths are tested for real."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    # Whether the shop acted on it (its route ran); False when a fault answered instead.
    handled: bool = False

    def arg(self, name: str, default: str | None = None) -> str | None:
        """The first query argument of that name."""
        for key, value in self.query:
            if key == name:
                return value
        return default

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)

    @classmethod
    def json(cls, data: Any, status: int = 200, **headers: str) -> Reply:
        return cls(
            status, json.dumps(data).encode(), {"Content-Type": "application/json", **headers}
        )

    @classmethod
    def xml(cls, text: str, status: int = 200, **headers: str) -> Reply:
        return cls(status, text.encode(), {"Content-Type": "text/xml;charset=utf-8", **headers})


@dataclass
class Fault:
    status: int = 503
    retry_after: str | None = None
    delay: float = 0.0
    path_contains: str = ""
    method: str = ""
    after: bool = False


class Emulator:
    """Subclasses implement route(); tests read .requests and call fail_next()."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        self._lock = threading.Lock()
        # Requests being answered; a slow one may still change the shop after its caller
        # gave up, so resets wait for them (wait_idle) before clearing state.
        self._in_flight = 0
        self._idle = threading.Condition(self._lock)
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- lifecycle --------------------------------------------------------------------

    def start(self, port: int = 0) -> str:
        """Serve on loopback, on `port` when given (a restart after stop())."""
        emulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = RecordedRequest(
                    method=self.command,
                    path=parts.path,
                    query=parse_qsl(parts.query, keep_blank_values=True),
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=body,
                )
                with emulator._lock:
                    emulator._in_flight += 1
                try:
                    reply = emulator._dispatch(request)
                finally:
                    with emulator._lock:
                        emulator._in_flight -= 1
                        emulator._idle.notify_all()
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    # The caller gave up waiting (a timeout test); the work is done all the same.
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        # Without TCP_NODELAY the separate header and body writes meet delayed ACKs and
        # every keep-alive request waits 40 ms.
        self._server.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def base_url(self) -> str:
        assert self._server is not None, "emulator not started"
        return f"http://127.0.0.1:{self._server.server_port}"

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- faults and recording ---------------------------------------------------------

    def fail_next(
        self,
        *statuses: int,
        retry_after: str | None = None,
        delay: float = 0.0,
        path_contains: str = "",
        method: str = "",
        after: bool = False,
    ) -> None:
        """Answer the next requests (matching path_contains and method) with these statuses.

        With after=True each request is served first, then answered with the status: the
        write happened but its answer was lost.
        """
        with self._lock:
            for status in statuses:
                self._faults.append(Fault(status, retry_after, delay, path_contains, method, after))

    def clear_faults(self) -> None:
        """Forget the faults not yet served: the shop answers normally again."""
        with self._lock:
            self._faults.clear()

    def slow_next(self, seconds: float, path_contains: str = "", method: str = "") -> None:
        """Delay the next matching request, then answer it normally.

        The request's work still happens when the caller has given up or died meanwhile.
        """
        with self._lock:
            self._faults.append(Fault(0, None, seconds, path_contains, method))

    def wait_idle(self, timeout: float = 10.0) -> None:
        """Wait until no request is being answered (a slow write has landed)."""
        with self._idle:
            if not self._idle.wait_for(lambda: self._in_flight == 0, timeout):
                raise TimeoutError("the emulator is still answering a request")

    def requests_to(self, method: str, path_contains: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and path_contains in r.path]

    def writes(self) -> list[RecordedRequest]:
        """The requests that may have changed the shop: every method but GET and HEAD,
        served by the shop (a fault that answered in its place does not count)."""
        return [r for r in self.requests if r.method not in ("GET", "HEAD") and r.handled]

    def _dispatch(self, request: RecordedRequest) -> Reply:
        with self._lock:
            self.requests.append(request)
            fault = None
            for candidate in self._faults:
                if candidate.path_contains in request.path and candidate.method in (
                    "",
                    request.method,
                ):
                    fault = candidate
                    break
            if fault is not None:
                self._faults.remove(fault)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is None or not fault.status or fault.after:
            request.handled = True
            try:
                reply = self.route(request)
            except Exception as exc:  # an emulator bug must show up as a 500, not a hang
                reply = Reply.json({"errors": f"emulator error: {exc!r}"}, 500)
            if fault is None or not fault.status:
                return reply
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return Reply.json({"errors": "emulated failure"}, fault.status, **headers)

    def route(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    # --- webhooks to Comptoir ---------------------------------------------------------

    @staticmethod
    def deliver(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST a webhook over real HTTP (to a live Comptoir)."""
        return httpx.post(url, content=body, headers=headers, timeout=10)

"""The shared machinery of the shop emulators: a threaded loopback HTTP server that
records every request, routes to the platform subclass, and injects faults on demand
(HTTP errors, 429 with Retry-After, slow answers, answers lost after the write happened,
connections dropped mid-body, whole outages) so retry paths are tested for real."""

from __future__ import annotations

import dataclasses
import json
import socket
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from enum import StrEnum
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import httpx


class Failure(StrEnum):
    """How a faulty request goes wrong."""

    # Answered with the fault's status (and Retry-After); the shop does not act, unless
    # the fault says `after` (the write happened, its answer was lost).
    ERROR = "error"
    # No answer for the fault's delay (the caller's timeout runs out), then its status;
    # the shop does not act.
    HANG = "hang"
    # The shop acts, sends its answer's headers and half its body, and drops the connection.
    CUT = "cut"
    # Answered normally: a request that gets through an outage.
    SKIP = "skip"


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes
    # Whether the shop acted on it (its route ran); False when a fault answered instead.
    handled: bool = False
    # The failure that answered it, if any (a cut one was acted on all the same).
    failure: Failure | None = None

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
    # Send the headers and half the body, then drop the connection.
    cut: bool = False

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
    failure: Failure = Failure.ERROR


class Emulator:
    """Subclasses implement route(); tests read .requests and call fail_next()."""

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._faults: deque[Fault] = deque()
        # While down (go_down), every request not matched by a queued fault gets the next of
        # these faults, in turn.
        self._outage: list[Fault] = []
        self._outage_turn = 0
        # How many requests each kind of failure answered (faults queued or of an outage).
        self.failures: Counter[Failure] = Counter()
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
                    if reply.cut:
                        self.wfile.write(reply.body[: len(reply.body) // 2])
                        self.wfile.flush()
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
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

    def cut_next(self, path_contains: str = "", method: str = "") -> None:
        """Act on the next matching request, then drop its answer mid-body."""
        with self._lock:
            self._faults.append(
                Fault(200, path_contains=path_contains, method=method, failure=Failure.CUT)
            )

    def go_down(self, *faults: Fault) -> None:
        """Fail every request until come_back(): each gets the next of these faults in turn
        (Fault(failure=Failure.SKIP) lets one through). Faults queued by fail_next() and
        slow_next() still come first."""
        assert faults, "an outage needs at least one fault"
        with self._lock:
            self._outage = list(faults)
            self._outage_turn = 0

    def come_back(self) -> None:
        """End the outage: requests are answered normally again."""
        with self._lock:
            self._outage = []

    def accepted(self, method: str, path_contains: str) -> list[RecordedRequest]:
        """The requests of that method and path the shop acted on (a fault's answer aside)."""
        return [r for r in self.requests_to(method, path_contains) if r.handled]

    def clear_faults(self) -> None:
        """Forget the faults not yet served and end any outage: the shop answers normally."""
        with self._lock:
            self._faults.clear()
            self._outage = []

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

    def wait_landed(self, timeout: float = 10.0) -> None:
        """Wait until every request slow_next() delays has arrived and been answered.

        A caller that timed out may have given up before its request even reached the
        emulator (a loaded machine): idle then would not mean the write happened."""

        def landed() -> bool:
            return self._in_flight == 0 and not any(fault.delay for fault in self._faults)

        with self._idle:
            if not self._idle.wait_for(landed, timeout):
                if self._in_flight:
                    raise TimeoutError("a slowed request is still being answered")
                raise TimeoutError(
                    "the slowed request never arrived: did the caller give up on an earlier "
                    "request (a timeout too short for a loaded machine)?"
                )

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
            elif self._outage:
                fault = self._outage[self._outage_turn % len(self._outage)]
                self._outage_turn += 1
                if fault.failure == Failure.SKIP:
                    fault = None
        if fault is not None and fault.status:
            request.failure = fault.failure
            with self._lock:
                self.failures[fault.failure] += 1
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and fault.failure == Failure.CUT:
            request.handled = True
            return dataclasses.replace(self._route_safely(request), cut=True)
        if fault is None or not fault.status or fault.after:
            request.handled = True
            reply = self._route_safely(request)
            if fault is None or not fault.status:
                return reply
        headers = {"Retry-After": fault.retry_after} if fault.retry_after else {}
        return Reply.json({"errors": "emulated failure"}, fault.status, **headers)

    def _route_safely(self, request: RecordedRequest) -> Reply:
        try:
            return self.route(request)
        except Exception as exc:  # an emulator bug must show up as a 500, not a hang
            return Reply.json({"errors": f"emulator error: {exc!r}"}, 500)

    def route(self, request: RecordedRequest) -> Reply:
        raise NotImplementedError

    # --- webhooks to Comptoir ---------------------------------------------------------

    @staticmethod
    def deliver(url: str, body: bytes, headers: dict[str, str]) -> httpx.Response:
        """POST a webhook over real HTTP (to a live Comptoir)."""
        return httpx.post(url, content=body, headers=headers, timeout=10)

"""Shared machinery of the stateful provider fakes: failure knobs, a call log, and a loopback server.

A fake is an object with ``route(request) -> httpx.Response`` modelling the provider's state. The base
class wraps it with knobs every contract test needs:

- ``fail_next(status, times=1, match=None, headers=None)``: answer ``status`` instead of routing;
- ``drop_response_next(match)``: perform the request, then raise ``httpx.ReadTimeout`` (MockTransport) or
  close the socket without answering (loopback): the effect happened, the answer is lost;
- ``delay_response(match, seconds)``: perform the request, then wait before answering (to kill a worker
  mid-call);
- ``calls``: every (method, path) served, for counting provider calls.

``transport()`` gives an ``httpx.MockTransport``; ``serve(tls=None)`` starts a threaded loopback HTTP
server (HTTPS with a TLS context) so a real worker process can reach the same state.
"""

from __future__ import annotations

import re
import socket
import ssl
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx


class DroppedResponse(Exception):
    """Raised by the fake after performing a request whose answer must be lost."""


@dataclass
class _Knob:
    pattern: re.Pattern[str]
    times: int
    status: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0


class FakeProvider:
    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []
        self._failures: list[_Knob] = []
        self._drops: list[_Knob] = []
        self._delays: list[_Knob] = []
        self.lock = threading.RLock()
        self.base_url = "http://fake.invalid"

    # --- knobs ---------------------------------------------------------------------------------
    def fail_next(self, status: int, times: int = 1, match: str = ".*", headers: dict[str, str] | None = None) -> None:
        self._failures.append(_Knob(re.compile(match), times, status, headers or {}))

    def drop_response_next(self, match: str, times: int = 1) -> None:
        self._drops.append(_Knob(re.compile(match), times))

    def delay_response(self, match: str, seconds: float, times: int = 1) -> None:
        self._delays.append(_Knob(re.compile(match), times, seconds=seconds))

    def count(self, method: str, path_pattern: str = ".*") -> int:
        pattern = re.compile(path_pattern)
        return sum(1 for m, p in self.calls if m == method and pattern.fullmatch(p))

    # --- dispatch ------------------------------------------------------------------------------
    def route(self, request: httpx.Request) -> httpx.Response:
        raise NotImplementedError

    def handle(self, request: httpx.Request) -> httpx.Response:
        """Route with knobs applied; raises DroppedResponse after the effect when told to."""
        key = f"{request.method} {request.url.path}"
        with self.lock:
            self.calls.append((request.method, request.url.path))
            failure = _take(self._failures, key)
            if failure is not None:
                return httpx.Response(
                    failure.status, json={"errors": [{"detail": "injected failure"}]}, headers=failure.headers
                )
            response = self.route(request)
            drop = _take(self._drops, key)
            delay = _take(self._delays, key)
        if delay is not None:
            time.sleep(delay.seconds)
        if drop is not None:
            raise DroppedResponse(key)
        return response

    def transport(self) -> httpx.MockTransport:
        def handler(request: httpx.Request) -> httpx.Response:
            try:
                return self.handle(request)
            except DroppedResponse:
                raise httpx.ReadTimeout("fake dropped the response", request=request) from None

        return httpx.MockTransport(handler)

    @contextmanager
    def serve(self, tls: ssl.SSLContext | None = None) -> Iterator[str]:
        """Serve this fake on 127.0.0.1 (a free port) for the duration of the block; yields the base URL."""
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                request = httpx.Request(
                    self.command,
                    f"{fake.base_url}{self.path}",
                    headers=[(k, v) for k, v in self.headers.items()],
                    content=body,
                )
                try:
                    response = fake.handle(request)
                except DroppedResponse:
                    self.close_connection = True
                    self.connection.close()
                    return
                payload = response.content
                self.send_response(response.status_code)
                for k, v in response.headers.items():
                    if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(k, v)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                try:
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-call
                    self.close_connection = True

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _any

            def log_message(self, format: str, *args: object) -> None:
                pass

        server = LoopbackServer(("127.0.0.1", 0), Handler)
        server.tls = tls
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        self.base_url = f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
        try:
            yield self.base_url
        finally:
            server.shutdown()
            server.server_close()


class LoopbackServer(ThreadingHTTPServer):
    """A thread per connection, a deep accept queue, TCP_NODELAY (the handler sends headers and body apart,
    which Nagle's algorithm and delayed ACKs would hold back ~40 ms per answer), and optionally TLS with the
    handshake made in the connection's own thread. Quiet about clients killed mid-call."""

    daemon_threads = True
    request_queue_size = 1024
    tls: ssl.SSLContext | None = None

    def finish_request(self, request: Any, client_address: Any) -> None:
        request.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        try:
            wrapped = self.tls.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(wrapped, client_address)
        finally:
            wrapped.close()

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


def _take(knobs: list[_Knob], key: str) -> _Knob | None:
    for knob in knobs:
        if knob.times > 0 and knob.pattern.search(key):
            knob.times -= 1
            if knob.times == 0:
                knobs.remove(knob)
            return knob
    return None

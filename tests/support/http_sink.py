"""A real HTTP server on loopback standing in for services that cannot run here.

SMS gateways, Slack and Teams incoming webhooks and partners' webhook endpoints
are all "someone receives a POST". The sink records every request (method,
path, headers, raw body) and answers with the statuses a test queues, so a
test can make a provider fail, then recover, and check what arrived.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self):
        return json.loads(self.body)

    def header(self, name: str) -> str | None:
        return next((v for k, v in self.headers.items() if k.lower() == name.lower()), None)


@dataclass
class HttpSink:
    """``sink.url`` receives anything; ``sink.fail(503, times=2)`` makes the next calls fail."""

    requests: list[Received] = field(default_factory=list)
    _answers: list[tuple[int, bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    default_status: int = 200
    default_body: bytes = b'{"ok": true}'

    def start(self) -> HttpSink:
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                with sink._lock:
                    sink.requests.append(Received(self.command, self.path, dict(self.headers), body))
                    status, answer = sink._answers.pop(0) if sink._answers else (
                        sink.default_status,
                        sink.default_body,
                    )
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            do_POST = do_PUT = do_GET = _handle

            def log_message(self, *args) -> None:  # keep test output clean
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def fail(self, status: int, times: int = 1, body: bytes = b'{"error": "unavailable"}') -> None:
        with self._lock:
            self._answers.extend([(status, body)] * times)

    def on(self, path_prefix: str) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.path.startswith(path_prefix)]

    def wait_for(self, count: int, path_prefix: str = "/", timeout: float = 15.0) -> list[Received]:
        """Block until ``count`` requests under ``path_prefix`` arrived; fail loudly if not."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            got = self.on(path_prefix)
            if len(got) >= count:
                return got
            time.sleep(0.02)
        raise AssertionError(
            f"expected {count} request(s) under {path_prefix}, got {len(self.on(path_prefix))}"
        )

"""A webhook receiver on 127.0.0.1 for tests: it answers 200, 500 or 404, answers slowly, or is down
(its port closed), and keeps every request it answered 2xx with the signature checked."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from reason_classifier.webhooks import IDEMPOTENCY_HEADER, SIGNATURE_HEADER, verify


@dataclass
class Received:
    body: bytes
    signature: str | None
    idempotency_key: str | None
    verified_at: int


@dataclass
class Receiver:
    secret: str
    status: int = 200
    delay_seconds: float = 0.0
    received: list[Received] = field(default_factory=list)
    attempts: int = 0
    port: int = 0
    _server: ThreadingHTTPServer | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/alerts"

    def start(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the standard library's name
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver.attempts += 1
                    status, delay = receiver.status, receiver.delay_seconds
                if delay:
                    time.sleep(delay)
                if 200 <= status < 300:
                    signature = self.headers.get(SIGNATURE_HEADER)
                    signed_at = verify(body, signature, receiver.secret)  # raises: the test sees a 500 and a retry
                    with receiver._lock:
                        receiver.received.append(
                            Received(body, signature, self.headers.get(IDEMPOTENCY_HEADER), signed_at)
                        )
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        """Down: the port is closed, connections are refused."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def keys(self) -> list[str | None]:
        with self._lock:
            return [r.idempotency_key for r in self.received]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]

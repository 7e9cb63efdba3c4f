"""Slow clients against the real server (`reason-classifier serve`, issue 15 item 7): a body shorter than its
Content-Length, connections that never finish their headers, and too many connections."""

from __future__ import annotations

import json
import socket
import time

from service_process import ServiceProcess


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.settimeout(10)
    return sock


def _closed_within(sock: socket.socket, seconds: float, drip: bytes = b"") -> float | None:
    """Seconds until the server closed `sock` (sending `drip` a byte every 0.25 s meanwhile), or None if it did not."""
    started = time.monotonic()
    sock.settimeout(0.25)
    for i in range(int(seconds / 0.25)):
        if drip and i < len(drip):
            try:
                sock.sendall(drip[i : i + 1])
            except OSError:
                return time.monotonic() - started
        try:
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
    return None


def _response(sock: socket.socket) -> tuple[bytes, dict]:
    """The head and JSON body of one response read from `sock`."""
    answer = b""
    while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
        chunk = sock.recv(4096)
        if not chunk:
            break
        answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    return head, json.loads(body)


def test_a_body_shorter_than_its_content_length_is_answered_408_and_the_connection_closed(tiny_model):
    """Observed: a declared Content-Length longer than the body hung the request."""
    with ServiceProcess(body_timeout_seconds=1, model=tiny_model) as server:
        short = _connect(server.port)
        started = time.monotonic()
        short.sendall(
            b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n"
            b'{"text": "to'
        )
        head, body = _response(short)
        assert time.monotonic() - started < 6
        assert head.startswith(b"HTTP/1.1 408"), head
        assert b"connection: close" in head.lower()
        assert body["error"]["code"] == "body_timeout"
        assert (body["error"]["field"], body["error"]["limit"]) == ("body", 1)
        assert _closed_within(short, 6) is not None
        status, answer = server.request("POST", "/v1/classify", {"text": "too expensive"})
        assert status == 200, answer
        short.close()


def test_connections_without_complete_headers_are_closed_after_the_header_timeout(tiny_model):
    """Observed: 2,000 half-open connections were held for over 70 s."""
    with ServiceProcess(header_timeout_seconds=1, model=tiny_model) as server:
        silent = _connect(server.port)
        half = _connect(server.port)
        half.sendall(b"POST /v1/classify HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n")
        assert _closed_within(silent, 6) is not None
        assert _closed_within(half, 6) is not None
        # a byte every 0.25 s: the deadline counts from the connection, not from the last byte
        dripping = _connect(server.port)
        assert _closed_within(dripping, 6, drip=b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"a" * 40)
        # after a response, the next request's headers get the same time
        kept = _connect(server.port)
        kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        head, body = _response(kept)
        assert head.startswith(b"HTTP/1.1 200") and body["status"] == "alive"
        kept.sendall(b"GET /healthz HTTP/1.1\r\n")
        assert _closed_within(kept, 6) is not None
        assert server.request("GET", "/healthz")[0] == 200
        for sock in (silent, half, dripping, kept):
            sock.close()


def test_connections_over_the_limit_get_503_until_others_close(tiny_model):
    with ServiceProcess(max_connections=4, header_timeout_seconds=30, model=tiny_model) as server:
        idle = [_connect(server.port) for _ in range(4)]
        time.sleep(0.3)
        assert server.request("GET", "/healthz")[0] == 503
        for sock in idle:
            sock.close()
        time.sleep(0.3)
        assert server.request("GET", "/healthz")[0] == 200

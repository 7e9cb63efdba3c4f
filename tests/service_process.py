"""`reason-classifier serve` as a real process, for the faults that need one: SIGTERM, kill -9, several workers."""

from __future__ import annotations

import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parent.parent


class ServiceProcess:
    """`with ServiceProcess(store=...) as server:` a started server on a free port, ready; stopped (SIGTERM) at exit."""

    def __init__(self, *args: str, ready: bool = True, **settings: object) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        settings.setdefault("predict_timeout_seconds", 30)  # a loaded test machine: see service_helpers.running
        env = {**os.environ, **{f"REASON_CLASSIFIER_SERVICE_{k.upper()}": str(v) for k, v in settings.items()}}
        self.process = subprocess.Popen(
            [sys.executable, "-m", "reason_classifier.cli.main", "serve", "--port", str(self.port), *args],
            cwd=REPOSITORY,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # never the terminal's: a job-control signal meant for it must not stop the server
        )
        if ready:
            self.wait_ready()

    def __enter__(self) -> ServiceProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(30)

    def request(
        self,
        method: str,
        path: str,
        body: object | None = None,
        timeout: float = 30,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict | str]:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            connection.request(
                method, path, body=payload, headers={"content-type": "application/json", **(headers or {})}
            )
            response = connection.getresponse()
            text = response.read().decode()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text
        finally:
            connection.close()

    def wait_ready(self, seconds: float = 90) -> dict:
        deadline = time.monotonic() + seconds
        while True:
            try:
                status, body = self.request("GET", "/readyz", timeout=2)
                if status == 200:
                    return body
            except OSError:
                pass
            if self.process.poll() is not None:
                raise AssertionError(f"the server exited: {self.output()}")
            assert time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.1)

    def classify_many(self, customers: list[str], threads: int = 8) -> list[str]:
        """POST one answer per customer; the customers whose answer was acknowledged (200)."""

        def one(customer: str) -> str | None:
            try:
                body = {"text": "too expensive for us", "customer_id": customer}
                status, _ = self.request("POST", "/v1/classify", body)
            except OSError:
                return None
            return customer if status == 200 else None

        with ThreadPoolExecutor(threads) as pool:
            return [c for c in pool.map(one, customers) if c is not None]

    def terminate(self, seconds: float = 60) -> float:
        """SIGTERM, and how long the process took to exit."""
        started = time.monotonic()
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(seconds)
        return time.monotonic() - started

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)

    def output(self) -> str:
        if self.process.poll() is None:
            return ""
        return self.process.stdout.read().decode(errors="replace") if self.process.stdout else ""

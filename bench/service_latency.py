"""Latency and throughput of the classify service over HTTP, next to the in-process `predict` time.

    python bench/service_latency.py                    # 2,000 requests at each of concurrency 1, 8 and 32
    python bench/service_latency.py --requests 500     # quick check

The server is `reason-classifier serve` with the default model and default settings (no store, no
API keys), started as a separate process on 127.0.0.1 only. Requests are single answers drawn with
a fixed seed from labels/heldout (seven languages), sent with keep-alive connections, one per
client thread. In the same run, the bench process loads the same model and times
`classifier.predict([answer])` over the same answers, after the server has stopped: the HTTP
overhead ratio is the p50 latency at concurrency 1 over the in-process p50. Note that the client
threads share the machine's cores with the server.

Results: a table on the terminal and JSON in bench/results/service_latency.json.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

BENCH = Path(__file__).resolve().parent
REPOSITORY = BENCH.parent
DEFAULT_OUTPUT = BENCH / "results" / "service_latency.json"
CONCURRENCY = (1, 8, 32)
TARGET_P99_MS_AT_8 = 25.0
TARGET_REQUESTS_PER_SECOND = 200.0
TARGET_OVERHEAD = 2.0


def answers(seed: int, count: int) -> list[str]:
    texts = []
    for path in sorted((REPOSITORY / "labels" / "heldout").glob("*.csv")):
        with path.open(encoding="utf-8", newline="") as file:
            texts += [row["text"] for row in csv.DictReader(file) if row["text"].strip()]
    rng = random.Random(seed)
    return [rng.choice(texts) for _ in range(count)]


def in_process(texts: list[str]) -> dict:
    from reason_classifier.classifier import ReasonClassifier

    classifier = ReasonClassifier.load()
    classifier.predict(texts[:20])
    timings = []
    for text in texts:
        started = time.perf_counter()
        classifier.predict([text])
        timings.append(time.perf_counter() - started)
    return summarise(np.array(timings), sum(timings))


def summarise(seconds: np.ndarray, wall: float) -> dict:
    ms = seconds * 1000
    return {
        "requests": int(len(seconds)),
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p95_ms": round(float(np.percentile(ms, 95)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
        "mean_ms": round(float(ms.mean()), 3),
        "requests_per_second": round(len(seconds) / wall, 1),
    }


def cpu_pressure() -> float | None:
    """Share of the last 10 s in which some runnable task waited for a CPU (Linux PSI): other load on the machine."""
    try:
        line = Path("/proc/pressure/cpu").read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return float(dict(part.split("=") for part in line.split()[1:])["avg10"])


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("REASON_CLASSIFIER_SERVICE_")}
    environment["REASON_CLASSIFIER_SERVICE_LOG_LEVEL"] = "warning"
    process = subprocess.Popen(
        [sys.executable, "-m", "reason_classifier.cli.main", "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=REPOSITORY,
        env=environment,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"the server exited: {process.stderr.read().decode(errors='replace')}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return process
        except OSError:
            pass
        time.sleep(0.1)
    process.terminate()
    raise SystemExit("the server did not become ready within 120 s")


def load(port: int, texts: list[str], concurrency: int) -> tuple[dict, dict]:
    """Send every text once, spread over `concurrency` threads; latencies and status counts."""
    bodies = [json.dumps({"text": t}).encode() for t in texts]
    latencies = np.zeros(len(bodies))
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    next_index = 0
    barrier = threading.Barrier(concurrency + 1)

    def worker() -> None:
        nonlocal next_index
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        barrier.wait()
        while True:
            with lock:
                i = next_index
                next_index += 1
            if i >= len(bodies):
                break
            started = time.perf_counter()
            connection.request("POST", "/v1/classify", body=bodies[i], headers={"content-type": "application/json"})
            response = connection.getresponse()
            response.read()
            latencies[i] = time.perf_counter() - started
            with lock:
                statuses[response.status] = statuses.get(response.status, 0) + 1
        connection.close()

    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait()
    started = time.perf_counter()
    for thread in threads:
        thread.join()
    wall = time.perf_counter() - started
    return summarise(latencies, wall), statuses


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=2000, help="requests per concurrency level")
    parser.add_argument("--seed", type=int, default=4)
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    options = parser.parse_args()

    texts = answers(options.seed, options.requests)
    pressure_before = cpu_pressure()
    port = free_port()
    server = start_server(port)
    levels = {}
    try:
        load(port, answers(options.seed + 1, 200), 8)  # warm-up, not measured
        for concurrency in CONCURRENCY:
            result, statuses = load(port, texts, concurrency)
            result["statuses"] = {str(k): v for k, v in sorted(statuses.items())}
            levels[str(concurrency)] = result
    finally:
        server.terminate()
        server.wait(timeout=30)
    # After the server is gone, so neither competes with the other for the cores; the model is loaded
    # here only now, since its idle threads would otherwise share the client's process.
    baseline = in_process(texts)
    pressure_after = cpu_pressure()

    overhead = levels["1"]["p50_ms"] / baseline["p50_ms"]
    targets = {
        "p99_ms_at_concurrency_8": {
            "target": TARGET_P99_MS_AT_8,
            "measured": levels["8"]["p99_ms"],
            "met": levels["8"]["p99_ms"] <= TARGET_P99_MS_AT_8,
        },
        "requests_per_second": {
            "target": TARGET_REQUESTS_PER_SECOND,
            "measured": max(level["requests_per_second"] for level in levels.values()),
            "met": max(level["requests_per_second"] for level in levels.values()) >= TARGET_REQUESTS_PER_SECOND,
        },
        "http_overhead_ratio": {
            "target": TARGET_OVERHEAD,
            "measured": round(overhead, 2),
            "met": overhead < TARGET_OVERHEAD,
        },
    }
    print(f"{'':>22} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    print(
        f"{'in-process predict':>22} {baseline['p50_ms']:>8.2f} {baseline['p95_ms']:>8.2f} "
        f"{baseline['p99_ms']:>8.2f} {baseline['requests_per_second']:>8.0f}"
    )
    for concurrency, level in levels.items():
        print(
            f"{'HTTP, concurrency ' + concurrency:>22} {level['p50_ms']:>8.2f} {level['p95_ms']:>8.2f} "
            f"{level['p99_ms']:>8.2f} {level['requests_per_second']:>8.0f}   {level['statuses']}"
        )
    print(f"HTTP overhead (p50 at concurrency 1 / in-process p50): {overhead:.2f}x")
    for name, target in targets.items():
        print(f"  {name}: {target['measured']} (target {target['target']}) {'met' if target['met'] else 'NOT met'}")

    options.output.parent.mkdir(parents=True, exist_ok=True)
    options.output.write_text(
        json.dumps(
            {
                "benchmark": "service_latency",
                "setup": {
                    "requests_per_level": options.requests,
                    "seed": options.seed,
                    "data": "labels/heldout/*.csv",
                    "server": "reason-classifier serve, 1 worker, default model and settings, 127.0.0.1",
                    "client": "http.client keep-alive, one connection per thread, in this process",
                    "cpu_pressure_avg10_before_after": [pressure_before, pressure_after],
                    "cpu_count": os.cpu_count(),
                    "python": platform.python_version(),
                    "machine": platform.machine(),
                },
                "in_process_predict": baseline,
                "http": levels,
                "http_overhead_ratio": round(overhead, 3),
                "targets": targets,
            },
            indent=2,
        )
        + "\n",
        encoding="utf-8",
    )
    print(
        f"CPU pressure (PSI avg10) before/after the run: {pressure_before}/{pressure_after}; "
        "well above 0 before the run means other processes shared the cores"
    )
    print(f"written to {options.output}")


if __name__ == "__main__":
    main()

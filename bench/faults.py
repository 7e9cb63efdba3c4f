"""Store durability under faults: acknowledged answers against stored rows, for each fault of issue 15.

    python bench/faults.py                 # every case this machine can make, 500 requests each
    python bench/faults.py --requests 100 --cases unwritable sigterm

Each case runs `reason-classifier serve` as a real process with an SQLite (or PostgreSQL) store,
sends answers with distinct customer ids from 8 client threads, causes the fault, ends it, lets
the service (or its next start) catch up, and counts which acknowledged (200) answers are in the
database. The promise: `lost` is 0 in every case; answers refused with 503 were never promised.

- unwritable: the database file turns read-only (`chattr +i`) while the service runs, then back.
- full_disk: the database sits on a 2 MiB tmpfs that is filled, then freed (the spool is elsewhere).
- postgres_restart: PostgreSQL (Debian's package, a throwaway cluster) is stopped with
  `-m immediate` (as if killed) for `--outage` seconds while answers arrive, then started.
- sigterm_locked: another writer holds the database (BEGIN EXCLUSIVE); SIGTERM mid-traffic; the
  process must exit within store_drain_seconds (+ a margin); the next start writes the spool.
- kill9_spool: the database is locked; `kill -9` mid-traffic; the next start writes the spool.

Needs root for chattr and mount (cases that cannot run are listed as skipped). Results: a table
and bench/results/faults.json.
"""

from __future__ import annotations

import argparse
import contextlib
import glob
import itertools
import json
import os
import platform
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH.parent / "tests"))

from service_process import ServiceProcess  # noqa: E402  - the tests' real-server helper

CASES = ("unwritable", "full_disk", "postgres_restart", "sigterm_locked", "kill9_spool")
FAST = {"store_retry_max_seconds": 0.5, "store_drain_seconds": 2}


class Skip(Exception):
    pass


def stored_customers(store: str, prefix: str) -> set[str]:
    from sqlalchemy import create_engine, text

    from reason_classifier.database import database_url

    engine = create_engine(database_url(store))
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                text("SELECT customer_id FROM classified_answers WHERE customer_id LIKE :p"), {"p": prefix + "%"}
            )
            return {row[0] for row in rows}
    finally:
        engine.dispose()


def wait_drained(server: ServiceProcess, seconds: float = 120) -> None:
    deadline = time.monotonic() + seconds
    while True:
        status, body = server.request("GET", "/readyz")
        if isinstance(body, dict) and body.get("store") and body["store"]["pending_rows"] == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"the spool did not drain: {body}")
        time.sleep(0.2)


def traffic(server: ServiceProcess, prefix: str, n: int, during=None) -> tuple[list[str], int]:
    """Answers from 8 client threads: at least n, and for as long as `during()` (the fault, started once half of
    them are acknowledged) runs; until the server is gone. The acknowledged customer ids and how many requests got
    an HTTP answer (acknowledged or refused)."""
    acknowledged: list[str] = []
    answered = itertools.count()
    numbers = itertools.count()
    fault_over = threading.Event()
    if during is None:
        fault_over.set()

    def client() -> None:
        while True:
            i = next(numbers)
            if i >= n and fault_over.is_set():
                return
            try:
                body = {"text": "too expensive for us", "customer_id": f"{prefix}{i}"}
                status, _ = server.request("POST", "/v1/classify", body)
            except OSError:
                if server.process.poll() is not None:
                    return
                time.sleep(0.01)
                continue
            next(answered)
            if status == 200:
                acknowledged.append(f"{prefix}{i}")

    clients = [threading.Thread(target=client) for _ in range(8)]
    for thread in clients:
        thread.start()
    if during is not None:
        while len(acknowledged) < n // 2 and any(t.is_alive() for t in clients):
            time.sleep(0.01)
        during()
        fault_over.set()
    for thread in clients:
        thread.join()
    return acknowledged, next(answered)


def case_unwritable(folder: Path, n: int, _: argparse.Namespace) -> dict:
    if shutil.which("chattr") is None:
        raise Skip("no chattr")
    database = folder / "answers.db"
    with ServiceProcess(store=database, **FAST) as server:
        subprocess.run(["chattr", "+i", str(database)], check=True)
        try:
            acknowledged, sent = traffic(server, "u-", n)
            time.sleep(1)
            pending = server.request("GET", "/readyz")[1]["store"]["pending_rows"]
        finally:
            subprocess.run(["chattr", "-i", str(database)], check=True)
        wait_drained(server)
        server.terminate()
    return result(acknowledged, stored_customers(str(database), "u-"), sent, spooled_during_fault=pending)


def case_full_disk(folder: Path, n: int, _: argparse.Namespace) -> dict:
    disk = folder / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True).returncode:
        raise Skip("cannot mount a tmpfs")
    try:
        database = disk / "answers.db"
        with ServiceProcess(store=database, store_spool=folder / "spool", **FAST) as server:
            filler = disk / "filler"
            with open(filler, "wb", buffering=0) as file, contextlib.suppress(OSError):
                while file.write(b"\0" * 4096):
                    pass
            acknowledged, sent = traffic(server, "f-", n)
            time.sleep(1)
            pending = server.request("GET", "/readyz")[1]["store"]["pending_rows"]
            filler.unlink()
            wait_drained(server)
            server.terminate()
        return result(acknowledged, stored_customers(str(database), "f-"), sent, spooled_during_fault=pending)
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def case_postgres_restart(folder: Path, n: int, args: argparse.Namespace) -> dict:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"))
    if not found:
        raise Skip("PostgreSQL is not installed")
    binaries = Path(found[-1]).parent
    cluster = folder / "pg"
    cluster.mkdir()
    user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    if os.geteuid() == 0:
        shutil.chown(cluster, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    data, log = cluster / "data", cluster / "server.log"
    subprocess.run(
        [*user, str(binaries / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"],
        check=True,
        capture_output=True,
        stdin=subprocess.DEVNULL,
    )
    options = f"-p {port} -k {cluster} -c listen_addresses=127.0.0.1 -c fsync=off"
    start = [*user, str(binaries / "pg_ctl"), "-D", str(data), "-l", str(log), "-w", "start", "-o", options]
    stop = [*user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop"]
    subprocess.run(start, check=True, capture_output=True, stdin=subprocess.DEVNULL)
    url = f"postgresql://postgres@127.0.0.1:{port}/postgres"
    try:
        with ServiceProcess(store=url, store_spool=folder / "spool", **FAST) as server:

            def outage() -> None:
                subprocess.run(stop, check=True, capture_output=True, stdin=subprocess.DEVNULL)
                time.sleep(args.outage)
                subprocess.run(start, check=True, capture_output=True, stdin=subprocess.DEVNULL)

            acknowledged, sent = traffic(server, "p-", n, during=outage)
            wait_drained(server)
            server.terminate()
        return result(acknowledged, stored_customers(url, "p-"), sent, outage_seconds=args.outage)
    finally:
        subprocess.run(stop, capture_output=True, stdin=subprocess.DEVNULL)


def _locked(database: Path) -> sqlite3.Connection:
    lock = sqlite3.connect(database, isolation_level=None, timeout=30)
    lock.execute("BEGIN EXCLUSIVE")
    return lock


def case_sigterm_locked(folder: Path, n: int, _: argparse.Namespace) -> dict:
    database = folder / "answers.db"
    with ServiceProcess(store=database, **FAST) as server:
        lock = _locked(database)
        seconds: list[float] = []
        acknowledged, sent = traffic(server, "t-", n, during=lambda: seconds.append(server.terminate()))
        lock.execute("ROLLBACK")
        lock.close()
    with ServiceProcess(store=database, **FAST) as server:
        wait_drained(server)
        server.terminate()
    return result(acknowledged, stored_customers(str(database), "t-"), sent, exit_seconds=round(seconds[0], 2))


def case_kill9_spool(folder: Path, n: int, _: argparse.Namespace) -> dict:
    database = folder / "answers.db"
    with ServiceProcess(store=database, **FAST) as server:
        lock = _locked(database)
        acknowledged, sent = traffic(server, "k-", n, during=server.kill)
        lock.execute("ROLLBACK")
        lock.close()
    with ServiceProcess(store=database, **FAST) as server:
        wait_drained(server)
        server.terminate()
    return result(acknowledged, stored_customers(str(database), "k-"), sent)


def result(acknowledged: list[str], stored: set[str], sent: int, **extra: object) -> dict:
    lost = sorted(set(acknowledged) - stored)
    return {
        "answered": sent,
        "acknowledged": len(acknowledged),
        "stored": len(stored & set(acknowledged)),
        "lost": len(lost),
        "stored_not_acknowledged": len(stored - set(acknowledged)),
        **extra,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--outage", type=float, default=8.0, help="seconds PostgreSQL stays down")
    parser.add_argument("--cases", nargs="*", choices=CASES, default=list(CASES))
    parser.add_argument("--output", type=Path, default=BENCH / "results" / "faults.json")
    args = parser.parse_args()
    results: dict[str, object] = {}
    for name in args.cases:
        folder = Path(tempfile.mkdtemp(prefix=f"rc-fault-{name}-"))
        if os.geteuid() == 0:
            os.chmod(folder, 0o755)
        try:
            results[name] = globals()[f"case_{name}"](folder, args.requests, args)
        except Skip as skipped:
            results[name] = {"skipped": str(skipped)}
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        print(f"{name:18} {json.dumps(results[name])}", flush=True)
    document = {
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": os.getloadavg()[0]},
        "requests_per_case": args.requests,
        "results": results,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()

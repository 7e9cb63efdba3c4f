"""Storage on PostgreSQL: a throwaway cluster from Debian's `postgresql` package under /tmp.

Skipped, with the reason, when the package is not installed or the cluster cannot start (CI installs
it: see .ci/run). As root the cluster runs as the `postgres` user the package creates, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from service_helpers import running


def _binaries() -> Path | None:
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(p.split("/")[4]) if p.split("/")[4].isdigit() else 0,
    )
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def _as_cluster_user(command: list[str]) -> list[str]:
    if os.geteuid() != 0:
        return command
    return ["runuser", "-u", "postgres", "--", *command]


@pytest.fixture(scope="module")
def postgres_url():
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL is not installed (apt-get install -y postgresql); the SQLite tests still run")
    if os.geteuid() == 0 and (
        shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode != 0
    ):
        pytest.skip("running as root without a 'postgres' user to run the throwaway cluster as")
    folder = Path(tempfile.mkdtemp(prefix="rc-postgres-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = folder / "server.log"
    try:
        subprocess.run(
            _as_cluster_user(
                [
                    str(binaries / "initdb"),
                    "-D",
                    str(data),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "--encoding=UTF8",
                    "--no-sync",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=120,
        )
        subprocess.run(
            _as_cluster_user(
                [
                    str(binaries / "pg_ctl"),
                    "-D",
                    str(data),
                    "-l",
                    str(log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                    "-o",
                    f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off",
                ]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = getattr(error, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the throwaway PostgreSQL cluster did not start: {error} {detail.decode(errors='replace')[-300:]}")
    try:
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run(
            _as_cluster_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_stores_every_concurrent_answer(classifier, postgres_url):
    texts = ["It's simply too expensive for us", "support never answered my tickets", "太贵了", "the app crashes daily"]
    with running(classifier, store=postgres_url) as client:
        state = client.app.state.service
        assert state.store.dialect == "postgresql"

        def call(i: int):
            return client.post(
                "/v1/classify",
                json={
                    "text": texts[i % 4],
                    "customer_id": f"c-{i}",
                    "mrr": i,
                    "metadata": {"i": i, "nested": {"ok": True}},
                },
            )

        with ThreadPoolExecutor(max_workers=20) as pool:
            responses = list(pool.map(call, range(200)))
        batch = client.post("/v1/classify/batch", json={"items": [{"text": t} for t in texts]}).json()
        state.store.flush()
        rows = state.store.rows()
    assert [r.status_code for r in responses] == [200] * 200
    assert len(rows) == 204
    by_customer = {row["customer_id"]: row for row in rows if row["customer_id"]}
    assert set(by_customer) == {f"c-{i}" for i in range(200)}
    for i, response in enumerate(responses):
        row, body = by_customer[f"c-{i}"], response.json()
        assert (row["request_id"], row["category"], row["sub_reason"]) == (
            body["request_id"],
            body["category"],
            body["sub_reason"],
        )
        assert row["metadata"] == {"i": i, "nested": {"ok": True}} and row["mrr"] == i
        assert row["created_at"].tzinfo is not None
    assert [r["item"] for r in rows if r["request_id"] == batch["request_id"]] == [0, 1, 2, 3]


def test_postgres_refusing_one_row_keeps_the_others(classifier, postgres_url):
    with running(classifier, store=postgres_url) as client:
        store = client.app.state.service.store
        before = store.count()
        response = client.post(
            "/v1/classify/batch",
            json={"items": [{"text": "too expensive"}, {"text": "nul \u0000 inside"}, {"text": "too slow"}]},
        )
        assert response.status_code == 200
        store.flush()
        assert store.count() == before + 2  # PostgreSQL text cannot hold NUL; that row alone is lost, and counted
        assert "reason_classifier_store_lost_rows_total 1.0" in client.get("/metrics").text

"""Storage on PostgreSQL: a throwaway cluster from Debian's `postgresql` package under /tmp.

Skipped, with the reason, when the package is not installed or the cluster cannot start (CI installs
it: see .ci/run). As root the cluster runs as the `postgres` user the package creates, since
PostgreSQL refuses to run as root.
"""

from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time
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


class Cluster(str):
    """The cluster's URL, which can also stop and start the cluster (a database that goes away and comes back)."""

    def __new__(cls, url: str, control: list[str], data: Path, options: str, log: Path) -> Cluster:
        cluster = super().__new__(cls, url)
        cluster._control, cluster._data, cluster._options, cluster._log = control, data, options, log
        return cluster

    def stop(self) -> None:
        subprocess.run(
            _as_cluster_user([*self._control, "-D", str(self._data), "-m", "fast", "-w", "stop"]),
            check=True,
            capture_output=True,
            timeout=60,
        )

    def start(self) -> None:
        subprocess.run(
            _as_cluster_user(
                [
                    *self._control,
                    "-D",
                    str(self._data),
                    "-l",
                    str(self._log),
                    "-w",
                    "-t",
                    "60",
                    "start",
                    "-o",
                    self._options,
                ]
            ),
            check=True,
            capture_output=True,
            timeout=90,
        )


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
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        cluster = Cluster(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", [str(binaries / "pg_ctl")], data, options, log
        )
        cluster.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = getattr(error, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        pytest.skip(f"the throwaway PostgreSQL cluster did not start: {error} {detail.decode(errors='replace')[-300:]}")
    try:
        yield cluster
    finally:
        subprocess.run(
            _as_cluster_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)


def test_postgres_stores_every_concurrent_answer(classifier, postgres_url, tmp_path):
    texts = ["It's simply too expensive for us", "support never answered my tickets", "太贵了", "the app crashes daily"]
    with running(classifier, store=postgres_url, store_spool=str(tmp_path / "spool")) as client:
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


def test_postgres_refusing_one_row_keeps_the_others(classifier, postgres_url, tmp_path):
    with running(classifier, store=postgres_url, store_spool=str(tmp_path / "spool")) as client:
        store = client.app.state.service.store
        before = store.count()
        response = client.post(
            "/v1/classify/batch",
            json={"items": [{"text": "too expensive"}, {"text": "nul \u0000 inside"}, {"text": "too slow"}]},
        )
        assert response.status_code == 200
        store.flush()
        assert store.count() == before + 2  # PostgreSQL text cannot hold NUL: that row alone is set aside, and counted
        assert "reason_classifier_store_rejected_rows_total 1.0" in client.get("/metrics").text
    kept = [json.loads(line) for line in (tmp_path / "spool" / "rejected.jsonl").read_text().splitlines()]
    assert [row["row"]["text"] for row in kept] == ["nul \u0000 inside"]


def test_postgres_restarting_loses_no_acknowledged_row(classifier, postgres_url, tmp_path):
    """Observed: a PostgreSQL restart of 16 s lost 381 acknowledged rows."""
    with running(
        classifier, store=postgres_url, store_spool=str(tmp_path / "spool"), store_retry_max_seconds=0.2
    ) as client:
        store = client.app.state.service.store
        before = store.count()
        postgres_url.stop()
        try:
            statuses = [
                client.post("/v1/classify", json={"text": "too expensive", "customer_id": f"restart-{i}"}).status_code
                for i in range(100)
            ]
            deadline = time.monotonic() + 10
            while store.up is not False:
                assert time.monotonic() < deadline
                time.sleep(0.01)
            assert client.get("/readyz").json()["store"]["status"] == "retrying"
        finally:
            postgres_url.start()
        assert statuses == [200] * 100
        assert store.flush(timeout=20)
        stored = [row["customer_id"] for row in store.rows() if (row["customer_id"] or "").startswith("restart-")]
        assert store.count() == before + 100
    assert sorted(stored) == sorted(f"restart-{i}" for i in range(100))

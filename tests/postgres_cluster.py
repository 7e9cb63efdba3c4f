"""A throwaway PostgreSQL cluster from Debian's `postgresql` package under /tmp, for tests and benchmarks.

As root the cluster runs as the `postgres` user the package creates, since PostgreSQL refuses to run
as root. `fsync=off`: nothing here outlives the cluster.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class ClusterUnavailable(Exception):
    """PostgreSQL is not installed here, or the cluster did not start; the message says which."""


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


@contextmanager
def throwaway_cluster(settings: dict[str, str] | None = None) -> Iterator[Cluster]:
    """A started cluster (its URL), stopped and deleted at exit; `settings` are extra server settings
    (`-c name=value`). Raises `ClusterUnavailable` when it cannot be had."""
    binaries = _binaries()
    if binaries is None:
        raise ClusterUnavailable(
            "PostgreSQL is not installed (apt-get install -y postgresql); the SQLite tests still run"
        )
    if os.geteuid() == 0 and (
        shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode != 0
    ):
        raise ClusterUnavailable("running as root without a 'postgres' user to run the throwaway cluster as")
    folder = Path(tempfile.mkdtemp(prefix="rc-postgres-"))
    data = folder / "data"
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = folder / "server.log"
    extra = "".join(f" -c {name}={value}" for name, value in (settings or {}).items())
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
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off{extra}"
        cluster = Cluster(
            f"postgresql://postgres@127.0.0.1:{port}/postgres", [str(binaries / "pg_ctl")], data, options, log
        )
        cluster.start()
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired, OSError) as error:
        detail = getattr(error, "stderr", b"") or b""
        shutil.rmtree(folder, ignore_errors=True)
        raise ClusterUnavailable(
            f"the throwaway PostgreSQL cluster did not start: {error} {detail.decode(errors='replace')[-300:]}"
        ) from None
    try:
        yield cluster
    finally:
        subprocess.run(
            _as_cluster_user([str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"]),
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(folder, ignore_errors=True)

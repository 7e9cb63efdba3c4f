"""Writing files so that a reader sees the old file or the whole new one, never a half-written one.

The temporary file carries the host and process that write it (`.NAME.HOST.PID.RANDOM.partial`),
so a later run can tell a leftover of a killed run (`kill -9` cannot be caught) from the file of a
run still going, and remove only the leftover.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

PARTIAL_SUFFIX = ".partial"


class Terminated(SystemExit):
    """SIGTERM arrived while a file was being written: unwinds like Ctrl-C, so temporary files are removed."""

    def __init__(self) -> None:
        super().__init__(128 + signal.SIGTERM)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _host() -> str:
    """The host name as a file-name part (no dots, so the name splits unambiguously)."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", socket.gethostname())[:64] or "host"


def _prefix(path: Path) -> str:
    return f".{path.name}."


def temporary_beside(path: Path) -> Path:
    """An empty temporary file in `path`'s folder (same file system, so renaming it onto `path` is atomic),
    with the permissions a plainly created file would get rather than mkstemp's owner-only ones."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(
        prefix=f"{_prefix(path)}{_host()}.{os.getpid()}.", suffix=PARTIAL_SUFFIX, dir=path.parent
    )
    os.close(handle)
    os.chmod(name, 0o666 & ~_umask())
    return Path(name)


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files that runs on this host left beside `path` when they were killed.

    A file is stale when the process named in it is gone; files of other hosts (a shared folder)
    and of live processes are left alone."""
    if not path.parent.is_dir():
        return []
    removed = []
    host = _host()
    prefix = _prefix(path)
    for candidate in path.parent.iterdir():
        name = candidate.name
        if not (name.startswith(prefix) and name.endswith(PARTIAL_SUFFIX)):
            continue
        parts = name[len(prefix) : -len(PARTIAL_SUFFIX)].split(".")
        if len(parts) != 3 or parts[0] != host or not parts[1].isdigit() or _alive(int(parts[1])):
            continue
        with contextlib.suppress(FileNotFoundError):
            candidate.unlink()
            removed.append(candidate)
    return removed


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


@contextlib.contextmanager
def terminate_cleanly() -> Iterator[None]:
    """Inside this block SIGTERM raises `Terminated` instead of ending the process on the spot, so `finally`
    blocks and context managers remove temporary files. Only where Python allows it: in the main thread,
    when nobody else has set a SIGTERM handler."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signal.SIGTERM) not in (
        signal.SIG_DFL,
        None,
    ):
        yield
        return

    def _raise(signum: int, frame: object) -> None:
        raise Terminated()

    previous = signal.signal(signal.SIGTERM, _raise)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def write_bytes_atomically(path: Path, data: bytes) -> None:
    temporary = temporary_beside(path)
    try:
        temporary.write_bytes(data)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise

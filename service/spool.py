"""The spool: a local append-only journal of classified answers on their way to the database.

A row is appended here before the request is answered, and the database is written from here.
So an answer the service acknowledged is on local disk even while the database is away, locked,
full or unwritable, and survives SIGTERM and `kill -9`: at the next start, the rows a previous
process left are replayed (rows it may already have written are recognised by request id and
item, so a replay never duplicates one).

Layout: one folder; each process appends to its own segment `<time_ns>-<pid>.jsonl`, one JSON row
per line, and holds an exclusive `flock` on it. A segment nobody holds a lock on was left by a
process that ended: it is replayed by the first process that takes its lock (so two workers never
replay the same one), then deleted. A segment is deleted once all its rows are in the database;
rows the database refuses on their own (PostgreSQL and a NUL character) go to `rejected.jsonl`
in the same folder, never silently away.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

ROTATE_BYTES = 1 << 20
"""A segment whose rows are all written is replaced by a new one once it holds this many bytes."""

REJECTED = "rejected.jsonl"


class SpoolError(OSError):
    """The spool cannot be written (full disk, no permission); the message names its folder."""


def encode(rows: list[dict[str, Any]]) -> bytes:
    return b"".join(json.dumps(row, default=_iso, separators=(",", ":")).encode() + b"\n" for row in rows)


def decode(line: bytes) -> dict[str, Any]:
    row = json.loads(line)
    row["created_at"] = datetime.fromisoformat(row["created_at"])
    return row


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot spool a {type(value).__name__}")


class Segment:
    """One spool file, open (read and append) and locked by this process."""

    def __init__(self, path: Path, fd: int) -> None:
        self.path, self.fd = path, fd
        self.size = os.fstat(fd).st_size
        """Bytes appended so far; always a line boundary (appends are whole lines, under the spool's lock)."""
        self.consumed = 0
        """Bytes at the start whose rows are in the database (or rejected)."""

    def read_lines(self, end: int, limit_rows: int, limit_bytes: int = 4 << 20) -> list[tuple[bytes, int]]:
        """Up to `limit_rows` complete lines between `consumed` and `end`, each with the offset just after it."""
        end = min(end, self.consumed + limit_bytes)
        data = os.pread(self.fd, end - self.consumed, self.consumed)
        lines: list[tuple[bytes, int]] = []
        start = 0
        while len(lines) < limit_rows:
            newline = data.find(b"\n", start)
            if newline < 0:
                break
            lines.append((data[start:newline], self.consumed + newline + 1))
            start = newline + 1
        return lines

    def remove(self) -> None:
        self.path.unlink(missing_ok=True)  # before the lock goes, so nobody replays it meanwhile
        os.close(self.fd)


class Spool:
    """This process's segment (appended to by requests, read by the store's writer) and the
    segments earlier processes left (read first). `append` is thread-safe and never partial."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.left_over = [s for p in sorted(self.folder.glob("*-*.jsonl")) if (s := _take(p)) is not None]
            self.current = self._new_segment()
        except OSError as error:
            reason = error.strerror or error
            raise SpoolError(error.errno, f"cannot write the spool folder {self.folder}: {reason}") from None
        self._lock = threading.Lock()
        self.left_over_rows = sum(_count_lines(s) for s in self.left_over)
        self.appended_rows = 0
        self.done_rows = 0
        """Rows of this process's segment(s) written to the database or rejected."""

    @property
    def pending_rows(self) -> int:
        return self.left_over_rows + self.appended_rows - self.done_rows

    def append(self, rows: list[dict[str, Any]]) -> tuple[Segment, int]:
        """Append `rows` as whole lines, or nothing at all and `SpoolError`; returns the segment and the offset
        just after them (they are written to the database once its `consumed` reaches it)."""
        data = encode(rows)
        with self._lock:
            segment = self.current
            try:
                written = 0
                while written < len(data):
                    written += os.write(segment.fd, data[written:])
            except OSError as error:
                os.ftruncate(segment.fd, segment.size)  # no torn line for the reader
                reason = error.strerror or error
                raise SpoolError(error.errno, f"cannot append to the spool {segment.path}: {reason}") from None
            segment.size += len(data)
            self.appended_rows += len(rows)
            return segment, segment.size

    def current_end(self) -> tuple[Segment, int]:
        """The current segment and how far it is written (a line boundary)."""
        with self._lock:
            return self.current, self.current.size

    def rotate_if_done(self) -> None:
        """Start a new segment once every row of the current one is written and it is large."""
        with self._lock:
            segment = self.current
            if segment.consumed < segment.size or segment.size < ROTATE_BYTES:
                return
            self.current = self._new_segment()
            segment.remove()

    def close(self) -> None:
        """Release the segments; each is deleted if all its rows are written, else kept for the next start."""
        with self._lock:
            for segment in [*self.left_over, self.current]:
                if segment.consumed >= segment.size:
                    segment.remove()
                else:
                    os.close(segment.fd)

    def reject(self, line: bytes, reason: str) -> None:
        """Keep a row the database refuses on its own, with the reason (an exception's name)."""
        record = json.dumps({"reason": reason, "at": time.time()}).encode()
        with open(self.folder / REJECTED, "ab") as file:
            file.write(record[:-1] + b',"row":' + line + b"}\n")

    def _new_segment(self) -> Segment:
        path = self.folder / f"{time.time_ns():020d}-{os.getpid()}.jsonl"
        fd = os.open(path, os.O_CREAT | os.O_RDWR | os.O_APPEND | os.O_CLOEXEC, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return Segment(path, fd)


def _take(path: Path) -> Segment | None:
    """A segment left by a process that ended, locked for this one; None if a live process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return Segment(path, fd)


def _count_lines(segment: Segment) -> int:
    return sum(chunk.count(b"\n") for chunk in _chunks(segment.fd, segment.size))


def _chunks(fd: int, size: int, step: int = 1 << 20) -> Iterator[bytes]:
    for offset in range(0, size, step):
        yield os.pread(fd, min(step, size - offset), offset)

"""Faults for the store tests: a database file nobody can write, a full disk; skipped where they cannot be made."""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest


@contextlib.contextmanager
def unwritable(path: Path) -> Iterator[None]:
    """`path` cannot be opened for writing, even by root: `chattr +i` as root (root ignores modes), else mode 0444."""
    if os.geteuid() == 0:
        chattr = shutil.which("chattr")
        if chattr is None or subprocess.run([chattr, "+i", str(path)], capture_output=True).returncode:
            pytest.skip("running as root where `chattr +i` is not available: cannot make a file unwritable")
        try:
            yield
        finally:
            subprocess.run(["chattr", "-i", str(path)], check=True)
    else:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)


@contextlib.contextmanager
def small_disk(size: str = "2m") -> Iterator[Path]:
    """A folder on its own small tmpfs, so it can be filled without filling the machine's disk."""
    folder = Path(tempfile.mkdtemp(prefix="rc-small-disk-"))
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True)
    if mounted.returncode:
        folder.rmdir()
        pytest.skip(f"cannot mount a small tmpfs to fill: {mounted.stderr.decode(errors='replace').strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def fill(folder: Path) -> Path:
    """Fill `folder`'s file system to the last byte; delete the returned file to free it."""
    filler = folder / "filler"
    with open(filler, "wb", buffering=0) as file:
        for block in (65536, 1):
            with contextlib.suppress(OSError):
                while file.write(b"\0" * block):
                    pass
    return filler

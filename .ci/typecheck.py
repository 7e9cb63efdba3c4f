#!/usr/bin/env python3
"""mypy on the package as it installs: `reason_classifier` with training/, service/ and cli/ inside it.

mypy cannot follow setuptools' package-dir mapping: it names a module after its folder (training/train.py
would be `training.train`), and the editable install maps the folders with an import hook that mypy
does not run. So this lays out the installed package as a tree of symbolic links in build/typecheck/,
from pyproject.toml's own `packages` and `package-dir` (one source of truth), and runs mypy there;
the paths in mypy's messages are turned back into the repository's paths. Arguments go to mypy.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TREE = ROOT / "build" / "typecheck"


def package_folders() -> dict[str, str]:
    """Each installed package's folder in the repository, relative to the root."""
    setuptools = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    mapping: dict[str, str] = setuptools.get("package-dir", {})
    folders = {}
    for package in setuptools["packages"]:
        parts = package.split(".")
        for i in range(len(parts), 0, -1):
            if ".".join(parts[:i]) in mapping:
                folders[package] = "/".join([mapping[".".join(parts[:i])], *parts[i:]])
                break
        else:
            folders[package] = "/".join(parts)
    return folders


def lay_out(folders: dict[str, str]) -> None:
    """Link every module of every package into TREE at its installed place; stale links are removed."""
    wanted = {}
    for package, folder in folders.items():
        for source in sorted((ROOT / folder).glob("*.py")):
            wanted[TREE.joinpath(*package.split("."), source.name)] = source
    for link in TREE.rglob("*.py"):
        if link not in wanted:
            link.unlink()
    for link, source in wanted.items():
        link.parent.mkdir(parents=True, exist_ok=True)
        if not link.is_symlink() or Path(os.readlink(link)) != source:
            link.unlink(missing_ok=True)
            link.symlink_to(source)


def main() -> int:
    folders = package_folders()
    lay_out(folders)
    command = [
        sys.executable,
        "-m",
        "mypy",
        "--config-file",
        str(ROOT / "pyproject.toml"),
        "--cache-dir",
        str(ROOT / ".mypy_cache"),
        "-p",
        "reason_classifier",
        *sys.argv[1:],
    ]
    completed = subprocess.run(command, cwd=TREE, stdout=subprocess.PIPE, text=True)
    # The longest installed path first, so that reason_classifier/training/ is not read as the library's.
    renames = sorted(
        ((package.replace(".", "/") + "/", folder + "/") for package, folder in folders.items()),
        key=lambda pair: -len(pair[0]),
    )
    for line in completed.stdout.splitlines():
        for installed, folder in renames:
            if line.startswith(installed):
                line = folder + line[len(installed) :]
                break
        print(line)
    return completed.returncode


if __name__ == "__main__":
    sys.exit(main())

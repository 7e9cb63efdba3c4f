"""Data files installed with the package (the shipped model, the service's offers), found with importlib.resources."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path


def package_path(package: str, *parts: str) -> Path:
    """The file-system path of a data file or folder installed with `package`.

    Regular and editable installs put package data on the file system, and its readers need a real path
    (a model folder is checksummed file by file; error messages name the file), so a zipped install is
    refused here rather than failing later with a confusing message.
    """
    resource = files(package).joinpath(*parts)
    if not isinstance(resource, Path):
        raise RuntimeError(f"{package}: {'/'.join(parts)} is not on the file system; install the package unzipped")
    return resource

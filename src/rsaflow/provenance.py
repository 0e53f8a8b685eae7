"""Provenance recorded in every artifact: what made it, from what, with which code."""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import platform
from pathlib import Path

import rsaflow


def code_digest(paths) -> str:
    """sha256 over the named source files (sorted by file name, then content)."""
    h = hashlib.sha256()
    for path in sorted(Path(p) for p in paths):
        h.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()


def file_sha256(path) -> str:
    """sha256 of a file's bytes, read in 1 MiB blocks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def versions(*packages: str) -> dict:
    """Installed versions of ``packages`` plus Python's and rsaflow's (looked up once per process
    and set of packages: a job writing many products reads the package metadata once)."""
    return dict(_versions(packages))


@functools.lru_cache(maxsize=32)
def _versions(packages: tuple) -> dict:
    out = {"python": platform.python_version(), "rsaflow": rsaflow.__version__}
    for name in packages:
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def base_attrs(spec: dict, code) -> dict:
    """The attributes every artifact carries: its config slice, code digest and versions.

    code: the rule's code digest (a sha256 string, as the workflow passes it), or its source files.
    """
    return {
        "config": spec,
        "code_sha256": code if isinstance(code, str) else code_digest(code),
        "versions": versions("numpy", "scipy", "h5py"),
    }

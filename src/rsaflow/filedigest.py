"""Content digests of many files, fast on reruns: per-file sha256s cached by file identity.

The image folder of a ``folder`` stimulus source is tracked by one digest of every image's path
and bytes (a param of the stimuli rule, not thousands of inputs). Hashing 10,000 images on every
dry run would be slow, so each file's sha256 is cached under the workflow's ``.snakemake/rsaflow/``
and reused while the file's identity is unchanged: its path, size, modification time, *status
change* time (ctime) and inode. A ``touch`` changes the mtime, so the file is hashed again, but
its bytes and so the digest stay the same: nothing reruns. An overwrite that keeps the size and
sets the old mtime back (``touch -r``) still changes the ctime, which no user tool can set, so
the file is hashed again and the new bytes change the digest. Standard library only (DAG-build
time code).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

from rsaflow import atomic

#: The workflow's cache folder (relative to its working directory): the DAG build's digests and
#: the jobs that reuse them (rsaflow.jobs.external_rdm) share it.
CACHE_DIR = Path(".snakemake") / "rsaflow"
#: The cache's file name under the cache folder.
CACHE_FILE = "file-sha256.json"
#: Version of the cache's layout; a cache of another version is ignored.
CACHE_VERSION = 1


def file_sha256(path, bufsize: int = 1 << 20) -> str:
    """sha256 (hex) of the file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(bufsize), b""):
            h.update(block)
    return h.hexdigest()


def _identity(st: os.stat_result) -> list[int]:
    return [st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino]


def load_cache(path: Path, version: int = CACHE_VERSION) -> dict:
    """The ``files`` mapping of a JSON cache written by :func:`save_cache`; empty if the file is
    missing, unreadable or of another layout ``version``."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data.get("files", {}) if isinstance(data, dict) and data.get("version") == version else {}


def save_cache(path: Path, files: dict, version: int = CACHE_VERSION) -> None:
    """Write ``{"version": version, "files": files}`` to ``path`` atomically."""
    atomic.write_text(path, json.dumps({"version": version, "files": files}, separators=(",", ":")))


def file_digests(paths, cache_dir=None) -> dict[str, str]:
    """``{path: sha256 of its bytes}`` for ``paths``, reading only files whose identity (size,
    mtime, ctime, inode) differs from the cache's record under ``cache_dir`` (None: no cache).
    The cache is updated atomically when anything was hashed."""
    cache_path = Path(cache_dir) / CACHE_FILE if cache_dir is not None else None
    cache = load_cache(cache_path) if cache_path is not None else {}
    out, changed = {}, False
    for path in paths:
        key = os.path.abspath(path)
        ident = _identity(os.stat(path))
        hit = cache.get(key)
        if hit is not None and hit[:4] == ident:
            out[str(path)] = hit[4]
            continue
        sha = file_sha256(path)
        cache[key] = [*ident, sha]
        out[str(path)] = sha
        changed = True
    if changed and cache_path is not None:
        save_cache(cache_path, cache)
    return out


def content_digest(paths, root=None, cache_dir=None) -> str:
    """sha256 over (path relative to ``root``, sha256 of the bytes) of every file, in sorted path
    order: changes when a file's bytes change or a file is added, removed or renamed; not when a
    file is only touched. ``paths`` outside ``root`` (or with ``root`` None) enter as given."""
    digests = file_digests(sorted(str(p) for p in paths), cache_dir)
    h = hashlib.sha256()
    for path, sha in digests.items():
        rel = os.path.relpath(path, root) if root is not None else path
        h.update(f"{Path(rel).as_posix()}\0{sha}\n".encode())
    return h.hexdigest()

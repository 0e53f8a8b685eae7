"""A content-addressed store of per-layer products, so that unchanged work is never redone.

Snakemake has no early cutoff: when a model's extraction reruns (a layer was added, say), every
job downstream of its outputs runs again in the same invocation, even for files rewritten byte
for byte; and it deletes a job's old outputs before the job starts. So a job cannot simply keep
its old output. Instead each per-layer job (RDM, CKA Gram, external RDM, ...) names its product by
a **key**, the sha256 of everything the product is computed from::

    key = sha256(canonical JSON of {"kind": ..., "inputs": data digests of its inputs,
                                    "attrs": every attribute the product will carry
                                             (config slice, code digest, library versions, ...)})

and first looks the key up under ``results/store/<kind>/<key[:2]>/<key>.h5``. Found: the object is
hard-linked (copied where the filesystem has no hard links) to the job's output, and the job logs
``reused <kind> <key>``. Not found: the job computes, writes its output atomically, links it into
the store, and logs ``computed <kind> <key>``. Because the key covers every attribute and the data
digest of every input, a reused file is byte-identical to what computing would write.

Works on a cluster's shared filesystem: objects appear by an atomic rename of a complete file,
two jobs racing on one key both produce the same bytes, and readers never see a partial object.
Pruning: :func:`prune` removes objects that no file under ``results/`` links to any more (link
count 1), or that are older than a given age (for stores on filesystems without hard links);
``rsaflow store`` wraps both. Pure standard library.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path
from typing import Callable

#: The store's folder, relative to the workflow's working directory.
STORE_DIR = Path("results") / "store"

log = logging.getLogger(__name__)


def make_key(kind: str, inputs: dict, attrs: dict) -> str:
    """sha256 (hex) of the canonical JSON of ``{"kind", "inputs", "attrs"}``.

    inputs: data digests of what the product is computed from (e.g. ``{"activations": sha256}``);
    attrs: everything else the product depends on or records (config slice, code digest, versions).
    """
    text = json.dumps({"kind": kind, "inputs": inputs, "attrs": attrs}, sort_keys=True, separators=(",", ":"),
                      default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def store_root(root: Path | str | None = None) -> Path:
    """``root``, or the default :data:`STORE_DIR` (looked up at call time, so tests can move it)."""
    return Path(root) if root is not None else STORE_DIR


def object_path(kind: str, key: str, root: Path | str | None = None) -> Path:
    """Where the object of ``key`` lives: ``<root>/<kind>/<key[:2]>/<key>.h5``."""
    return store_root(root) / kind / key[:2] / f"{key}.h5"


def _link_or_copy(src: Path, dest: Path) -> None:
    """Place ``src``'s bytes at ``dest`` atomically: hard link, else copy, to a temp name then rename."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(f".{dest.name}.link-{os.getpid()}")
    try:
        try:
            os.link(src, tmp)
        except OSError:  # no hard links here (another filesystem, or not supported): copy
            shutil.copyfile(src, tmp)
        os.replace(tmp, dest)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def fetch(kind: str, key: str, dest, root: Path | str | None = None) -> bool:
    """Put the stored object of ``key`` at ``dest``; False (and nothing written) if there is none.

    The file's modification time is set to now, so that Snakemake does not take the output for
    older than its freshly rewritten inputs (with a hard link the object's time changes too).
    """
    obj = object_path(kind, key, root)
    if not obj.is_file():
        return False
    dest = Path(dest)
    _link_or_copy(obj, dest)
    os.utime(dest)
    return True


def put(kind: str, key: str, src, root: Path | str | None = None) -> Path:
    """Add the complete file ``src`` to the store as the object of ``key``; return the object path."""
    obj = object_path(kind, key, root)
    if not obj.exists():
        _link_or_copy(Path(src), obj)
    return obj


def produce(kind: str, key: str, dest, compute: Callable[[], object], root: Path | str | None = None) -> bool:
    """Reuse the product of ``key`` at ``dest`` or run ``compute()`` (which writes ``dest``) and store it.

    Logs one line, ``reused <kind> <key>`` or ``computed <kind> <key> in <s> s``. Returns True if
    it computed.
    """
    if fetch(kind, key, dest, root):
        log.info("reused %s %s (from %s)", kind, key, object_path(kind, key, root))
        return False
    start = time.perf_counter()
    compute()
    put(kind, key, dest, root)
    log.info("computed %s %s in %.2f s", kind, key, time.perf_counter() - start)
    return True


def objects(root: Path | str | None = None) -> list[Path]:
    """Every object file in the store (sorted)."""
    root = store_root(root)
    return sorted(p for p in root.glob("*/*/*.h5") if p.is_file()) if root.is_dir() else []


def prune(root: Path | str | None = None, older_than_days: float | None = None, dry_run: bool = False) -> list[Path]:
    """Remove objects no result links to any more, or (``older_than_days``) those not used for that long.

    Without ``older_than_days``, an object is unreferenced when its link count is 1 (only the store
    holds it): right where the store hard-links, which is the normal case. On filesystems where it
    had to copy, every object has link count 1: pass ``older_than_days`` there instead (the time of
    last use, since every reuse touches the object). Returns the removed (or, dry run, removable) paths.
    """
    now = time.time()
    gone = []
    for obj in objects(root):
        st = obj.stat()
        if older_than_days is None:
            stale = st.st_nlink <= 1
        else:
            stale = now - st.st_mtime > older_than_days * 86400
        if stale:
            gone.append(obj)
            if not dry_run:
                obj.unlink(missing_ok=True)
    return gone


def summary(root: Path | str | None = None) -> dict:
    """Objects per kind with their total bytes, and how many no result links to."""
    out: dict = {}
    for obj in objects(root):
        st = obj.stat()
        entry = out.setdefault(obj.parent.parent.name, {"objects": 0, "bytes": 0, "unreferenced": 0})
        entry["objects"] += 1
        entry["bytes"] += st.st_size
        entry["unreferenced"] += st.st_nlink <= 1
    return out


#: Under the store: ``rows/<kind>/<family[:2]>/<family>/<key>``, empty files listing which objects
#: of ``kind`` share a *family* (a product key without its inputs' stimulus set): where a product of
#: a grown stimulus set looks for stored rows (rsaflow.rdm_grow). Not objects: pruning leaves them,
#: and a listed key whose object is gone is skipped.
ROWS_DIR = "rows"


def family_dir(kind: str, family: str, root: Path | str | None = None) -> Path:
    return store_root(root) / ROWS_DIR / kind / family[:2] / family


def index_family(kind: str, family: str, key: str, root: Path | str | None = None) -> None:
    """List the object of ``key`` under ``family`` (idempotent)."""
    folder = family_dir(kind, family, root)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / key).touch()


def family_objects(kind: str, family: str, root: Path | str | None = None, limit: int = 8) -> list[Path]:
    """The stored objects listed under ``family`` that still exist, most recently used first (at most ``limit``)."""
    folder = family_dir(kind, family, root)
    if not folder.is_dir():
        return []
    found = [object_path(kind, p.name, root) for p in folder.iterdir() if p.is_file()]
    found = [p for p in found if p.is_file()]
    return sorted(found, key=lambda p: p.stat().st_mtime, reverse=True)[:limit]

"""Per-stimulus reuse of activations: a layer's rows kept in the content store in shards.

A model's extraction (:mod:`rsaflow.extract`) does not key its work by the whole stimulus set
but by each image: a layer's activations for one image depend only on the image's pixels and on
the model, so they are kept under

    results/store/shards/<layer key[:2]>/<layer key>/<shard key>.h5

- **layer key** (:func:`layer_key`): sha256 of every attribute the layer's activation file
  carries that does not depend on the stimulus set: its config slice (model, arch, weights, seed,
  node, reduce, batch size, device, precision, ...), the weights' provenance (``weights_sha256``
  of a checkpoint or of the downloaded file), the source and its library version, the resolved
  graph node, the device, the rule's code digest and the library versions, i.e. everything but
  ``stimulus_digest``, ``data_sha256`` and ``output_taken`` (known only after a forward pass;
  recorded in the shard and copied from there).
- **image digest** (:func:`image_digests`): sha256 of one stimulus as the stimuli job stores it,
  ``results/stimuli/stimuli.h5`` ``images[i]``: ``"<dtype> <shape>\\n"`` then its raw uint8
  bytes (C order). A changed image file changes its decoded pixels and so its digest; a renamed
  or moved file with the same pixels keeps it. Labels, ids and positions are not part of it:
  they do not enter the network.
- **shard**: an HDF5 file with ``image_digests`` (S,) strings and ``activations`` (S, M) float32,
  the rows of those images, plus the layer's attributes; its key is the sha256 of its digests
  in order. A shard is written to a temporary name and renamed into place complete
  (:func:`rsaflow.h5io.atomic_h5`), so a killed job leaves no shard; a file that does not read
  as a complete shard is ignored (logged) and its images are computed again.

The index of a layer key is the listing of its folder (:class:`ShardIndex`). A run forwards only
the images no shard holds for some configured layer, writes one new shard per layer for them and
assembles every layer file in the stimulus set's order from the shards.

References: each extraction writes ``results/activations/<model>/.shards.json``, the shards its
layer files were assembled from (a file inside the job's output folder, so it goes when the
folder goes). :func:`prune` removes the shards that no such manifest names (or, with
``older_than_days``, that no run used for that long: every use touches a shard's mtime).
Pure NumPy and h5py: no torch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from pathlib import Path

import h5py
import numpy as np

from rsaflow import h5io

log = logging.getLogger(__name__)

#: The ``rsaflow_kind`` of a shard file.
KIND = "activation_shard"
#: The store's folder, relative to the workflow's working directory: the folder of
#: :data:`rsaflow.store.STORE_DIR`, named here (not imported) so that the extraction's code, and
#: so every layer key, does not change with the store module's code.
STORE_DIR = Path("results") / "store"
#: The store's sub-folder of shards.
SHARDS = "shards"
#: The manifest of the shards an activation folder was assembled from.
MANIFEST = ".shards.json"
#: Attributes of a layer file that are not part of its layer key.
NOT_KEYED = ("stimulus_digest", "data_sha256", "output_taken")


def image_digests(images, block: int = 256) -> list[str]:
    """sha256 (hex) of each image of ``images`` ((N, ...) array or HDF5 dataset): the text
    ``"<dtype> <shape>\\n"`` (numpy's dtype string, the image's shape without N), then its bytes."""
    out = []
    for lo in range(0, images.shape[0], block):
        chunk = np.ascontiguousarray(images[lo : lo + block])
        head = f"{chunk.dtype.str} {tuple(chunk.shape[1:])}\n".encode()
        for row in chunk:
            h = hashlib.sha256(head)
            h.update(row.data)
            out.append(h.hexdigest())
    return out


def layer_key(attrs: dict) -> str:
    """The layer key of a layer file's attributes (those in :data:`NOT_KEYED` left out): sha256
    of the canonical JSON of ``{"kind": KIND, "attrs": ...}`` (sorted keys, no spaces)."""
    kept = {k: v for k, v in attrs.items() if k not in NOT_KEYED}
    text = json.dumps({"kind": KIND, "attrs": kept}, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def shard_key(digests) -> str:
    """sha256 of a shard's image digests, in order (one per line)."""
    return hashlib.sha256("\n".join(digests).encode()).hexdigest()


def store_root(root=None) -> Path:
    """``root``, or :data:`STORE_DIR` (looked up at call time, so tests can move it)."""
    return Path(root) if root is not None else STORE_DIR


def shards_root(root=None) -> Path:
    return store_root(root) / SHARDS


def layer_dir(key: str, root=None) -> Path:
    """The folder of the shards of layer ``key``."""
    return shards_root(root) / key[:2] / key


def all_shards(root=None) -> list[Path]:
    """Every shard file of the store (sorted); temporary files are not shards."""
    base = shards_root(root)
    return sorted(p for p in base.glob("*/*/*.h5") if p.is_file() and not p.name.startswith(".")) \
        if base.is_dir() else []


class ShardIndex:
    """The shards of one layer key: which image digest is in which shard, at which row.

    Shards are read in sorted order and the first one holding a digest serves it. A file that
    is not a complete shard of this key (unreadable, another kind, lengths that disagree) is
    skipped with a warning, never used.
    """

    def __init__(self, key: str, root=None):
        self.key, self.root = key, root
        self.where: dict[str, tuple[Path, int]] = {}
        self.attrs: dict = {}
        self._open: dict = {}
        folder = layer_dir(key, root)
        paths = sorted(p for p in folder.glob("*.h5") if not p.name.startswith(".")) if folder.is_dir() else []
        for path in paths:
            self._add(path)

    def _add(self, path: Path) -> None:
        try:
            with h5py.File(path, "r") as f:
                ok = (f.attrs.get("rsaflow_kind") == KIND and f.attrs.get("layer_key") == self.key
                      and "activations" in f and "image_digests" in f)
                digests = h5io.texts(f["image_digests"][()]) if ok else []
                ok = ok and f["activations"].shape[0] == len(digests) == int(f.attrs.get("n_images", -1)) \
                    and shard_key(digests) == path.stem
                attrs = h5io.read_attrs(f) if ok else {}
        except (OSError, KeyError, ValueError) as exc:
            log.warning("ignoring %s: not a readable shard (%s)", path, exc)
            return
        if not ok:
            log.warning("ignoring %s: not a complete shard of layer key %s", path, self.key)
            return
        self.attrs = self.attrs or attrs
        for row, digest in enumerate(digests):
            self.where.setdefault(digest, (path, row))

    def add(self, path: Path) -> None:
        """Index a shard just written."""
        self._add(Path(path))

    def __contains__(self, digest: str) -> bool:
        return digest in self.where

    def rows(self, digests: list[str]) -> np.ndarray:
        """The (len(digests), M) float32 rows of ``digests``, in that order (all must be held)."""
        by_shard: dict[Path, list[tuple[int, int]]] = {}
        for i, d in enumerate(digests):
            path, row = self.where[d]
            by_shard.setdefault(path, []).append((row, i))
        out = None
        for path, pairs in sorted(by_shard.items()):
            rows = np.array(sorted({r for r, _ in pairs}))
            dset = self._dataset(path)
            lo, hi = int(rows[0]), int(rows[-1]) + 1
            block = dset[lo:hi][rows - lo] if hi - lo <= 4 * len(rows) else dset[rows]
            if out is None:
                out = np.empty((len(digests), dset.shape[1]), dtype=np.float32)
            pos = {int(r): k for k, r in enumerate(rows)}
            for r, i in pairs:
                out[i] = block[pos[r]]
        return out if out is not None else np.empty((0, 0), dtype=np.float32)

    def _dataset(self, path: Path):
        """The shard's ``activations``, its file kept open (with its chunk cache) until :meth:`close`."""
        if path not in self._open:
            self._open[path] = h5py.File(path, "r", rdcc_nbytes=16 * 2**20)
        return self._open[path]["activations"]

    def close(self) -> None:
        for f in self._open.values():
            f.close()
        self._open.clear()

    def used(self, digests) -> list[Path]:
        """The shards that serve ``digests`` (sorted), their mtimes set to now (last use)."""
        paths = sorted({self.where[d][0] for d in digests})
        for p in paths:
            try:
                os.utime(p)
            except OSError:
                pass
        return paths


def write_manifest(folder, used: dict[str, list[Path]], root=None) -> None:
    """Record in ``folder/.shards.json`` the shards (relative to the shards root) each layer used."""
    base = shards_root(root).resolve()
    text = json.dumps({label: sorted(str(Path(p).resolve().relative_to(base)) for p in paths)
                       for label, paths in sorted(used.items())}, indent=1, sort_keys=True)
    (Path(folder) / MANIFEST).write_text(text + "\n")


def referenced(root=None, results=None) -> set[Path]:
    """The shards named by a manifest under ``results/activations/*/`` (``results`` defaults to the
    store root's parent folder)."""
    base = shards_root(root)
    results = Path(results) if results is not None else store_root(root).parent
    out: set[Path] = set()
    for manifest in sorted((results / "activations").glob(f"*/{MANIFEST}")):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError) as exc:
            log.warning("ignoring %s: %s", manifest, exc)
            continue
        out.update((base / rel).resolve() for paths in data.values() for rel in paths)
    return out


def prune(root=None, older_than_days: float | None = None, dry_run: bool = False, results=None) -> list[Path]:
    """Remove the shards no manifest names (default) or, with ``older_than_days``, not used for
    that long; return them. Empty layer folders and temporary files left by killed jobs go too."""
    now = time.time()
    keep = referenced(root, results) if older_than_days is None else set()
    gone = []
    for path in all_shards(root):
        stale = (path.resolve() not in keep) if older_than_days is None \
            else now - path.stat().st_mtime > older_than_days * 86400
        if stale:
            gone.append(path)
            if not dry_run:
                path.unlink(missing_ok=True)
    if not dry_run:
        base = shards_root(root)
        for tmp in base.glob("*/*/.*.tmp-*") if base.is_dir() else []:
            if now - tmp.stat().st_mtime > 86400:  # a killed job's, not a running one's
                tmp.unlink(missing_ok=True)
        for folder in sorted(base.glob("*/*"), reverse=True) + sorted(base.glob("*"), reverse=True) \
                if base.is_dir() else []:
            if folder.is_dir() and not any(folder.iterdir()):
                shutil.rmtree(folder, ignore_errors=True)
    return gone


def summary(root=None, results=None) -> dict:
    """``{"objects", "bytes", "unreferenced"}`` of the shards, as :func:`rsaflow.store.summary` has per kind."""
    paths = all_shards(root)
    if not paths:
        return {}
    keep = referenced(root, results)
    return {"objects": len(paths), "bytes": sum(p.stat().st_size for p in paths),
            "unreferenced": sum(p.resolve() not in keep for p in paths)}


class ShardWriter:
    """Streams the rows of ``digests`` (in that order) into a new shard of layer ``key``.

    Use as a context manager: the shard appears complete under its key at the end of the block
    (``attrs``, which the caller may still update inside it, written last), or not at all.
    """

    def __init__(self, key: str, digests: list[str], attrs: dict, root=None, chunk_rows: int = 256):
        self.key, self.digests, self.attrs = key, list(digests), dict(attrs)
        self.path = layer_dir(key, root) / f"{shard_key(self.digests)}.h5"
        self.chunk_rows, self.filled, self.dset = max(1, min(chunk_rows, len(self.digests))), 0, None

    def __enter__(self):
        self._ctx = h5io.atomic_h5(self.path, KIND)
        self.f = self._ctx.__enter__()
        return self

    def write(self, values: np.ndarray) -> None:
        values = np.ascontiguousarray(values, dtype=np.float32)
        if self.dset is None:
            # Chunks of at most 64 KiB of rows (one row if wider): an assembly in another order
            # reads single rows, and a chunk is read whole.
            m = values.shape[1]
            rows = max(1, min(self.chunk_rows, 2**14 // max(m, 1)))
            self.dset = self.f.create_dataset("activations", shape=(len(self.digests), m), dtype="float32",
                                              chunks=(rows, min(m, 8192)), track_times=False)
        self.dset[self.filled : self.filled + len(values)] = values
        self.filled += len(values)

    def __exit__(self, exc_type, exc, tb):
        if exc_type is None:
            if self.filled != len(self.digests):
                exc = RuntimeError(f"shard {self.path}: {self.filled} rows written for {len(self.digests)} images")
                self._ctx.__exit__(type(exc), exc, None)
                raise exc
            h5io.write_dataset(self.f, "image_digests", np.array(self.digests, dtype=object))
            h5io.set_attrs(self.f, {**self.attrs, "layer_key": self.key, "n_images": len(self.digests)})
            return self._ctx.__exit__(None, None, None)
        return self._ctx.__exit__(exc_type, exc, tb)

"""HDF5 files of the workflow: atomic, reproducible writes and validated reads.

Every file is written under a temporary name in its destination folder and renamed only when it
is complete, so a killed job never leaves a file that looks finished. Datasets are written without
timestamps and with fixed chunking, so identical inputs give byte-identical files. Provenance is
stored as attributes: plain strings, or JSON text for structured values.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Iterator, Mapping

import h5py
import numpy as np

from rsaflow.errors import InputFileError

#: The HDF5 layout of each artifact: file kind -> {dataset name: number of dimensions}.
LAYOUTS = {
    "stimuli": {"images": 4, "labels": 1, "indices": 1},
    "activations": {"activations": 2},
    "rdm": {"condensed": 1, "ranks": 1},  # rsaflow.rdmfile
    "second_order": {"matrix": 2, "labels": 1, "depth": 1},
    "cka": {"gram_unit": 1},  # rsaflow.jobs.kernel
    "shape": {"factor_w": 1, "factor_u": 2},  # rsaflow.jobs.kernel
    "pairs": {"content_keys": 1, "similarity": 2},  # rsaflow.jobs.second_order
    "tile": {"row_keys": 1, "col_keys": 1, "row_labels": 1, "col_labels": 1, "similarity": 2},  # .second_order_tile
    "evaluation": {"evaluations": 2, "estimate": 1, "labels": 1},  # rsaflow.jobs.brain_eval
}

_STRING = h5py.string_dtype(encoding="utf-8")


def _attr_value(value):
    if isinstance(value, str):
        return value
    if isinstance(value, (bool, int, float, np.integer, np.floating)):
        return value
    return json.dumps(value, sort_keys=True)


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike, kind: str) -> Iterator[h5py.File]:
    """Open ``path`` for writing through a temporary file renamed into place on success.

    On any exception the temporary file is removed and ``path`` is left untouched (absent if it
    did not exist). The file's ``rsaflow_kind`` attribute records ``kind``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for stale in path.parent.glob(f".{path.name}.tmp-*"):  # left by a killed job
        with contextlib.suppress(FileNotFoundError):
            stale.unlink()
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        # libver='earliest' and no timestamps keep bytes stable across runs.
        with h5py.File(tmp, "w", track_order=False, rdcc_nbytes=64 * 2**20) as f:
            f.attrs["rsaflow_kind"] = kind
            yield f
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


def write_dataset(f: h5py.File, name: str, data: np.ndarray) -> h5py.Dataset:
    """Write one dataset without timestamps (byte-reproducible)."""
    if data.dtype.kind in "OU":
        return f.create_dataset(name, data=np.asarray(data, dtype=object), dtype=_STRING, track_times=False)
    return f.create_dataset(name, data=data, track_times=False)


def set_attrs(obj, attrs: Mapping) -> None:
    """Store provenance attributes: strings and numbers as they are, anything else as JSON."""
    for key in sorted(attrs):
        obj.attrs[key] = _attr_value(attrs[key])


def write_h5(path, kind: str, datasets: Mapping[str, np.ndarray], attrs: Mapping) -> None:
    """Write a complete artifact atomically: ``datasets`` plus provenance ``attrs``."""
    with atomic_h5(path, kind) as f:
        for name in sorted(datasets):
            write_dataset(f, name, np.asarray(datasets[name]))
        set_attrs(f, attrs)


def dataset_sha256(dset, rows: int = 256) -> str:
    """sha256 of a 2-D dataset's values in C order (its stored dtype), read ``rows`` rows at a time."""
    import hashlib

    h = hashlib.sha256()
    for lo in range(0, dset.shape[0], rows):
        h.update(np.ascontiguousarray(dset[lo : lo + rows]).data)
    return h.hexdigest()


def texts(values) -> list[str]:
    """A string dataset's values (or attribute list) as Python str: h5py returns bytes or str."""
    return [v.decode() if isinstance(v, bytes) else str(v) for v in values]


def read_attrs(f: h5py.File) -> dict:
    """All attributes, JSON strings decoded where they parse as JSON objects or lists."""
    out = {}
    for key, value in f.attrs.items():
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str) and value[:1] in "[{":
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        out[key] = value
    return out


@contextlib.contextmanager
def open_artifact(path, kind: str) -> Iterator[h5py.File]:
    """Open an artifact for reading, checking that it is an rsaflow file of ``kind``.

    Raises InputFileError naming the file when it is missing, not HDF5 (or truncated), of
    another kind, or lacks a dataset of the documented layout.
    """
    path = Path(path)
    if not path.exists():
        raise InputFileError(path, "file not found")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise InputFileError(path, f"not a readable HDF5 file (truncated or foreign?): {exc}") from None
    with f:
        found = f.attrs.get("rsaflow_kind")
        if found != kind:
            raise InputFileError(path, f"expected an rsaflow {kind!r} file, found kind {found!r}")
        for name, ndim in LAYOUTS[kind].items():
            if name not in f:
                raise InputFileError(path, f"dataset {name!r} missing (found: {sorted(f)})")
            if f[name].ndim != ndim:
                raise InputFileError(path, f"dataset {name!r} has {f[name].ndim} dimensions, expected {ndim}")
        yield f

"""The input files of one second-order run: what each method reads, opened and checked once.

Each input is an RDM file (``condensed``) or a per-layer activation artifact (``gram_unit`` of a
``cka`` kernel, ``factor_u``/``factor_w`` of a ``shape`` factor; rsaflow.jobs.kernel), as the
method's registry entry says (rsaflow.methods). :class:`RunFiles` opens each once per run and
holds the first :func:`max_open` of them open for the chunked reads; :func:`content_key` is the
key by which the pair store and the tiles know a file's content.
"""

from __future__ import annotations

import contextlib
import hashlib
import os

import h5py
import numpy as np

from rsaflow import h5io, rdmfile
from rsaflow.methods import method_info
from rsaflow.results import rdm_record

#: Files held open at once where the open-file limit is unknown (more are reopened for every chunk).
MAX_OPEN = 256
#: The dataset that gives an artifact's length (and its values' digest where a file has no content key).
MAIN_DATASET = {"rdm": "condensed", "cka": "gram_unit", "shape": "factor_u"}


def artifact_of(method: str) -> str:
    """The per-layer artifact ``method`` reads (the registry, rsaflow.methods): ``rdm``, ``cka`` or ``shape``."""
    return method_info(method).artifact


def vector_length(path, method: str) -> int:
    """The vector length of an input file of ``method`` (P, N^2, or N for shape factors)."""
    with h5io.open_artifact(path, artifact_of(method)) as f:
        return f[MAIN_DATASET[artifact_of(method)]].shape[0]


def _describe_open(f, files: "RunFiles") -> tuple[int, tuple | None]:
    """(vector length, rsaflow.rdmfile.read_params of the run's recipe) of an open file of the
    run's kind (for shape factors and the methods that read whole RDMs, N or P and no params)."""
    if files.recipe is None:
        return f[MAIN_DATASET[files.kind]].shape[0], None
    return f["condensed"].shape[0], rdmfile.read_params(f, files.recipe)


def _chunk(f, files: "RunFiles", lo: int, hi: int, params, out: np.ndarray) -> None:
    """Pairs lo:hi of a file's vector for the run's method, read into ``out`` (contiguous, hi - lo)."""
    if files.kind == "cka":
        f["gram_unit"].read_direct(out, np.s_[lo:hi])
    else:
        rdmfile.vector_chunk(f, files.method, lo, hi, params, out)


def _identity(path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class RunFiles:
    """The input files of one run, each opened and checked once (rsaflow.h5io.open_artifact).

    From that one open: its record (rsaflow.results.rdm_record, plus ``kind``), its vector length
    and rsaflow.rdmfile.read_params of the run's recipe (:func:`_describe_open`). The first
    :func:`max_open` files stay open for the reads; the rest are closed and reopened with plain
    h5py (already checked) for each read. A file replaced on disk since (another inode, size or
    time) is opened and checked again. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, method: str, limit: int | None = None):
        # The run's one look-up of its method (rsaflow.methods): the engine asks ``info``, the
        # reads follow ``recipe`` (rsaflow.rdmfile.vector_recipe; None: no chunked vector).
        self.method, self.info = method, method_info(method)
        self.kind = self.info.artifact
        streamed = self.kind == "rdm" and self.info.kind in ("vector", "raw")
        self.recipe = rdmfile.vector_recipe(method) if streamed else None
        self.limit = max_open() if limit is None else limit
        self._stack = contextlib.ExitStack()
        self._entries: dict[str, dict] = {}
        self._held = 0

    def __enter__(self) -> "RunFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        self._stack.close()
        self._entries.clear()
        self._held = 0

    def entry(self, path, record: bool = False) -> dict:
        """``{"length", "params", "handle" (None when not held)}`` of ``path``, and ``"record"`` once
        asked for (``record=True``; read from the same open when it is the first)."""
        path = str(path)
        e = self._entries.get(path)
        if e is not None and e["identity"] == _identity(path):
            if record and e["record"] is None:
                if e["handle"] is not None:
                    e["record"] = self._record(e["handle"], path)
                else:
                    with h5io.open_artifact(path, self.kind) as f:
                        e["record"] = self._record(f, path)
            return e
        stack = contextlib.ExitStack()
        f = stack.enter_context(h5io.open_artifact(path, self.kind))
        try:
            length, params = _describe_open(f, self)
            e = {"record": self._record(f, path) if record else None, "length": length,
                 "params": params, "identity": _identity(path), "handle": None}
        except BaseException:
            stack.close()
            raise
        if self._held < self.limit:
            e["handle"] = f
            self._stack.push(stack)
            self._held += 1
        else:
            stack.close()
        self._entries[path] = e
        return e

    def _record(self, f, path) -> dict:
        return dict(rdm_record(f, path), kind=self.kind)

    def record(self, path) -> dict:
        """rsaflow.results.read_meta's record of ``path`` (with ``kind``), from the run's one open."""
        return dict(self.entry(path, record=True)["record"])

    def read(self, path, lo: int, hi: int, out: np.ndarray) -> None:
        """Pairs lo:hi of the file's vector for the method into ``out`` (:func:`_chunk`)."""
        e = self.entry(path)
        if e["handle"] is not None:
            _chunk(e["handle"], self, lo, hi, e["params"], out)
        else:
            with h5py.File(path, "r") as f:  # checked when the entry was made
                _chunk(f, self, lo, hi, e["params"], out)

def max_open() -> int:
    """Files to hold open at once: half the process's soft limit of open files (at least 64)."""
    try:
        import resource

        return max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2)
    except (ImportError, ValueError, OSError):
        return MAX_OPEN


def read_factor(path) -> tuple[np.ndarray, np.ndarray]:
    """(w, U) of a per-layer ``shape`` artifact (rsaflow.jobs.kernel, rsaflow.measures.shape_factor)."""
    with h5io.open_artifact(path, "shape") as f:
        return f["factor_w"][()], f["factor_u"][()]


def content_key(record: dict) -> str:
    """The file's store key, or (files written without one) a digest of its values."""
    if record["content_key"]:
        return record["content_key"]
    h = hashlib.sha256()
    with h5io.open_artifact(record["path"], record["kind"]) as f:
        d = f[MAIN_DATASET[record["kind"]]]
        step = 2**22
        for lo in range(0, d.shape[0], step):
            h.update(np.ascontiguousarray(d[lo : lo + step]).data)
    return "values-" + h.hexdigest()


"""Step ``second_order``: compare all RDMs of one analysis; write the K x K matrix as HDF5 and TSV.

Streaming. The K x K similarities are accumulated chunk by chunk of pairs: each chunk reads
pairs ``lo:hi`` of every RDM file (rsaflow.rdmfile.vector_chunk; ``gram_unit`` of the per-layer
``cka`` artifacts for the CKA family), so the job never holds whole vectors. The chunk
is sized by the byte budget ``chunk_mb`` of the analysis (config ``compare.chunk_mb``). Three
kinds of method cannot be streamed across pairs: kendall_tau_a (a sort per pair), shape and bures
(an SVD per pair of the per-layer ``shape`` factors, rsaflow.measures.fidelity_factors) and
cosine_cov, corr_cov (rsaflow.measures.cov_vector whitens the whole RDM: O(P) per RDM at a time,
then dot products accumulated into K x K). Peak memory, P the vector length (N (N - 1) / 2,
N^2 for the cka artifacts), K the RDMs::

    vector methods, cka*: about chunk_mb + 6 x 8 K^2 bytes + 0.6 MB per open file (K; files are
                          held open up to half the open-file limit) (+ 300 MB of libraries)
    kendall_tau_a:        about 10 x 8 P (two raw vectors at a time and the O(P log P) sort)
    shape, bures:         about 6 x 8 N^2 (two N x r factors, r <= N - 1, and the r x r SVD)
    cosine_cov, corr_cov: about chunk_mb / 2 (row vectors of N (N + 1) / 2 float64, at least one)
                          + 8 x 8 N^2 (one column vector and cov_vector's square transients)
    bootstrap/permutations on: + 8 K P (all condensed vectors), + what rsaflow.inference holds

Reads O(K P) (each file once per run for the vector methods), compute O(K^2 P); shape and
bures O(K^2 (N r^2 + r^3)) for ranks r, cosine_cov and corr_cov O(K N^2) per group of rows.
Each input file is opened and checked once per run (:class:`RunFiles`: its record, vector
length, method scalars and reads all from that one handle). A block of at most
:data:`THIN_ROWS` rows (the row of an added RDM) reads each column file's vector in pieces of
up to chunk_mb / (rows + 1) (one row, the default 256 MB: the whole vector up to N = 5,793)
into one reused buffer and sums 1-D dot products: an added row costs about one read of every
file.

Incremental. Pairwise similarities live in the content store (rsaflow.store) as one object per
analysis run, kind ``pairs``: the sorted content keys of its RDMs (the ``content_key`` of each
RDM file: same key, same content), their K x K similarity matrix, the method and this job's
code digest. A run first looks for the object of exactly its key set; failing that, it merges
the similarities of every stored ``pairs`` object with the same method and code digest (found
through the store's index, ``<store>/pairs/index/<sha256(method, code)[:24]>/<key>.json``: each
object's content keys, written by atomic rename beside the object; objects without one are
indexed on first sight; only the objects used are opened), and computes only the pairs none of
them has: adding one RDM computes one row (O(K P) reads, O(K P)
work), removing one computes nothing. The log says ``pairs: reused R, computed C``. The object is
hard-linked to ``results/second_order/<analysis>/pairs.h5`` (so the store's prune keeps it while it is current).
The reuse key leaves out only the chunk size, which changes sums by float rounding (~1e-16).

Optional inference on the RDMs (``bootstrap`` resamples of stimuli, ``permutations`` of stimulus
labels), written beside the matrix: ``ci_lower``, ``ci_upper``, ``boot_std``, ``p_values`` in the
HDF5, and every pair's values in ``inference.tsv`` (long format; header only when inference is off).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import time
from pathlib import Path

import h5py
import numpy as np

from rsaflow import h5io, measures, products, rdmfile, store
from rsaflow.compare import kendall_tau_a, n_from_pairs
from rsaflow.compare import dissimilarity as to_dissimilarity
from rsaflow.errors import InputFileError
from rsaflow.methods import method_info
from rsaflow.provenance import base_attrs
from rsaflow.results import check_same_stimuli, rdm_record

log = logging.getLogger(__name__)

#: Store kind of the pairwise similarity objects.
PAIRS_KIND = "pairs"
#: Default byte budget of one chunk of pairs (config ``compare.chunk_mb``).
DEFAULT_CHUNK_MB = 256
#: Folder of the ``pairs`` objects' index in the store (rsaflow.jobs.second_order._index_folder).
INDEX_DIR = "index"
#: Files held open at once where the open-file limit is unknown (more are reopened for every chunk).
MAX_OPEN = 256
#: Columns of inference.tsv.
INFERENCE_COLUMNS = ("row", "column", "dissimilarity", "ci_lower", "ci_upper", "boot_std", "p_value")


def _kind(method: str) -> str:
    """The per-layer artifact ``method`` reads (the registry, rsaflow.methods): ``rdm``, ``cka`` or ``shape``."""
    return method_info(method).artifact


#: The dataset that gives an artifact's length (and its values' digest where a file has no content key).
_MAIN = {"rdm": "condensed", "cka": "gram_unit", "shape": "factor_u"}


def _pairwise(method: str) -> bool:
    """Methods computed one pair at a time (not a product of per-file vectors)."""
    return method_info(method).kind == "raw" or _kind(method) == "shape"


def _length(path, method: str) -> int:
    with h5io.open_artifact(path, _kind(method)) as f:
        return f[_MAIN[_kind(method)]].shape[0]


def _describe_open(f, method: str) -> tuple[int, tuple | None]:
    """(vector length, rsaflow.rdmfile.vector_params) of an open file of the method's kind (for
    shape factors and the whole-RDM methods, N or P and no params)."""
    if _kind(method) != "rdm" or method_info(method).kind == "whole":
        return f[_MAIN[_kind(method)]].shape[0], None
    return f["condensed"].shape[0], rdmfile.vector_params(f, method)


def _chunk(f, method: str, lo: int, hi: int, params, out: np.ndarray) -> None:
    """Pairs lo:hi of a file's vector for ``method``, read into ``out`` (contiguous, hi - lo)."""
    if _kind(method) == "cka":
        f["gram_unit"].read_direct(out, np.s_[lo:hi])
    else:
        rdmfile.vector_chunk(f, method, lo, hi, params, out)


def _identity(path) -> tuple:
    st = os.stat(path)
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


class RunFiles:
    """The input files of one run, each opened and checked once (rsaflow.h5io.open_artifact).

    From that one open: its record (rsaflow.results.rdm_record, plus ``kind``), its vector length
    and rsaflow.rdmfile.vector_params for ``method`` (:func:`_describe_open`). The first
    :func:`_max_open` files stay open for the reads; the rest are closed and reopened with plain
    h5py (already checked) for each read. A file replaced on disk since (another inode, size or
    time) is opened and checked again. Use as a context manager or call :meth:`close`.
    """

    def __init__(self, method: str, limit: int | None = None):
        self.method, self.kind = method, _kind(method)
        self.limit = _max_open() if limit is None else limit
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
            length, params = _describe_open(f, self.method)
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
            _chunk(e["handle"], self.method, lo, hi, e["params"], out)
        else:
            with h5py.File(path, "r") as f:  # checked when the entry was made
                _chunk(f, self.method, lo, hi, e["params"], out)


def whole_vector(path, method: str) -> np.ndarray:
    """rsaflow.measures.cov_vector of an RDM file (cosine_cov, corr_cov): N (N + 1) / 2 float64
    from the whole condensed RDM (transients about 6 x 8 N^2 bytes)."""
    with h5io.open_artifact(path, "rdm") as f:
        upper = f["condensed"][()]
    try:
        return measures.cov_vector(upper, method)
    except measures.DegenerateInputError as exc:
        raise InputFileError(path, str(exc)) from None


def _whole_block(rows: list[str], cols: list[str], method: str, chunk_bytes: int) -> np.ndarray:
    """Dot products of whole-RDM vectors: the rows' vectors in groups held within chunk_bytes / 2
    (at least one), the columns' built one at a time against each group."""
    n = n_from_pairs(_length(rows[0], method))
    g = max(1, int(chunk_bytes) // (2 * 8 * (n * (n + 1) // 2)))
    sim = np.empty((len(rows), len(cols)))
    for start in range(0, len(rows), g):
        group = rows[start : start + g]
        held = np.stack([whole_vector(p, method) for p in group])
        for b, pc in enumerate(cols):
            v = held[group.index(pc)] if pc in group else whole_vector(pc, method)
            sim[start : start + len(group), b] = held @ v
        del held
    return sim


def read_factor(path) -> tuple[np.ndarray, np.ndarray]:
    """(w, U) of a per-layer ``shape`` artifact (rsaflow.jobs.kernel, rsaflow.measures.shape_factor)."""
    with h5io.open_artifact(path, "shape") as f:
        return f["factor_w"][()], f["factor_u"][()]


def _pairwise_block(rows: list[str], cols: list[str], load, similarity) -> np.ndarray:
    """similarity(load(row), load(column)) for every (row, column) pair of files: one row's data
    held, the columns' loaded one at a time; 1 for a file with itself, each unordered pair once."""
    sim = np.ones((len(rows), len(cols)))
    done: dict = {}
    for a, pa in enumerate(rows):
        x = load(pa)
        for b, pb in enumerate(cols):
            if pa == pb:
                continue
            if (pb, pa) in done:
                sim[a, b] = done[(pb, pa)]
                continue
            sim[a, b] = done[(pa, pb)] = similarity(x, load(pb))
    return sim


def _shape_block(rows: list[str], cols: list[str]) -> np.ndarray:
    """rsaflow.measures.fidelity_factors of every (row, column) pair of shape artifacts (diagonal 1)."""
    return _pairwise_block(rows, cols, read_factor, measures.fidelity_factors)


def _max_open() -> int:
    """Files to hold open at once: half the process's soft limit of open files (at least 64)."""
    try:
        import resource

        return max(64, resource.getrlimit(resource.RLIMIT_NOFILE)[0] // 2)
    except (ImportError, ValueError, OSError):
        return MAX_OPEN


def chunk_pairs(n_vectors: int, budget_bytes: int) -> int:
    """Pairs per chunk so that ``n_vectors`` chunks of float64 (twice: read buffer + derived) fit."""
    return max(1, int(budget_bytes) // (2 * 8 * max(1, n_vectors)))


#: Blocks of at most this many distinct rows take the thin path of :func:`similarity_block`.
THIN_ROWS = 8


def similarity_block(row_paths, col_paths, method: str, chunk_bytes: int = DEFAULT_CHUNK_MB * 2**20,
                     files: RunFiles | None = None) -> np.ndarray:
    """(len(rows), len(cols)) similarities s(a, b) of ``method`` (rsaflow.compare) between files.

    Vector methods and cka: the sum over chunks of pairs of V_rows V_cols^T, V the chunks of the
    stored vectors (:func:`_chunk`); chunks hold at most ``chunk_bytes`` for all distinct files
    together. Thin blocks (at most :data:`THIN_ROWS` distinct rows, e.g. the row of an added RDM)
    instead hold the rows' pieces of ``chunk_bytes / (rows + 1)`` bytes and read each column
    file's piece into one reused buffer, summing 1-D dot products (:func:`_thin_block`).
    kendall_tau_a: one O(P log P) comparison per entry, two raw vectors in memory. shape, bures:
    one SVD per entry (:func:`_shape_block`); cosine_cov, corr_cov: dot products of whole-RDM
    vectors (:func:`_whole_block`). Equals ``rsaflow.compare.similarity_matrix`` of the stacked
    vectors up to summation order (~1e-16); the diagonal entries are computed like the others
    (kendall_tau_a: 1). ``files``: the run's open inputs (:class:`RunFiles`; each file is then
    opened and checked once per run); without it the block opens each file once itself.
    """
    if files is None:
        with RunFiles(method) as own:
            return similarity_block(row_paths, col_paths, method, chunk_bytes, own)
    rows, cols = [str(p) for p in row_paths], [str(p) for p in col_paths]
    union = list(dict.fromkeys(cols + rows))  # cols first: V[:len(cols)] is then a view
    where = {p: i for i, p in enumerate(union)}
    length = files.entry(union[0])["length"]
    for p in union:
        n = files.entry(p)["length"]
        if n != length:
            raise InputFileError(p, f"vector of length {n} differs from {length} of {union[0]}: "
                                    "RDMs of different stimulus counts")
    if method == "kendall_tau_a":
        return _kendall_block(rows, cols)
    if _kind(method) == "shape":
        return _shape_block(rows, cols)
    if method_info(method).kind == "whole":
        return _whole_block(rows, cols, method, chunk_bytes)
    if len(set(rows)) <= THIN_ROWS:
        return _thin_block(rows, cols, length, chunk_bytes, files)
    ri = np.array([where[p] for p in rows], dtype=np.intp)
    ci = np.array([where[p] for p in cols], dtype=np.intp)
    distinct = len(set(cols)) == len(cols)  # then cols are union[:len(cols)]: a view, no copy
    same = rows == cols
    step = chunk_pairs(len(union), chunk_bytes)
    sim = np.zeros((len(rows), len(cols)))
    chunk = np.empty((len(union), min(step, length)))
    for lo in range(0, length, step):
        hi = min(length, lo + step)
        v = chunk[:, : hi - lo]
        for i, p in enumerate(union):
            files.read(p, lo, hi, v[i])
        vc = v[: len(cols)] if distinct else v[ci]
        sim += products.gram(vc) if same else products.gram(v[ri], vc)  # thin: single-threaded blocks
    return sim


def _thin_block(rows: list[str], cols: list[str], length: int, chunk_bytes: int, files: RunFiles) -> np.ndarray:
    """:func:`similarity_block` for few distinct rows: per piece of pairs (``chunk_bytes`` for the
    rows' pieces plus one buffer), each column file's piece is read into the reused buffer and
    dotted with the rows' pieces by np.einsum (no threaded BLAS call per file). Each file is read
    once per run when a piece is the whole vector (up to chunk_bytes / (8 (rows + 1)) pairs)."""
    urows = list(dict.fromkeys(rows))
    at = {p: i for i, p in enumerate(urows)}
    step = max(1, min(length, int(chunk_bytes) // (8 * (len(urows) + 1))))
    held = np.empty((len(urows), step))
    buf = np.empty(step)
    ucols = list(dict.fromkeys(cols))
    usim = np.zeros((len(urows), len(ucols)))
    for lo in range(0, length, step):
        hi = min(length, lo + step)
        r = held[:, : hi - lo]
        for i, p in enumerate(urows):
            files.read(p, lo, hi, r[i])
        for j, p in enumerate(ucols):
            if p in at:
                v = r[at[p]]
            else:
                v = buf[: hi - lo]
                files.read(p, lo, hi, v)
            usim[:, j] += np.einsum("ij,j->i", r, v)
    ri = [at[p] for p in rows]
    cj = {p: j for j, p in enumerate(ucols)}
    return usim[np.ix_(ri, [cj[p] for p in cols])]


def _kendall_block(rows: list[str], cols: list[str]) -> np.ndarray:
    """Kendall tau-a of every (row, column) pair of RDM files: two raw vectors in memory at a time."""
    ties = {}
    for p in dict.fromkeys(rows + cols):
        with h5io.open_artifact(p, "rdm") as f:
            ties[p] = int(f.attrs["tied_pairs"])

    def load(path):
        with h5io.open_artifact(path, "rdm") as f:
            return path, f["condensed"][()]

    return _pairwise_block(rows, cols, load, lambda x, y: kendall_tau_a(x[1], y[1], ties[x[0]], ties[y[0]]))


def _content_key(record: dict) -> str:
    """The file's store key, or (files written without one) a digest of its values."""
    if record["content_key"]:
        return record["content_key"]
    h = hashlib.sha256()
    with h5io.open_artifact(record["path"], record["kind"]) as f:
        d = f[_MAIN[record["kind"]]]
        step = 2**22
        for lo in range(0, d.shape[0], step):
            h.update(np.ascontiguousarray(d[lo : lo + step]).data)
    return "values-" + h.hexdigest()


def _index_folder(method: str, code: str, root) -> Path:
    """The store's index of the ``pairs`` objects of one method and code digest:
    ``<store>/pairs/index/<sha256(method, code)[:24]>/`` (one ``<key>.json`` per object)."""
    tag = hashlib.sha256(json.dumps([method, code]).encode()).hexdigest()[:24]
    return store.store_root(root) / PAIRS_KIND / INDEX_DIR / tag


def _write_index(key: str, keys: list[str], method: str, code: str, root) -> None:
    """Index the ``pairs`` object ``key`` (sorted content ``keys``): ``<key>.json`` holding
    ``{"content_keys": keys}``, written to a unique temporary name and renamed into place. Its
    bytes follow from the key alone, so racing writers (on a cluster's shared filesystem too)
    write the same file."""
    folder = _index_folder(method, code, root)
    path = folder / f"{key}.json"
    if path.is_file():
        return
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{key}.json.tmp-{os.getpid()}-{os.urandom(6).hex()}"
    try:
        tmp.write_text(json.dumps({"content_keys": list(keys)}, separators=(",", ":")))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _index_unindexed(root) -> None:
    """Index the ``pairs`` objects that have no index file yet (written before the index existed):
    each is opened once, ever. Foreign or vanished objects are skipped."""
    folder = store.store_root(root) / PAIRS_KIND
    if not folder.is_dir():
        return
    indexed = {p.stem for p in (folder / INDEX_DIR).glob("*/*.json")}
    for obj in sorted(folder.glob("*/*.h5")):
        if obj.stem in indexed:
            continue
        try:
            with h5io.open_artifact(obj, PAIRS_KIND) as f:
                method, code = f.attrs.get("method"), f.attrs.get("code_sha256")
                theirs = h5io.texts(f["content_keys"][()])
        except (InputFileError, OSError):
            continue
        if isinstance(method, str) and isinstance(code, str):
            _write_index(obj.stem, theirs, method, code, root)


def _stored_similarities(keys: list[str], method: str, code: str, root) -> tuple[np.ndarray, np.ndarray, int]:
    """Similarities among ``keys`` found in the store's ``pairs`` objects of ``method`` and ``code``.

    Candidates come from the index of that method and code (:func:`_index_folder`: one small JSON
    file of content keys per object), so a run reads no object that cannot help it and opens only
    those it uses; index files of pruned objects are removed. Returns (similarity, known mask,
    objects used); objects with the most shared keys first.
    """
    k = len(keys)
    sim = np.zeros((k, k))
    known = np.zeros((k, k), dtype=bool)
    where = {key: i for i, key in enumerate(keys)}
    _index_unindexed(root)
    candidates = []
    for entry in sorted(_index_folder(method, code, root).glob("*.json")):
        obj = store.object_path(PAIRS_KIND, entry.stem, root)
        if not obj.is_file():  # pruned: drop its index file
            entry.unlink(missing_ok=True)
            continue
        try:
            theirs = json.loads(entry.read_text())["content_keys"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        shared = [j for j, key in enumerate(theirs) if key in where]
        if len(shared) >= 2:
            candidates.append((len(shared), obj, theirs, shared))
    used = 0
    for _, obj, theirs, shared in sorted(candidates, key=lambda c: -c[0]):
        if known.all():
            break
        mine = np.array([where[theirs[j]] for j in shared])
        if known[np.ix_(mine, mine)].all():
            continue
        try:
            with h5io.open_artifact(obj, PAIRS_KIND) as f:
                stored = h5io.texts(f["content_keys"][()])
                if stored != list(theirs) or f["similarity"].shape != (len(theirs), len(theirs)):
                    continue  # not what the index says: never trust it over the object
                block = f["similarity"][()][np.ix_(shared, shared)]
        except (InputFileError, OSError):  # vanished since: skip it
            continue
        fill = ~known[np.ix_(mine, mine)]
        sub = sim[np.ix_(mine, mine)]
        sub[fill] = block[fill]
        sim[np.ix_(mine, mine)] = sub
        known[np.ix_(mine, mine)] = True
        used += 1
    return sim, known, used


def _rows_to_compute(unknown: np.ndarray) -> np.ndarray:
    """Rows whose full computation covers every unknown pair (symmetric mask): all rows when
    nothing is known, else a greedy cover (most unknown pairs first), e.g. just the added RDMs."""
    if unknown[np.triu_indices(unknown.shape[0], 1)].all():
        return np.arange(unknown.shape[0])
    left = unknown.copy()
    np.fill_diagonal(left, False)
    counts = left.sum(axis=1)
    cover = []
    while counts.max(initial=0) > 0:
        a = int(counts.argmax())
        cover.append(a)
        partners = np.flatnonzero(left[a])
        counts[partners] -= 1
        counts[a] = 0
        left[a, partners] = left[partners, a] = False
    return np.array(sorted(cover), dtype=np.intp)


def pairwise_similarities(paths: list, keys: list[str], method: str, code: str, chunk_bytes: int,
                          out_pairs=None, root=None, files: RunFiles | None = None) -> np.ndarray:
    """K x K similarities of the files ``paths`` (content keys ``keys``, all distinct), reusing
    the store's ``pairs`` objects and computing only the rows that have unknown pairs.

    Writes the run's own ``pairs`` object (and links it to ``out_pairs`` when given). Logs
    ``pairs: reused R, computed C`` (unordered pairs a < b). ``files``: the run's open inputs
    (:class:`RunFiles`), so that each file is opened and checked once per run.
    """
    k = len(keys)
    order = np.argsort(keys)
    skeys = [keys[i] for i in order]
    attrs = {"method": method, "code_sha256": code}
    key = store.make_key(PAIRS_KIND, {"rdms": skeys}, attrs)
    total = k * (k - 1) // 2
    obj = store.object_path(PAIRS_KIND, key, root)
    if obj.is_file():
        with h5io.open_artifact(obj, PAIRS_KIND) as f:
            ssim = f["similarity"][()]
        log.info("pairs: reused %d, computed 0 (all from %s)", total, obj)
        if out_pairs is not None:
            store.fetch(PAIRS_KIND, key, out_pairs, root)
    else:
        start = time.perf_counter()
        ssim, known, used = _stored_similarities(skeys, method, code, root)
        np.fill_diagonal(known, True)
        reused = int(np.triu(known, 1).sum())
        todo = _rows_to_compute(~known)
        spaths = [str(paths[i]) for i in order]
        if todo.size and _pairwise(method):  # one comparison per unknown pair
            for a in todo:
                cols = np.flatnonzero(~known[a])
                if cols.size:
                    ssim[a, cols] = ssim[cols, a] = similarity_block([spaths[a]], [spaths[b] for b in cols], method,
                                                                   chunk_bytes, files)[0]
                    known[a, cols] = known[cols, a] = True
        elif todo.size:
            block = similarity_block([spaths[i] for i in todo], spaths, method, chunk_bytes, files)
            rows = ssim[todo]
            rows[~known[todo]] = block[~known[todo]]
            ssim[todo] = rows
            ssim[:, todo] = rows.T
        diag = np.diag(ssim).copy()
        ssim = np.triu(ssim, 1)
        ssim += ssim.T
        ssim[np.diag_indices(k)] = diag
        computed = total - reused
        log.info("pairs: reused %d, computed %d of %d (%d rows read against all, %d stored objects merged) in %.2f s",
                 reused, computed, total, todo.size, used, time.perf_counter() - start)
        dest = out_pairs if out_pairs is not None else obj.with_name(f".{obj.name}.new-{os.getpid()}")
        h5io.write_h5(dest, PAIRS_KIND, {"content_keys": np.array(skeys, dtype=object), "similarity": ssim}, attrs)
        store.put(PAIRS_KIND, key, dest, root)
        _write_index(key, skeys, method, code, root)
        if out_pairs is None:
            os.unlink(dest)
    inverse = np.empty(k, dtype=np.intp)
    inverse[order] = np.arange(k)
    return ssim[np.ix_(inverse, inverse)]


def _write_tsv(path, labels: list[str], matrix: np.ndarray) -> None:
    lines = ["label\t" + "\t".join(labels)]
    lines += [labels[i] + "\t" + "\t".join(repr(float(v)) for v in matrix[i]) for i in range(len(labels))]
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _write_inference_tsv(path, labels: list[str], datasets: dict) -> None:
    """Long format, one line per pair a < b: labels, dissimilarity and each inference value
    (``nan`` where not computed); only the header when inference is off."""
    lines = ["\t".join(INFERENCE_COLUMNS)]
    columns = [datasets.get(name) for name in ("ci_lower", "ci_upper", "boot_std", "p_values")]
    if any(c is not None for c in columns):
        matrix = datasets["matrix"]
        for a in range(len(labels)):
            for b in range(a + 1, len(labels)):
                cells = [repr(float(matrix[a, b]))]
                cells += ["nan" if c is None else repr(float(c[a, b])) for c in columns]
                lines.append("\t".join([labels[a], labels[b], *cells]))
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def _condensed_stack(records: list[dict]) -> np.ndarray:
    """(K, P) float64: every RDM's condensed values (for inference, which needs them all)."""
    out = np.empty((len(records), _length(records[0]["path"], "spearman")))
    for i, r in enumerate(records):
        with h5io.open_artifact(r["path"], "rdm") as f:
            f["condensed"].read_direct(out[i])
    return out


def _subject_vectors(uppers: np.ndarray, method: str):
    """Per-RDM vectors whose dot products are ``method``'s similarity (None: compare pairwise)."""
    from rsaflow.compare import per_rdm_vectors
    from rsaflow.measures import cov_vector

    if method in ("spearman", "pearson", "cosine", "rho_a"):
        return per_rdm_vectors(uppers, method)
    if method in ("cosine_cov", "corr_cov"):
        return np.stack([cov_vector(u, method) for u in uppers])
    return None


def group_ceilings(records: list[dict], method: str, n_boot: int = 0, seed: int = 0, ci: float = 0.95,
                   stack: np.ndarray | None = None) -> dict:
    """Noise ceilings of the external groups among ``records`` and every RDM's similarity to their subjects.

    A group is an external RDM file with dataset ``subjects`` (S, P) (rsaflow.jobs.external_rdm).
    For group g and each RDM i (``records`` order, that of ``labels``): ``noise_ceiling_lower[g]``,
    ``noise_ceiling_upper[g]`` = rsaflow.measures.noise_ceiling(subjects, method) (exactly
    rsatoolbox's ``boot_noise_ceiling``), ``n_subjects[g]`` = S, ``subject_similarity[i, g]`` =
    mean_s sim(RDM_i, RDM_s) and ``subject_similarity_sem[i, g]`` = std_s (ddof 0) / sqrt(S): the
    quantity the ceiling bounds and its error, as rsatoolbox's ``eval_fixed``. NaN (0 for
    n_subjects) elsewhere. Empty (nothing written) when no group joined, or for a method without
    a noise ceiling (rsaflow.measures.NOISE_CEILING_METHODS; the activation measures: externals do not join).
    Memory: the groups' subjects (8 sum S P) plus one RDM's vector at a time; O(K sum S P) work.

    With ``n_boot`` > 0 (config ``bootstrap``), also ``subject_similarity_ci_lower`` and
    ``subject_similarity_ci_upper`` (K, K, NaN outside group columns): the percentile interval
    ``ci`` of subject_similarity[i, g] over ``n_boot`` resamples of the stimuli,
    rsaflow.inference.bootstrap_subject_similarity, with the same draws (``seed``) as the matrix's
    ``ci_lower``/``ci_upper``. Adds the K condensed RDMs (8 K P, as the matrix bootstrap holds;
    ``stack``, when the caller has read them, is used instead of reading them again) and
    (G + 3) x 8 P of vectors; O((K + sum S) P log P) work per resample.
    """
    from rsaflow.measures import NOISE_CEILING_METHODS, noise_ceiling
    from rsaflow.results import read_subjects

    if method not in NOISE_CEILING_METHODS:
        return {}
    groups = {g: read_subjects(r["path"]) for g, r in enumerate(records) if r["model"] == "external"}
    groups = {g: u for g, u in groups.items() if u is not None}
    if not groups:
        return {}
    k = len(records)
    out = {name: np.full(shape, np.nan) for name, shape in (("noise_ceiling_lower", k), ("noise_ceiling_upper", k),
                                                            ("subject_similarity", (k, k)),
                                                            ("subject_similarity_sem", (k, k)))}
    out["n_subjects"] = np.zeros(k, dtype=np.int64)
    for g, uppers in groups.items():
        out["noise_ceiling_lower"][g], out["noise_ceiling_upper"][g] = noise_ceiling(uppers, method)
        out["n_subjects"][g] = uppers.shape[0]
        log.info("noise ceiling of %s (%d subjects, %s): lower %.4f, upper %.4f", records[g]["label"],
                 uppers.shape[0], method, out["noise_ceiling_lower"][g], out["noise_ceiling_upper"][g])
    _subject_similarities(records, groups, method, out, stack)
    if n_boot:
        stack = _condensed_stack(records) if stack is None else stack
        out.update(_subject_bootstrap(records, groups, method, n_boot, seed, ci, stack))
    return out


def _subject_similarities(records: list[dict], groups: dict, method: str, out: dict, stack=None) -> None:
    """Fill ``subject_similarity`` and ``subject_similarity_sem`` (see :func:`group_ceilings`);
    each RDM from ``stack`` (K, P) when the caller holds it, else read one at a time."""
    from rsaflow.measures import rdm_similarity
    from rsaflow.results import read_rdm

    vectors = {g: _subject_vectors(uppers, method) for g, uppers in groups.items()}
    for i, r in enumerate(records):
        x = read_rdm(r["path"])["condensed"] if stack is None else stack[i]
        vx = _subject_vectors(x[None], method)
        for g, uppers in groups.items():
            if vx is None:
                sims = np.array([rdm_similarity(x, u, method) for u in uppers])
            else:
                sims = vectors[g] @ vx[0]
            out["subject_similarity"][i, g] = sims.mean()
            out["subject_similarity_sem"][i, g] = sims.std() / np.sqrt(sims.size)


def _subject_bootstrap(records: list[dict], groups: dict, method: str, n_boot: int, seed: int, ci: float,
                       stack: np.ndarray) -> dict:
    """``subject_similarity_ci_lower`` / ``_ci_upper`` (see :func:`group_ceilings`)."""
    from rsaflow.inference import bootstrap_subject_similarity

    k, cols = len(records), list(groups)
    log.info("bootstrap of the subject similarities: %d resamples of the stimuli", n_boot)
    boot = bootstrap_subject_similarity(stack, [groups[g] for g in cols], method, n_boot, seed, ci)
    out = {}
    for name, values in (("subject_similarity_ci_lower", boot.lower), ("subject_similarity_ci_upper", boot.upper)):
        out[name] = np.full((k, k), np.nan)
        out[name][:, cols] = values
    log.info("bootstrap of the subject similarities: %d of %d resamples valid", boot.n_valid, n_boot)
    return out


def _similarities(records: list[dict], method: str, code: str, chunk_bytes: int, out_pairs, store_root,
                  files: RunFiles | None = None):
    """K x K similarities of ``records`` (one job: :func:`pairwise_similarities` of the distinct contents)."""
    keys = [_content_key(r) for r in records]
    unique = list(dict.fromkeys(keys))  # identical content twice: compare it once
    first = {key: r["path"] for key, r in zip(reversed(keys), reversed(records))}
    log.info("second order (%s) of %d RDMs (%d distinct), chunks of %d MB", method, len(records), len(unique),
             chunk_bytes >> 20)
    usim = pairwise_similarities([first[key] for key in unique], unique, method, code, chunk_bytes, out_pairs,
                                 store_root, files)
    pos = np.array([unique.index(key) for key in keys])
    return usim[np.ix_(pos, pos)]


def _assembled(records: list[dict], tile_paths, method: str, code: str, digest: str, out_pairs):
    """K x K similarities from the tile files of rsaflow.jobs.second_order_tile; ``out_pairs`` gets
    them as a ``pairs`` file (not a store object: the tiles are the stored products)."""
    from rsaflow.jobs.second_order_tile import assemble

    sim = assemble(records, tile_paths, method, digest)
    log.info("second order (%s) of %d RDMs assembled from %d tiles", method, len(records), len(tile_paths))
    if out_pairs is not None:
        keys = np.array([_content_key(r) for r in records], dtype=object)
        h5io.write_h5(out_pairs, PAIRS_KIND, {"content_keys": keys, "similarity": sim},
                      {"method": method, "code_sha256": code})
    return sim


def write_second_order(rdm_paths, out_h5, out_tsv, spec: dict, code_files, out_inference=None,
                       out_pairs=None, store_root=None, tile_paths=None) -> tuple[np.ndarray, list[str]]:
    """1 - similarity (``spec['method']``) between every pair of RDMs, rows sorted by label.

    Streams the files in chunks of ``spec['chunk_mb']`` MB (default 256) and reuses stored pairwise
    similarities (see the module docstring). Writes ``out_h5`` (matrix, labels, depth, models and
    the inference arrays), ``out_tsv`` (the matrix), ``out_inference`` (long-format TSV, when
    given) and ``out_pairs`` (this run's ``pairs`` store object, when given). With ``tile_paths``
    (``compare.tiles``) the similarities are assembled from those tiles instead of computed.
    """
    method = spec["method"]
    inference = spec.get("bootstrap", 0) or spec.get("permutations", 0)
    chunk_bytes = int(spec.get("chunk_mb", DEFAULT_CHUNK_MB) * 2**20)
    files = RunFiles(method)  # each input opened and checked once for the run (closed after the similarities)
    records = sorted((files.record(p) for p in rdm_paths), key=lambda r: r["label"])
    labels = [r["label"] for r in records]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate RDM labels: {labels}")
    digest = check_same_stimuli(records)
    code = base_attrs(spec, code_files)["code_sha256"]
    with files:
        if tile_paths:
            sim = _assembled(records, tile_paths, method, code, digest, out_pairs)
        else:
            sim = _similarities(records, method, code, chunk_bytes, out_pairs, store_root, files)
    matrix = to_dissimilarity(sim, method)
    datasets = {
        "matrix": matrix,
        "labels": np.array(labels, dtype=object),
        "depth": np.array([r["depth"] for r in records], dtype=np.int64),
        "models": np.array([r["model"] for r in records], dtype=object),
    }
    rdms = _condensed_stack(records) if inference else None  # (K, P): what inference streams, read once
    datasets.update(group_ceilings(records, method, spec.get("bootstrap", 0), spec.get("seed", 0),
                                   spec.get("ci", 0.95), rdms))
    if inference:
        from rsaflow.inference import bootstrap_second_order, permutation_test

        if spec.get("bootstrap", 0):
            log.info("bootstrap: %d resamples of the stimuli", spec["bootstrap"])
            boot = bootstrap_second_order(rdms, method, spec["bootstrap"], spec["seed"], spec.get("ci", 0.95))
            datasets.update(ci_lower=boot.lower, ci_upper=boot.upper, boot_std=boot.std)
            log.info("bootstrap: %d of %d resamples valid", boot.n_valid, spec["bootstrap"])
        if spec.get("permutations", 0):
            log.info("permutation test: %d relabellings", spec["permutations"])
            datasets["p_values"] = permutation_test(rdms, method, spec["permutations"], spec["seed"]).p_values
        del rdms
    h5io.write_h5(
        out_h5,
        "second_order",
        datasets,
        {**base_attrs(spec, code_files), "method": method, "stimulus_digest": digest},
    )
    _write_tsv(out_tsv, labels, matrix)
    if out_inference is not None:
        _write_inference_tsv(out_inference, labels, datasets)
    return matrix, labels

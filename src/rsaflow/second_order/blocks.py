"""Similarity blocks: (rows, cols) similarities s(a, b) between input files, per kind of method.

Vector methods and the cka family: sums over chunks of pairs of products of the stored vectors
(a thin path for few rows, e.g. the row of an added RDM); cosine_cov, corr_cov: dot products of
whole-RDM vectors (rsaflow.measures.cov_vector); kendall_tau_a, shape, bures and the pairwise
methods: one comparison per pair (a sort; an SVD of the per-layer factors; the method's own
function of two whole RDMs, Method.pair_function). Memory and work per kind: see
:mod:`rsaflow.jobs.second_order`.
"""

from __future__ import annotations

import numpy as np

from rsaflow import h5io, measures, products
from rsaflow.compare import kendall_tau_a, n_from_pairs
from rsaflow.errors import InputFileError
from rsaflow.methods import Method
from rsaflow.second_order.inputs import RunFiles, read_factor

#: Default byte budget of one chunk of pairs (config ``compare.chunk_mb``).
DEFAULT_CHUNK_MB = 256
#: Blocks of at most this many distinct rows take the thin path of :func:`similarity_block`.
THIN_ROWS = 8


def pairwise(info: Method) -> bool:
    """Methods computed one pair at a time (not a product of per-file vectors)."""
    return info.kind in ("raw", "pairwise") or info.artifact == "shape"


def whole_vector(path, method: str) -> np.ndarray:
    """rsaflow.measures.cov_vector of an RDM file (cosine_cov, corr_cov): N (N + 1) / 2 float64
    from the whole condensed RDM (transients about 6 x 8 N^2 bytes)."""
    with h5io.open_artifact(path, "rdm") as f:
        upper = f["condensed"][()]
    try:
        return measures.cov_vector(upper, method)
    except measures.DegenerateInputError as exc:
        raise InputFileError(path, str(exc)) from None


def _whole_block(rows: list[str], cols: list[str], method: str, chunk_bytes: int, length: int) -> np.ndarray:
    """Dot products of whole-RDM vectors: the rows' vectors in groups held within chunk_bytes / 2
    (at least one), the columns' built one at a time against each group (``length``: P)."""
    n = n_from_pairs(length)
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


def _pairwise_block(rows: list[str], cols: list[str], load, similarity, top: float = 1.0) -> np.ndarray:
    """similarity(load(row), load(column)) for every (row, column) pair of files: one row's data
    held, the columns' loaded one at a time; ``top`` for a file with itself, each unordered pair once."""
    sim = np.full((len(rows), len(cols)), top)
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


def _function_block(rows: list[str], cols: list[str], info: Method) -> np.ndarray:
    """Method.pair_function of every (row, column) pair of RDM files' condensed RDMs (two in memory
    at a time; Method.top for a file with itself); a ValueError of the function (e.g. a degenerate
    RDM) is an InputFileError naming the column's file and the row's."""
    function, method = info.pair_function(), info.name

    def similarity(x, y):
        try:
            return function(x[1], y[1])
        except ValueError as exc:
            raise InputFileError(y[0], f"{method} with {x[0]}: {exc}") from None

    return _pairwise_block(rows, cols, _load_condensed, similarity, info.top)


def _load_condensed(path) -> tuple:
    """(path, condensed RDM) of an RDM file."""
    with h5io.open_artifact(path, "rdm") as f:
        return path, f["condensed"][()]


def chunk_pairs(n_vectors: int, budget_bytes: int) -> int:
    """Pairs per chunk so that ``n_vectors`` chunks of float64 (twice: read buffer + derived) fit."""
    return max(1, int(budget_bytes) // (2 * 8 * max(1, n_vectors)))




def similarity_block(row_paths, col_paths, method: str, chunk_bytes: int = DEFAULT_CHUNK_MB * 2**20,
                     files: RunFiles | None = None) -> np.ndarray:
    """(len(rows), len(cols)) similarities s(a, b) of ``method`` (rsaflow.compare) between files.

    Vector methods and cka: the sum over chunks of pairs of V_rows V_cols^T, V the chunks of the
    stored vectors (:meth:`RunFiles.read`); chunks hold at most ``chunk_bytes`` for all distinct files
    together. Thin blocks (at most :data:`THIN_ROWS` distinct rows, e.g. the row of an added RDM)
    instead hold the rows' pieces of ``chunk_bytes / (rows + 1)`` bytes and read each column
    file's piece into one reused buffer, summing 1-D dot products (:func:`_thin_block`).
    kendall_tau_a: one O(P log P) comparison per entry, two raw vectors in memory; the pairwise
    methods: one call of their function per entry (:func:`_function_block`). shape, bures:
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
    info = files.info  # the run's method, looked up once (RunFiles)
    if info.kind == "raw":
        return _kendall_block(rows, cols)
    if info.kind == "pairwise":
        return _function_block(rows, cols, info)
    if info.artifact == "shape":
        return _shape_block(rows, cols)
    if info.kind == "whole":
        return _whole_block(rows, cols, method, chunk_bytes, length)
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
    return _pairwise_block(rows, cols, _load_condensed, lambda x, y: kendall_tau_a(x[1], y[1], ties[x[0]], ties[y[0]]))

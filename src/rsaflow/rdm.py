"""Representational dissimilarity matrices (RDMs) from activation patterns.

Conventions (RSA tools disagree on names, so each metric states its formula). For patterns
x_i, x_j in R^M (one row per stimulus):

=============  =====================================  ==========================================
metric         d(i, j)                                 same as
=============  =====================================  ==========================================
euclidean      sqrt(||x_i - x_j||^2 / M)               the tutorial's normalised Euclidean RDM;
                                                       scipy ``pdist(X, 'euclidean') / sqrt(M)``
sqeuclidean    ||x_i - x_j||^2 / M                     rsatoolbox's ``'euclidean'``;
                                                       scipy ``pdist(X, 'sqeuclidean') / M``
correlation    1 - Pearson r(x_i, x_j) across units    scipy ``pdist(X, 'correlation')``
cosine         1 - <x_i, x_j> / (||x_i|| ||x_j||)      scipy ``pdist(X, 'cosine')``
=============  =====================================  ==========================================

All RDMs are float64, exactly symmetric, with an exact zero diagonal. The functions here never
import torch.

Numerics of the Euclidean metrics: squared distances come from the Gram matrix
G = X X^T accumulated in float64 (products of float32 inputs are exact in float64), as
d2(i, j) = G_ii + G_jj - 2 G_ij. That identity cancels when d2 is tiny relative to the norms, so
pairs with d2 <= ``NEAR_RTOL`` * (G_ii + G_jj) are recomputed directly as sum((x_i - x_j)^2) in
float64, and rows with identical bytes get exactly 0. The result then matches float64 ``pdist``
to about 1e-13 of the largest distance.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable

import numpy as np

METRICS = ("euclidean", "sqeuclidean", "correlation", "cosine")

#: Relative threshold under which a Gram-based squared distance is recomputed directly.
NEAR_RTOL = 1e-4

#: Memory for the full rows of near-duplicate pairs recomputed at a time.
NEAR_CHUNK_BYTES = 64 * 2**20


def _check_patterns(patterns: np.ndarray) -> np.ndarray:
    patterns = np.asarray(patterns)
    if patterns.ndim != 2:
        raise ValueError(f"patterns must be 2-D (stimuli x units), got shape {patterns.shape}")
    if patterns.shape[0] < 2 or patterns.shape[1] < 1:
        raise ValueError(f"need at least 2 stimuli and 1 unit, got shape {patterns.shape}")
    if not np.all(np.isfinite(patterns)):
        bad = np.unique(np.nonzero(~np.isfinite(patterns))[0])
        raise ValueError(f"patterns contain NaN or Inf in {bad.size} stimuli (first rows: {bad[:5].tolist()})")
    return patterns


def column_blocks(patterns: np.ndarray, block: int = 4096) -> Iterable[np.ndarray]:
    """Yield ``patterns[:, k:k+block]`` for successive k (views, no copy)."""
    for start in range(0, patterns.shape[1], block):
        yield patterns[:, start : start + block]


def _duplicate_groups(row_hashes: list) -> np.ndarray:
    """Integer group id per row; rows with identical bytes share an id."""
    ids: dict = {}
    return np.array([ids.setdefault(h.digest(), len(ids)) for h in row_hashes])


def _mirror_lower_to_upper(a: np.ndarray, step: int = 512) -> None:
    """Copy the lower triangle of the C-ordered square ``a`` onto its upper one, in place (exact)."""
    n = a.shape[0]
    for start in range(0, n, step):
        stop = min(start + step, n)
        diag = a[start:stop, start:stop]
        iu = np.triu_indices(stop - start, k=1)
        diag[iu] = diag.T[iu]
        if stop < n:
            a[start:stop, stop:] = a[stop:, start:stop].T


def squared_euclidean_from_blocks(
    blocks: Iterable[np.ndarray],
    n: int,
    get_rows: Callable[[np.ndarray], np.ndarray],
    near_rtol: float = NEAR_RTOL,
) -> tuple[np.ndarray, int]:
    """Exact squared Euclidean distances ||x_i - x_j||^2 (not normalised), from column blocks.

    blocks: the (n, m_k) column blocks of the pattern matrix, in any order, each read once.
    get_rows: returns the full rows ``X[idx]`` for sorted indices ``idx`` (used for the few
        near-duplicate pairs that are recomputed directly).

    Peak memory is O(n^2 + n * block), plus at most ~64 MiB of full rows for the near-duplicate
    pairs. Returns (D2, number of pairs recomputed directly).
    """
    from scipy.linalg.blas import dsyrk

    # One n x n float64 buffer for everything: BLAS dsyrk accumulates one triangle of the Gram
    # matrix in place, block after block (no n x n temporary per block), and the distances then
    # overwrite it row block by row block.
    gram_f = np.zeros((n, n), dtype=np.float64, order="F")
    hashes = [hashlib.sha256() for _ in range(n)]
    m_total = 0
    for blk in blocks:
        m_total += blk.shape[1]
        b64 = np.ascontiguousarray(blk, dtype=np.float64)
        if not np.all(np.isfinite(b64)):
            bad = np.unique(np.nonzero(~np.isfinite(b64))[0])
            raise ValueError(f"activations contain NaN or Inf in {bad.size} stimuli (first rows: {bad[:5].tolist()})")
        # b64.T is a Fortran-ordered view (no copy); trans=1 gives b64 @ b64.T, upper triangle of gram_f.
        gram_f = dsyrk(1.0, b64.T, beta=1.0, c=gram_f, trans=1, lower=0, overwrite_c=1)
        raw = np.ascontiguousarray(blk)
        for i in range(n):
            hashes[i].update(raw[i])  # the row's bytes (a contiguous buffer; no copy)
        del b64, raw
    # gram_f's upper triangle, seen through its C-ordered transpose d2, is d2's lower triangle
    # (j <= i). Distances are formed there, row block by row block, then mirrored: exactly symmetric.
    d2 = gram_f.T
    norms = np.diag(d2).copy()
    groups = _duplicate_groups(hashes)
    near_i, near_j = [], []
    for start in range(0, n, 1024):  # row blocks keep the temporaries at O(1024 * n)
        stop = min(start + 1024, n)
        d = d2[start:stop, :stop]  # a view, overwritten in place: G_ij -> (n_i + n_j) - 2 G_ij
        norm_sum = norms[start:stop, None] + norms[None, :stop]
        d *= -2.0
        d += norm_sum
        np.maximum(d, 0.0, out=d)
        same = groups[start:stop, None] == groups[None, :stop]
        d[same] = 0.0
        norm_sum *= near_rtol
        near = d <= norm_sum
        near &= ~same
        near &= np.arange(start, stop)[:, None] > np.arange(stop)[None, :]  # strictly below the diagonal
        i, j = np.nonzero(near)
        near_i.append(i + start)
        near_j.append(j)
        del d, norm_sum, same, near
    _mirror_lower_to_upper(d2)
    ii, jj = np.concatenate(near_i), np.concatenate(near_j)
    # Near pairs are recomputed from full rows, a chunk of pairs at a time, with the rows of a chunk
    # (2 per pair, float64) kept under NEAR_CHUNK_BYTES however wide the layer is.
    chunk = int(max(1, min(4096, NEAR_CHUNK_BYTES // (2 * 8 * max(m_total, 1)))))
    for start in range(0, ii.size, chunk):
        a, b = ii[start : start + chunk], jj[start : start + chunk]
        idx = np.unique(np.concatenate([a, b]))
        rows = np.asarray(get_rows(idx), dtype=np.float64)
        diff = rows[np.searchsorted(idx, a)] - rows[np.searchsorted(idx, b)]
        exact = np.einsum("ij,ij->i", diff, diff)
        d2[a, b] = exact
        d2[b, a] = exact
    np.fill_diagonal(d2, 0.0)
    return d2, int(ii.size)


def _gram_similarity(patterns: np.ndarray, center: bool) -> np.ndarray:
    x = patterns.astype(np.float64)
    if center:
        x = x - x.mean(axis=1, keepdims=True)
    norms = np.sqrt(np.einsum("ij,ij->i", x, x))
    if np.any(norms == 0):
        bad = np.nonzero(norms == 0)[0]
        kind = "constant" if center else "all-zero"
        raise ValueError(f"{bad.size} stimuli have {kind} patterns (first rows: {bad[:5].tolist()}); "
                         f"the {'correlation' if center else 'cosine'} distance is undefined for them")
    x /= norms[:, None]
    return x @ x.T


def compute_rdm(
    patterns: np.ndarray,
    metric: str = "euclidean",
    block: int = 4096,
) -> np.ndarray:
    """RDM of ``patterns`` (N stimuli x M units) under ``metric`` (see the module table).

    Returns an (N, N) float64 array: symmetric, exact zeros on the diagonal, and exact zeros for
    pairs of identical rows under the Euclidean metrics. Raises ValueError for NaN/Inf input.
    """
    patterns = _check_patterns(patterns)
    n, m = patterns.shape
    if metric in ("euclidean", "sqeuclidean"):
        d2, _ = squared_euclidean_from_blocks(column_blocks(patterns, block), n, lambda idx: patterns[idx])
        d2 /= m
        return np.sqrt(d2, out=d2) if metric == "euclidean" else d2  # in place: no second N x N array
    if metric in ("correlation", "cosine"):
        sim = _gram_similarity(patterns, center=metric == "correlation")
        rdm = 1.0 - sim
        np.maximum(rdm, 0.0, out=rdm)
        upper = np.triu(rdm, k=1)
        return upper + upper.T
    raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")


def _logged_blocks(dataset, block: int):
    """Column blocks of an (N, M) dataset, logging progress (block i/n, units done, seconds)."""
    import logging
    import time

    log = logging.getLogger(__name__)
    m = dataset.shape[1]
    total = -(-m // block)
    start = time.perf_counter()
    for i, k in enumerate(range(0, m, block)):
        yield dataset[:, k : k + block]
        log.info("Gram block %d/%d (%d/%d units), %.1f s", i + 1, total, min(k + block, m), m,
                 time.perf_counter() - start)


def rdm_from_h5(dataset, metric: str = "euclidean", block: int = 4096) -> tuple[np.ndarray, int]:
    """RDM of an (N, M) h5py dataset read in column blocks, so M x N need not fit in memory.

    Euclidean metrics stream the file (peak memory O(N^2 + N * block)); correlation and cosine
    read it whole. Returns (rdm, number of near-duplicate pairs recomputed directly).
    """
    n, m = dataset.shape
    if n < 2:
        raise ValueError(f"need at least 2 stimuli, got {n}")
    if metric in ("euclidean", "sqeuclidean"):
        d2, n_near = squared_euclidean_from_blocks(_logged_blocks(dataset, block), n, lambda idx: dataset[idx, :])
        d2 /= m
        if metric == "euclidean":
            np.sqrt(d2, out=d2)  # in place: no second N x N array
        return d2, n_near
    return compute_rdm(dataset[()], metric), 0


def upper_triangle(rdm: np.ndarray) -> np.ndarray:
    """The entries above the diagonal (k=1), row-major: rdm[0,1], rdm[0,2], ..., rdm[N-2,N-1].

    The same order as ``scipy.spatial.distance.squareform`` and the tutorial's boolean mask.
    """
    rdm = np.asarray(rdm)
    if rdm.ndim != 2 or rdm.shape[0] != rdm.shape[1]:
        raise ValueError(f"an RDM must be square, got shape {rdm.shape}")
    return rdm[np.triu_indices(rdm.shape[0], k=1)]


def percentile_ranks(rdm: np.ndarray) -> np.ndarray:
    """Each entry's percentile among all N^2 entries (diagonal included), ties at their average rank.

    Equals ``scipy.stats.percentileofscore(rdm.ravel(), rdm.ravel(), kind='rank')`` reshaped,
    the tutorial's display scaling: average rank * 100 / N^2.
    """
    from scipy.stats import rankdata

    rdm = np.asarray(rdm, dtype=np.float64)
    return (rankdata(rdm.ravel(), method="average") * (100.0 / rdm.size)).reshape(rdm.shape)

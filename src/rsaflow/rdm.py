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

All RDMs are float64, exactly symmetric, with an exact zero diagonal, and exactly 0 for rows with
identical bytes under every metric. The functions here never import torch.

One implementation for every metric (:func:`compute_rdm` on arrays, :func:`rdm_from_h5` on files):
the activations are read in column blocks and a Gram matrix is accumulated in float64 in place
(BLAS dsyrk) in the one N x N buffer that becomes the RDM, so the peak memory is at most
1.5 x N^2 x 8 B plus a few float64 copies of one N x block block, whatever M is.

- Euclidean: G = X X^T (products of float32 inputs are exact in float64) and
  d2(i, j) = G_ii + G_jj - 2 G_ij. That identity cancels when d2 is tiny relative to the norms,
  so pairs with d2 <= ``NEAR_RTOL`` * (G_ii + G_jj) are recomputed directly as
  sum((x_i - x_j)^2) from the full rows.
- cosine: G = X X^T and d = 1 - G_ij / sqrt(G_ii G_jj), clipped to [0, 2].
- correlation: a first pass over the blocks sums each row (float64) for the row means mu; the
  second accumulates the Gram of the centred blocks X - mu (centred before the syrk, so there is
  no cancellation as in G - M mu mu^T), corrected for the rounding left in the means
  (G - r r^T / M with r the row sums of the centred rows); then as cosine. Rows that are
  constant (correlation) or all zero (cosine) are a ValueError naming them.
- Both angular metrics recompute pairs with d <= ``NEAR_RTOL`` directly as ||u_i - u_j||^2 / 2
  (u the (centred) row at unit norm), which keeps the relative accuracy of tiny distances that
  1 - cos loses (pdist too); rows that are exact positive multiples (cosine) or positive affine
  images (correlation) of each other then get ~1e-32, not exactly 0.

The result matches float64 ``pdist`` to about 1e-13 of the largest distance.

Backends (config ``rdm.backend``, rsaflow.kernels): only the Gram accumulation is swappable
(``kernels=``; the torch backend's float64 ``addmm`` on a GPU, rsaflow.torch_kernels); the blocks'
checks, centring, near-pair recomputation and exact zeros stay here, so the match to ``pdist``
above holds for every backend; the default (dsyrk) is bit for bit the same whatever is installed.
"""

from __future__ import annotations

import hashlib
from typing import Callable, Iterable

import numpy as np

from rsaflow.finite import check_finite
from rsaflow.methods import METRICS as METRIC_INFO
from rsaflow.rdmfile import upper_triangle  # noqa: F401  (one implementation; here for notebooks, docs/outputs.md)

METRICS = tuple(METRIC_INFO)  # the registry's RDM metrics (rsaflow.methods)

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
    check_finite(patterns, "pattern values", rows="stimuli")
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


def _row_step(n: int) -> int:
    """Rows per step of the in-place passes over the N x N buffer: temporaries stay <= N^2 / 16 each."""
    return max(1, min(1024, -(-n // 16)))


def metric_info(metric: str):
    """The registry entry of ``metric`` (rsaflow.methods.METRICS); ValueError naming the allowed ones."""
    if metric not in METRIC_INFO:
        raise ValueError(f"unknown metric {metric!r}; choose one of {', '.join(METRICS)}")
    return METRIC_INFO[metric]


def bad_rows_error(bad: np.ndarray, metric: str) -> ValueError:
    kind = "constant" if metric_info(metric).centred else "all-zero"
    return ValueError(f"{bad.size} stimuli have {kind} patterns (first rows: {bad[:5].tolist()}); "
                      f"the {metric} distance is undefined for them")


def checked_block(blk) -> np.ndarray:
    """A block as a float64 C-ordered array of its own (a copy: it may be modified in place)."""
    b64 = np.array(blk, dtype=np.float64, order="C", copy=True)
    check_finite(b64, "activations", rows="stimuli")
    return b64


def row_stats(blocks: Iterable[np.ndarray], n: int) -> tuple[np.ndarray, np.ndarray, int]:
    """First pass for correlation: float64 row sums, a constant-row flag (min == max) and M."""
    sums = np.zeros(n)
    lo = np.full(n, np.inf)
    hi = np.full(n, -np.inf)
    m = 0
    for blk in blocks:
        b64 = checked_block(blk)
        m += b64.shape[1]
        sums += b64.sum(axis=1)
        np.minimum(lo, b64.min(axis=1), out=lo)
        np.maximum(hi, b64.max(axis=1), out=hi)
    return sums, lo == hi, m


def _gram_pass(blocks: Iterable[np.ndarray], n: int, means: np.ndarray | None, accumulator=None):
    """Upper triangle of G = Xc Xc^T in one Fortran-ordered N x N float64 buffer (BLAS dsyrk,
    accumulated in place block after block), with Xc = X - means[:, None] when ``means`` is given.

    ``accumulator``: another backend's Gram (rsaflow.kernels: ``accumulator(n)`` has ``add(b64)``
    for each checked, centred float64 block and ``result()``, a C-ordered N x N array whose lower
    triangle holds G); None: dsyrk. Returns (buffer, row hashes of the raw bytes, M, row sums of
    Xc or None, all-zero row flags).
    """
    from scipy.linalg.blas import dsyrk

    acc = accumulator(n) if accumulator is not None else None
    gram_f = np.zeros((n, n), dtype=np.float64, order="F") if acc is None else None
    hashes = [hashlib.sha256() for _ in range(n)]
    resid = np.zeros(n) if means is not None else None
    zero = np.ones(n, dtype=bool)
    m_total = 0
    for blk in blocks:
        b64 = checked_block(blk)
        m_total += b64.shape[1]
        zero &= ~np.any(b64, axis=1)
        raw = np.ascontiguousarray(blk)
        for i in range(n):
            hashes[i].update(raw[i])  # the row's bytes (a contiguous buffer; no copy)
        del raw
        if means is not None:
            b64 -= means[:, None]
            resid += b64.sum(axis=1)
        # b64.T is a Fortran-ordered view (no copy); trans=1 gives b64 @ b64.T, upper triangle of gram_f.
        if acc is None:
            gram_f = dsyrk(1.0, b64.T, beta=1.0, c=gram_f, trans=1, lower=0, overwrite_c=1)
        else:
            acc.add(b64)
        del b64
    if acc is not None:
        gram_f = acc.result().T  # its lower triangle, seen as the upper one of a Fortran-ordered view
    return gram_f, hashes, m_total, resid, zero


def recompute_near(d: np.ndarray, ii: np.ndarray, jj: np.ndarray, get_rows, m: int, metric: str) -> None:
    """Overwrite d[i, j] and d[j, i] for the listed pairs with the distance computed directly
    from the full rows, a chunk of pairs at a time (rows of a chunk under NEAR_CHUNK_BYTES).

    Squared Euclidean: sum((x_i - x_j)^2). Cosine / correlation: ||u_i - u_j||^2 / 2 with u the
    (centred, twice, for correlation) row scaled to unit norm, equal to 1 - cos but without its
    cancellation: relative accuracy ~1e-15 however small the distance.
    """
    info = metric_info(metric)
    chunk = int(max(1, min(4096, NEAR_CHUNK_BYTES // (2 * 8 * max(m, 1)))))
    for start in range(0, ii.size, chunk):
        a, b = ii[start : start + chunk], jj[start : start + chunk]
        idx = np.unique(np.concatenate([a, b]))
        rows = np.array(get_rows(idx), dtype=np.float64)
        if info.angular:
            if info.centred:
                rows -= rows.mean(axis=1, keepdims=True)
                rows -= rows.mean(axis=1, keepdims=True)  # removes the rounding left by the first centring
            rows /= np.sqrt(np.einsum("ij,ij->i", rows, rows))[:, None]
        diff = rows[np.searchsorted(idx, a)] - rows[np.searchsorted(idx, b)]
        exact = np.einsum("ij,ij->i", diff, diff)
        if info.angular:
            exact *= 0.5
        d[a, b] = exact
        d[b, a] = exact


def _distances_in_place(d: np.ndarray, diag: np.ndarray, angular: bool, groups: np.ndarray,
                        near_rtol: float) -> tuple[list, list]:
    """Turn the lower triangle of the Gram matrix ``d`` into distances, row block by row block.

    Angular metrics: G_ij -> 1 - G_ij / (|x_i| |x_j|), clipped to [0, 2]; Euclidean:
    G_ij -> (G_ii + G_jj) - 2 G_ij, clipped at 0. Rows of one duplicate ``groups`` id get exactly 0.
    Returns the (row, column) index arrays, per block, of the near pairs to recompute directly.
    """
    n = d.shape[0]
    inv = 1.0 / np.sqrt(diag) if angular else None
    near_i, near_j = [], []
    step = _row_step(n)
    for start in range(0, n, step):  # row blocks keep the temporaries small
        stop = min(start + step, n)
        blk = d[start:stop, :stop]  # a view, overwritten in place
        if angular:
            blk *= inv[start:stop, None]
            blk *= inv[None, :stop]
            np.subtract(1.0, blk, out=blk)
            np.clip(blk, 0.0, 2.0, out=blk)
            near = blk <= near_rtol
        else:
            norm_sum = diag[start:stop, None] + diag[None, :stop]
            blk *= -2.0
            blk += norm_sum
            np.maximum(blk, 0.0, out=blk)
            norm_sum *= near_rtol
            near = blk <= norm_sum
            del norm_sum
        same = groups[start:stop, None] == groups[None, :stop]
        blk[same] = 0.0
        near &= ~same
        near &= np.arange(start, stop)[:, None] > np.arange(stop)[None, :]  # strictly below the diagonal
        i, j = np.nonzero(near)
        near_i.append(i + start)
        near_j.append(j)
        del blk, same, near
    return near_i, near_j


def _rdm_from_blocks(
    make_blocks: Callable[[str], Iterable[np.ndarray]],
    n: int,
    metric: str,
    get_rows: Callable[[np.ndarray], np.ndarray],
    near_rtol: float = NEAR_RTOL,
    accumulator=None,
) -> tuple[np.ndarray, int]:
    """The one RDM implementation: every metric from column blocks, in one N x N float64 buffer.

    make_blocks: ``make_blocks(what)`` returns a fresh iterator over the (n, m_k) column blocks;
        ``what`` ("row-means" or "Gram") names the pass for progress logs. Called twice for
        correlation (row sums, then the Gram matrix of the centred blocks), once otherwise.
    get_rows: returns the full rows ``X[idx]`` for sorted indices ``idx`` (near pairs only).
    accumulator: the Gram of another backend (:func:`_gram_pass`; rsaflow.kernels), None for dsyrk.

    Euclidean metrics return the squared distance NOT divided by M (the callers scale). Peak
    memory: N^2 x 8 B (the buffer, returned as the result) + row-step temporaries (<= ~0.3 x N^2 x 8 B)
    + a few copies of one block + at most NEAR_CHUNK_BYTES of full rows. Returns (D, near pairs
    recomputed directly).
    """
    info = metric_info(metric)
    angular = info.angular
    means = None
    if info.centred:
        sums, constant, m = row_stats(make_blocks("row-means"), n)
        if np.any(constant):
            raise bad_rows_error(np.nonzero(constant)[0], metric)
        means = sums / m
    gram_f, hashes, m, resid, zero = _gram_pass(make_blocks("Gram"), n, means, accumulator)
    if angular and not info.centred and np.any(zero):
        raise bad_rows_error(np.nonzero(zero)[0], metric)
    # gram_f's upper triangle, seen through its C-ordered transpose d, is d's lower triangle
    # (j <= i). Distances are formed there, row block by row block, then mirrored: exactly symmetric.
    d = gram_f.T
    if resid is not None:
        # The row means carry rounding, so the centred rows Xc sum to r_i (~1e-16 M |mean|), not 0;
        # the Gram of the exactly centred rows is G - r r^T / M (the corrected two-pass algorithm).
        scaled = resid / m
        step = _row_step(n)
        for start in range(0, n, step):
            stop = min(start + step, n)
            d[start:stop, :stop] -= resid[start:stop, None] * scaled[None, :stop]
    diag = np.diag(d).copy()
    if angular and np.any(diag <= 0):  # underflow of tiny rows: undefined like the rows checked above
        raise bad_rows_error(np.nonzero(diag <= 0)[0], metric)
    near_i, near_j = _distances_in_place(d, diag, angular, _duplicate_groups(hashes), near_rtol)
    _mirror_lower_to_upper(d)
    ii, jj = np.concatenate(near_i), np.concatenate(near_j)
    recompute_near(d, ii, jj, get_rows, m, metric)
    np.fill_diagonal(d, 0.0)
    return d, int(ii.size)


def _finish(d: np.ndarray, metric: str, m: int) -> np.ndarray:
    """Scale the squared Euclidean distances in place (/M, then sqrt for 'euclidean')."""
    info = metric_info(metric)
    if not info.angular:
        d /= m
        if not info.squared:
            np.sqrt(d, out=d)  # in place: no second N x N array
    return d


def compute_rdm(
    patterns: np.ndarray,
    metric: str = "euclidean",
    block: int = 4096,
    kernels=None,
) -> np.ndarray:
    """RDM of ``patterns`` (N stimuli x M units) under ``metric`` (see the module table).

    The same streaming implementation as :func:`rdm_from_h5`, over column blocks of ``block``
    units of the in-memory array. Returns an (N, N) float64 array: exactly symmetric, exact zeros
    on the diagonal and for pairs of rows with identical bytes (every metric). Raises ValueError
    for NaN/Inf input, and, naming the rows, for constant rows (correlation) or all-zero rows
    (cosine), where the distance is undefined. ``kernels``: a backend's record
    (rsaflow.kernels.select; None: NumPy), whose Gram accumulator replaces dsyrk.
    """
    patterns = _check_patterns(patterns)
    n, m = patterns.shape
    d, _ = _rdm_from_blocks(lambda what: column_blocks(patterns, block), n, metric, lambda idx: patterns[idx],
                            accumulator=_accumulator(kernels))
    return _finish(d, metric, m)


def _logged_blocks(dataset, block: int, what: str = "Gram"):
    """Column blocks of an (N, M) dataset, logging progress (block i/n, units done, seconds)."""
    import logging
    import time

    log = logging.getLogger(__name__)
    m = dataset.shape[1]
    total = -(-m // block)
    start = time.perf_counter()
    for i, k in enumerate(range(0, m, block)):
        yield dataset[:, k : k + block]
        log.info("%s block %d/%d (%d/%d units), %.1f s", what, i + 1, total, min(k + block, m), m,
                 time.perf_counter() - start)


def _accumulator(kernels):
    """The Gram accumulator of a backend's kernels (rsaflow.kernels.Kernels); None: BLAS dsyrk.
    The one dispatch point of the RDM's backend: everything else is the NumPy path's."""
    return None if kernels is None else kernels.gram_accumulator


def rdm_from_h5(dataset, metric: str = "euclidean", block: int = 4096, kernels=None) -> tuple[np.ndarray, int]:
    """RDM of an (N, M) h5py dataset read in column blocks of ``block`` units, so N x M need not
    fit in memory; every metric streams (correlation reads the file twice: row means, then the
    Gram matrix of the centred blocks).

    Peak memory: N^2 x 8 B (the result, the only N x N array) + about 0.3 x N^2 x 8 B of row-step
    temporaries + a few float64 copies of one N x block block (+ <= NEAR_CHUNK_BYTES of full
    rows for near pairs), independent of M. Returns (rdm, number of near pairs recomputed
    directly from full rows). ``kernels``: as in :func:`compute_rdm`.
    """
    n, m = dataset.shape
    if n < 2:
        raise ValueError(f"need at least 2 stimuli, got {n}")

    d, n_near = _rdm_from_blocks(lambda what: _logged_blocks(dataset, block, what), n, metric,
                                 lambda idx: dataset[idx, :], accumulator=_accumulator(kernels))
    return _finish(d, metric, m), n_near


def percentile_ranks(rdm: np.ndarray) -> np.ndarray:
    """Each entry's percentile among all N^2 entries (diagonal included), ties at their average rank.

    Equals ``scipy.stats.percentileofscore(rdm.ravel(), rdm.ravel(), kind='rank')`` reshaped,
    the tutorial's display scaling: average rank * 100 / N^2.
    """
    from scipy.stats import rankdata

    rdm = np.asarray(rdm, dtype=np.float64)
    return (rankdata(rdm.ravel(), method="average") * (100.0 / rdm.size)).reshape(rdm.shape)


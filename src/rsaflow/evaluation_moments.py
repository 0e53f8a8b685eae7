"""Bootstrap samples of a model evaluation made cheap (rsaflow.evaluation.bootstrap): pearson and cosine
in batches of moments; the ranked methods' vectors from orders sorted once (:class:`SortedRows`).

A resample's mean evaluation over its subjects needs no (K, S) table: with pair weights w (c_i c_j for
stimuli drawn c_i and c_j times), W = sum w and a_s = m_s / (||y_s||_w sum_s m_s) for subjects drawn
m_s times, it is (x_k . (w o Y^T a) - (x_k . w)(a . Y w) / W) / ||x_k||_w (pearson; cosine without the
second term and with uncentred norms). So one pass over the pairs gets the subjects' weighted moments
w . [1, y_s, y_s y_t] (whence ||y_s||_w, a and the noise ceiling's similarity matrix) and a second the
layers' x_k . w, x_k^2 . w and x_k . (w o Y^T a) for each stimulus-resampled set: :data:`BATCH`
resamples at a time, one product per block of :data:`BLOCK` pairs, 2 + (stimulus-resampled sets)
columns per resample instead of a product with S + 1 columns per resample. The blocks run on one BLAS
thread each, ``threads`` at a time, and are added in block order (rsaflow.products' scheme), so the
bits depend on the shapes only, never on the thread count. Equal to the per-resample products up to
summation order (~1e-15; tests/test_evaluation.py against rsatoolbox per resample).
"""

from __future__ import annotations

import numpy as np

from rsaflow import ranking
from rsaflow.compare import DegenerateRDMError, n_from_pairs
from rsaflow.products import blas_threads
from rsaflow.resampling import scale_ranks

#: Pairs per block of the batched resample products, each block one single-threaded BLAS call.
BLOCK = 1 << 13
#: Resamples evaluated together (one product per block for all of them).
BATCH = 64




def _gram_ceiling(rho: np.ndarray, mult: np.ndarray) -> tuple[float, float]:
    """boot_noise_ceiling for pearson / cosine from the subjects' similarity matrix: the pooled RDM of
    rsatoolbox (mean of z-scores, or of RMS-normalised RDMs) has sim(sum_t a_t z_t, z_s) =
    a . rho[:, s] / sqrt(a rho a)."""
    keep = np.flatnonzero(mult > 0)
    if keep.size < 2:
        return np.nan, np.nan
    rho, a = rho[np.ix_(keep, keep)], mult[keep].astype(np.float64)
    lows, highs = [], []
    for n in range(keep.size):
        b = a.copy()
        b[n] = 0
        lows.append(b @ rho[:, n] / np.sqrt(b @ rho @ b))
        highs.append(a @ rho[:, n] / np.sqrt(a @ rho @ a))
    return float(np.mean(lows)), float(np.mean(highs))


def _blocks(fn, p: int, threads: int) -> list:
    """sum over blocks s of ``fn(lo, hi)`` (a list of arrays), added in block order; each block one
    single-threaded BLAS call, ``threads`` blocks at a time (rsaflow.products' scheme: the bits of the
    sums depend on the shapes only, never on the thread count)."""
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import threadpool_limits

    starts = list(range(0, p, BLOCK))
    total = None
    with threadpool_limits(1, user_api="blas"), ThreadPoolExecutor(max(1, threads)) as pool:
        wave = max(1, threads) * 2
        for w in range(0, len(starts), wave):
            for part in pool.map(lambda lo: fn(lo, min(lo + BLOCK, p)), starts[w : w + wave]):
                total = part if total is None else [t + q for t, q in zip(total, part)]
    return total


def _rows(n: int):
    """rows(lo, hi) -> the stimuli (i, j) of the condensed positions lo..hi-1 (rsaflow.resampling.pair_rows)."""
    row = np.arange(n, dtype=np.int64)
    offsets = row * (2 * n - row - 1) // 2

    def rows(lo, hi):
        pos = np.arange(lo, hi, dtype=np.int64)
        i = np.searchsorted(offsets, pos, side="right") - 1
        return i, pos - offsets[i] + i + 1

    return rows


def _moment_table(layers: np.ndarray, subjects: np.ndarray, centred: bool, threads: int):
    """On all pairs (w = 1): the (K, S) similarities and ceiling(mult) of pearson / cosine, from the
    blocked sums x . [1, y_s], x . x, y_s . y_t and y_s . 1."""
    p, s_n = layers.shape[1], subjects.shape[0]

    def sums(lo, hi):
        x, y = layers[:, lo:hi], subjects[:, lo:hi]
        r = np.concatenate([np.ones((hi - lo, 1)), y.T], axis=1)
        return [x @ r, np.einsum("kp,kp->k", x, x), y @ r]

    xr, xx, yr = _blocks(sums, p, threads)
    sx, sxy, sy, syy = xr[:, 0], xr[:, 1:], yr[:, 0], yr[:, 1:]
    if centred:
        sxy = sxy - np.outer(sx, sy) / p
        syy = syy - np.outer(sy, sy) / p
        xx = xx - sx * sx / p
    if np.any(xx <= 0) or np.any(np.diag(syy) <= 0):
        raise DegenerateRDMError("an RDM is constant on this selection of stimuli: similarity undefined")
    ny = np.sqrt(np.diag(syy))
    rho = syy / np.outer(ny, ny)
    return sxy / np.sqrt(xx)[:, None] / ny[None, :], lambda mult: _gram_ceiling(rho, mult)


def _subject_pass(subjects: np.ndarray, c: np.ndarray, rows, centred: bool, threads: int):
    """Per resample of the batch (counts ``c``, N x B): W, Y w, the (centred) S x S moments and which are degenerate."""
    p, s_n = subjects.shape[1], subjects.shape[0]
    nb = c.shape[1]
    tri = np.triu_indices(s_n)

    def moments(lo, hi):
        i, j = rows(lo, hi)
        w = c[i] * c[j]  # (pairs, B): the batch's pair weights
        y = subjects[:, lo:hi].T
        r = np.empty((hi - lo, 1 + s_n + tri[0].size))  # [1, y_s, y_s y_t (s <= t)]
        r[:, 0] = 1.0
        r[:, 1 : 1 + s_n] = y
        col = 1 + s_n
        for a_ in range(s_n):
            np.multiply(y[:, a_ : a_ + 1], y[:, a_:], out=r[:, col : col + s_n - a_])
            col += s_n - a_
        return [w.T @ r]

    (mom,) = _blocks(moments, p, threads)
    total, yw = mom[:, 0], mom[:, 1 : 1 + s_n]
    yyw = np.empty((nb, s_n, s_n))
    yyw[:, tri[0], tri[1]] = mom[:, 1 + s_n :]
    yyw[:, tri[1], tri[0]] = mom[:, 1 + s_n :]
    if centred:
        yyw = yyw - yw[:, :, None] * yw[:, None, :] / total[:, None, None]
    var_y = np.diagonal(yyw, axis1=1, axis2=2)
    return total, yw, yyw, np.any(var_y <= 0, axis=1), np.sqrt(np.where(var_y > 0, var_y, 1.0))


def _layer_pass(layers: np.ndarray, subjects: np.ndarray, c: np.ndarray, a: np.ndarray, rows, threads: int):
    """x . [w, w o Y^T a_t] (K, (1 + T) B) and x^2 . w (K, B) for the batch's weights and a (T, B, S)."""
    nb, s_n, sets = c.shape[1], subjects.shape[0], a.shape[0]
    a_cols = a.reshape(-1, s_n).T  # (S, T B)

    def moments(lo, hi):
        i, j = rows(lo, hi)
        w = c[i] * c[j]
        z = np.empty((hi - lo, (1 + sets) * nb))
        z[:, :nb] = w
        np.multiply(np.tile(w, sets), subjects[:, lo:hi].T @ a_cols, out=z[:, nb:])
        x = layers[:, lo:hi]
        return [x @ z, (x * x) @ w]

    return _blocks(moments, layers.shape[1], threads)


def samples(layers: np.ndarray, subjects: np.ndarray, centred: bool, draws: list, sets: tuple, out: dict) -> None:
    """Samples of ``draws`` ((b, subject multiplicities, stimulus counts), rsaflow.evaluation's) into
    ``out['samples_<set>']`` and ``out['ceiling_<set>']`` for each of ``sets`` (``both``, ``subjects``,
    ``stimuli``), pearson (``centred``) or cosine; a resample on which an RDM is constant is skipped.
    The ``subjects`` set reads the (K, S) table on all pairs."""
    p, s_n = layers.shape[1], subjects.shape[0]
    threads = blas_threads()
    rows = _rows(n_from_pairs(p))
    stim_sets = [t for t in sets if t != "subjects"]
    full = _moment_table(layers, subjects, centred, threads) if "subjects" in sets else None
    for start in range(0, len(draws), BATCH):
        batch = draws[start : start + BATCH]
        nb = len(batch)
        mult = {"both": np.stack([d[1] for d in batch]).astype(np.float64), "stimuli": np.ones((nb, s_n))}
        bad = np.zeros(nb, dtype=bool)
        if stim_sets:
            c = np.stack([d[2] for d in batch], axis=1).astype(np.float64)  # (N, B) stimulus counts
            total, yw, yyw, bad, ny = _subject_pass(subjects, c, rows, centred, threads)
            a = np.stack([mult[t] / ny / mult[t].sum(axis=1)[:, None] for t in stim_sets])  # (T, B, S)
            xz, xxw = _layer_pass(layers, subjects, c, a, rows, threads)
            sx = xz[:, :nb]
            if centred:
                xxw = xxw - sx * sx / total
            bad = bad | np.any(xxw <= 0, axis=0)
            nx = np.sqrt(np.where(xxw > 0, xxw, 1.0))
            rho = yyw / (ny[:, :, None] * ny[:, None, :])
        for q, (b, m, _) in enumerate(batch):
            if bad[q]:  # a constant RDM on this resample: the whole sample is skipped
                continue
            for t in sets:
                if t == "subjects":
                    out["samples_subjects"][b] = (full[0] @ m) / m.sum()
                    out["ceiling_subjects"][b] = full[1](m)
                    continue
                u = stim_sets.index(t)
                num = xz[:, (1 + u) * nb + q]
                if centred:
                    num = num - sx[:, q] * (a[u, q] @ yw[q]) / total[q]
                out[f"samples_{t}"][b] = num / nx[:, q]
                out[f"ceiling_{t}"][b] = _gram_ceiling(rho[q], mult[t][q])


def weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks of each value in the multiset {x[q] repeated w[q] times} (ties at their mean rank)."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    _, start, inverse = np.unique(xs, return_index=True, return_inverse=True)
    group_w = np.add.reduceat(ws, start)
    before = np.concatenate([[0.0], np.cumsum(group_w)[:-1]])
    ranks = np.empty_like(x, dtype=np.float64)
    ranks[order] = (before + (group_w + 1) / 2)[inverse]
    return ranks


class SortedRows:
    """Rows (K, P) sorted once (rsaflow.ranking.argsort), so that a resample's weighted ranks need no sort:
    a value's rank in the multiset {x_q repeated w_q times} is (weight of the smaller values) + (weight of
    its ties + 1) / 2 whatever w is. ``vectors(keep, w, unit)`` gives what rsaflow.resampling.rank_vector
    gives for each row's kept values (the same operations, so the same values): sqrt(w) times the centred
    ranks, of unit weighted norm (``unit``) or scaled by sqrt(12 / (W^3 - W)) (rho-a). Memory: 4 K P B of
    orders (int32) and, for rows with ties, 4 P B of tie groups each."""

    def __init__(self, rows: np.ndarray):
        self.orders, self.groups = [], []
        for row in rows:
            order = ranking.argsort(row)
            ordered = row[order]
            new = np.empty(row.size, dtype=bool)
            new[:1] = True
            np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
            starts = np.flatnonzero(new)
            self.orders.append(order.astype(np.int32 if row.size < 2**31 else np.int64))
            self.groups.append(None if starts.size == row.size else (starts, np.diff(np.append(starts, row.size))))

    def vectors(self, keep: np.ndarray, w: np.ndarray, unit: bool) -> np.ndarray:
        """(K, #keep) vectors on the kept pairs; ``w`` the weights of all P pairs (0 where not kept)."""
        total = float(w.sum())
        ww = w[keep]
        out = np.empty((len(self.orders), ww.size))
        for k, (order, groups) in enumerate(zip(self.orders, self.groups)):
            group_w = w[order] if groups is None else np.add.reduceat(w[order], groups[0])
            group_rank = np.cumsum(group_w) - group_w + (group_w + 1.0) / 2.0
            centred = np.empty(w.size)
            shifted = group_rank - (total + 1.0) / 2.0
            centred[order] = shifted if groups is None else np.repeat(shifted, groups[1])
            out[k] = scale_ranks(centred[keep], ww, total, group_rank[-1], unit)
        return out

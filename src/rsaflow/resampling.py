"""What the bootstrap and permutation tests share: checked RDM stacks, resamples of stimuli as
weighted pairs, and the weighted per-RDM vectors of a resample.

A resample of N stimuli drawn with replacement is a weight per distinct pair of stimuli
(w = c_s c_t for stimuli drawn c_s and c_t times, :func:`weighted_pairs`), so its upper triangle
is never expanded for the vector methods; see :mod:`rsaflow.inference` for the conventions.
"""

from __future__ import annotations

import math

import numpy as np

from rsaflow import ranking
from rsaflow.compare import ALL_METHODS, DegenerateRDMError, average_ranks, n_from_pairs
from rsaflow.finite import check_finite
from rsaflow.methods import METHODS


#: Default bound on the working arrays of one resample or permutation (``chunk_bytes``).
CHUNK_BYTES = 64 * 2**20


def condensed_rdms(rdms: np.ndarray) -> np.ndarray:
    """(K, N, N) square RDMs -> (K, P) float64 upper triangles (k=1), row-major as ``squareform``.

    A 2-D (K, P) array is returned as float64 (no copy when it already is).
    """
    rdms = np.asarray(rdms)
    if rdms.ndim == 2:
        return np.asarray(rdms, dtype=np.float64)
    if rdms.ndim != 3 or rdms.shape[1] != rdms.shape[2]:
        raise ValueError(f"rdms must be (K, P) upper triangles or (K, N, N) square RDMs, got shape {rdms.shape}")
    iu, ju = np.triu_indices(rdms.shape[1], k=1)
    return np.ascontiguousarray(rdms[:, iu, ju], dtype=np.float64)


def check_rdms(rdms: np.ndarray, method: str, chunk_bytes: int) -> tuple[np.ndarray, int]:
    if method in METHODS and not METHODS[method].inference:
        raise ValueError(f"{method} compares activations, not RDMs: bootstrap/permutation of RDMs is not defined for it")
    if method not in ALL_METHODS:
        allowed = ", ".join(m for m, info in METHODS.items() if info.inference)
        raise ValueError(f"unknown comparison method {method!r}; choose one of {allowed}")
    if chunk_bytes < 1:
        raise ValueError(f"chunk_bytes must be positive, got {chunk_bytes}")
    uppers = condensed_rdms(rdms)
    k, p = uppers.shape
    n = n_from_pairs(p)
    if k < 2 or n < 3:
        raise ValueError(f"need K >= 2 RDMs of N >= 3 stimuli, got K={k}, N={n} (upper triangles of shape {uppers.shape})")
    check_finite(uppers, "RDM entries")
    return uppers, n


def chunk_size(k: int, chunk_bytes: int) -> int:
    """Pairs per chunk: four K x chunk float64 working arrays within ``chunk_bytes``."""
    return max(1, chunk_bytes // (4 * 8 * k))


def pair_rows(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stimuli (i, j), i < j, of condensed positions ``pos`` (row-major upper triangle of N x N)."""
    row = np.arange(n, dtype=np.int64)
    offsets = row * (2 * n - row - 1) // 2  # position of (i, i + 1)
    i = np.searchsorted(offsets, pos, side="right") - 1
    return i, pos - offsets[i] + i + 1


def position(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Condensed position of the pair {i, j}, i != j (either order)."""
    a, b = np.minimum(i, j), np.maximum(i, j)
    return a * (2 * n - a - 1) // 2 + (b - a - 1)


def weighted_pairs(counts: np.ndarray, n: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """A resample as (positions, weights): each pair of distinct stimuli (s, t) with
    w = c_s c_t > 0, c the number of times each stimulus was drawn. The resampled upper triangle
    (pairs i < j of draws with s_i != s_j) holds d(s, t) exactly w times."""
    p = n * (n - 1) // 2
    pos_parts, w_parts = [], []
    for start in range(0, p, chunk):
        pos = np.arange(start, min(start + chunk, p), dtype=np.int64)
        i, j = pair_rows(pos, n)
        w = counts[i] * counts[j]
        keep = w > 0
        pos_parts.append(pos[keep])
        w_parts.append(w[keep].astype(np.float64))
    return np.concatenate(pos_parts), np.concatenate(w_parts)


def degenerate(bad: np.ndarray) -> DegenerateRDMError:
    return DegenerateRDMError(f"rows {np.nonzero(bad)[0][:5].tolist()}: all dissimilarities are equal "
                              "(zero variance; all zero for cosine): similarity undefined")


def rank_vector(values: np.ndarray, w: np.ndarray, total: float, method: str) -> np.ndarray:
    """sqrt(w) times the centred average ranks of the multiset {values[q] repeated w[q] times},
    scaled to unit weighted norm (spearman) or by sqrt(12 / (W^3 - W)) (rho_a), W = sum(w).

    The average rank of a tie group is (weight before it) + (its weight + 1) / 2, exactly the
    rank ``average_ranks`` gives its members in the expanded vector."""
    order = ranking.argsort(values)  # exact sort order, packed-key integer sort (rsaflow.ranking)
    ordered = values[order]
    new = np.empty(values.size, dtype=bool)
    new[:1] = True
    np.not_equal(ordered[1:], ordered[:-1], out=new[1:])
    starts = np.flatnonzero(new)
    group_w = np.add.reduceat(w[order], starts)
    group_rank = np.cumsum(group_w) - group_w + (group_w + 1.0) / 2.0
    centred = np.empty(values.size)
    centred[order] = np.repeat(group_rank - (total + 1.0) / 2.0, np.diff(np.append(starts, values.size)))
    return scale_ranks(centred, w, total, group_rank[-1], METHODS[method].unit)


def scale_ranks(centred: np.ndarray, w: np.ndarray, total: float, top: float, unit: bool) -> np.ndarray:
    """``centred`` weighted ranks (in place) times sqrt(w), scaled to unit weighted norm (``unit``:
    spearman) or by sqrt(12 / (W^3 - W)) (rho_a), W = ``total``; ``top``: the largest rank (for the
    zero-variance check). Shared by :func:`rank_vector` and rsaflow.evaluation_moments."""
    if not unit:
        scale = math.sqrt(12.0 / (total**3 - total))
    else:
        norm = math.sqrt(np.einsum("i,i,i->", w, centred, centred))
        if norm == 0 or norm <= 1e-12 * top:
            raise DegenerateRDMError("all dissimilarities are equal (zero variance): correlation undefined")
        scale = 1.0 / norm
    centred *= np.sqrt(w)
    centred *= scale
    return centred


def draw(rng: np.random.Generator, n: int, whole: bool) -> np.ndarray | None:
    """One bootstrap resample of N stimuli (N draws with replacement): the sorted draws (``whole``:
    cosine_cov, corr_cov) or the count of each stimulus; None when it is to be skipped (fewer than
    3 distinct stimuli, or fewer than 2 pairs of draws of different stimuli). Every bootstrap here
    draws through this function, so one seed gives the same resamples to all of them."""
    if whole:
        draws = np.sort(rng.integers(0, n, n))
        return draws if np.unique(draws).size >= 3 else None
    counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.int64)
    return counts if (n * n - int(counts @ counts)) // 2 >= 2 else None


def valid_samples(samples: np.ndarray, n_boot: int, n: int) -> np.ndarray:
    """The resamples that were not skipped (not NaN); ValueError when fewer than 2 remain."""
    valid = ~np.isnan(samples[:, 0, 0])
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise ValueError(f"only {n_valid} of {n_boot} resamples gave non-degenerate RDMs; too few stimuli ({n})?")
    return samples[valid]


def cov_resample(draws: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(where, same) of a resample ``draws`` for cosine_cov / corr_cov: the resampled RDM's upper triangle is
    upper[where] with 0 where ``same`` (two draws of one stimulus)."""
    n = draws.size
    i, j = pair_rows(np.arange(p, dtype=np.int64), n)
    si, sj = draws[i], draws[j]
    same = si == sj
    return position(si, np.where(same, (si + 1) % n, sj), n), same


def weighted_unit(values: np.ndarray, w: np.ndarray, total: float, method: str) -> np.ndarray:
    """The vector v of a weighted resample (values at the distinct pairs, weights w) with
    v(a) . v(b) = the method's similarity of the resampled triangles (what rsaflow.inference's bootstrap
    computes): sqrt(w) (x - mean_w) / norm_w (pearson), sqrt(w) x / norm_w (cosine), the weighted
    ranks of :func:`rank_vector` (spearman, rho_a). Raises DegenerateRDMError as they do."""
    info = METHODS[method]
    if info.ranked:
        return rank_vector(values, w, total, method)
    x = values - (w @ values) / total if info.centred else values.copy()
    norm = math.sqrt(np.einsum("i,i,i->", w, x, x))
    if norm == 0 or (info.centred and norm <= 1e-12 * np.abs(values).max()):
        raise degenerate(np.ones(1, dtype=bool))
    x *= np.sqrt(w)
    x /= norm
    return x


class UnitVectors:
    """The per-RDM vectors of compare.per_rdm_vectors (spearman, pearson, cosine, rho_a), served
    a chunk of positions at a time: ``get(pos)`` is the K x len(pos) block. Stores K means and
    scales (pearson, cosine) or the ranks as int32 2 x rank (spearman, rho_a; K x P x 4 B)."""

    def __init__(self, uppers: np.ndarray, method: str, chunk: int):
        k, p = uppers.shape
        self.uppers, self.method = uppers, method
        info = METHODS[method]
        self.ranked = info.ranked
        self.center = np.zeros(k)
        if not info.ranked:
            total = float(p)
            mean = np.zeros(k)
            maxabs = np.zeros(k)
            sq = np.zeros(k)
            if info.centred:
                for s in range(0, p, chunk):
                    x = uppers[:, s : s + chunk]
                    mean += x.sum(axis=1)
                    np.maximum(maxabs, np.abs(x).max(axis=1), out=maxabs)
                mean /= total
            for s in range(0, p, chunk):
                x = uppers[:, s : s + chunk] - mean[:, None]
                sq += np.einsum("ij,ij->i", x, x)
            norms = np.sqrt(sq)
            bad = (norms == 0) | ((norms <= 1e-12 * maxabs) if info.centred else False)
            if np.any(bad):
                raise degenerate(bad)
            self.center, self.scale = mean, 1.0 / norms
            return
        dtype = np.int32 if 2 * p < 2**31 else np.int64
        self.ranks2 = np.empty((k, p), dtype=dtype)
        self.scale = np.empty(k)
        for a in range(k):
            ranks = average_ranks(uppers[a])
            centred = ranks - (p + 1.0) / 2.0
            if not info.unit:
                self.scale[a] = math.sqrt(12.0 / (float(p) ** 3 - p))
            else:
                norm = math.sqrt(np.einsum("i,i->", centred, centred))
                if norm == 0 or norm <= 1e-12 * ranks.max():
                    raise degenerate(np.arange(k) == a)
                self.scale[a] = 1.0 / norm
            self.ranks2[a] = (2.0 * ranks).astype(dtype)  # exact: average ranks are multiples of 1/2
        self.center[:] = (p + 1.0) / 2.0

    def get(self, pos) -> np.ndarray:
        """K x len(pos) block of the vectors; ``pos`` is an index array or a slice (a new array either way)."""
        if not self.ranked:
            x = self.uppers[:, pos] - self.center[:, None]
        else:
            x = self.ranks2[:, pos] * 0.5
            x -= self.center[:, None]
        x *= self.scale[:, None]
        return x

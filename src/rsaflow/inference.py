"""Uncertainty of second-order comparisons: bootstrap over stimuli and Mantel permutation tests.

Both take the K RDMs as their condensed upper triangles, a (K, P) float64 array with
P = N (N - 1) / 2 in row-major order (``scipy.spatial.distance.squareform``,
:func:`rsaflow.rdm.upper_triangle`; :func:`condensed_rdms` converts square RDMs, and a
(K, N, N) array is accepted too), and a method of :mod:`rsaflow.compare` (any but ``cka``, which
compares activations, not RDMs). Seeds make every result reproducible
(``numpy.random.default_rng``); for a seed, the results equal those of the earlier
(K, N, N) implementation (kept in tests/test_inference.py) to ~1e-15.

Memory (B = ``chunk_bytes``, default 64 MiB; besides the input, K x P x 8 B):

- a resample is a weight per distinct pair of stimuli (w = c_s c_t for stimuli drawn c_s and
  c_t times), O(P) for the whole resample, not K x P;
- pearson, cosine: chunks of pairs, K x chunk float64 working arrays within B, accumulating
  the K x K weighted Gram matrix: O(K^2 + B) per resample or permutation;
- spearman, rho_a: a resample's ranks need each RDM's whole vector, so the unit vectors are
  built one RDM at a time (O(P) temporaries) into groups of RDMs held within B, and the K x K
  products accumulated group by group (when K x P x 8 > B / 2, groups are recomputed for
  their pairs: at most K (G + 1) / 2 rankings per resample for G groups). The permutation test
  ranks each RDM once and keeps the ranks for all K as int32 (2 x rank; K x P x 4 B);
- kendall_tau_a: O(P) per pair of RDMs (the RDMs of a group within B, as above);
- cosine_cov, corr_cov (rsaflow.measures.cov_vector, which whitens the whole RDM): the bootstrap
  builds each RDM's vector of the resample one at a time (O(N^2) temporaries) into groups within
  B, as for spearman; the permutation test holds all K vectors (K x N (N + 1) / 2 x 8 B) and
  permutes their entries (G -> P G P^T for the relabelling P).

:func:`bootstrap_subject_similarity` bootstraps, with the same draws, each RDM's mean similarity
to a group's subject RDMs (the bars of the model-versus-brain figure); its memory is in its docstring.

These functions never import torch.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from rsaflow import measures, ranking
from rsaflow.compare import (ALL_METHODS, WHOLE_METHODS, DegenerateRDMError, average_ranks, kendall_tau_a,
                             n_from_pairs, tied_pairs)
from rsaflow.finite import check_finite
from rsaflow.methods import METHODS

#: Absolute tolerance of ">=" in the permutation test: a relabelling that leaves the RDMs' pairing
#: unchanged gives the observed similarity up to summation-order rounding (~1e-16).
PERM_ATOL = 1e-12

#: Default bound on the working arrays of one resample or permutation (``chunk_bytes``).
CHUNK_BYTES = 64 * 2**20


class BootstrapResult(NamedTuple):
    """Per-entry results, each K x K with an exact zero diagonal."""

    lower: np.ndarray  #: lower percentile bound, (1 - ci) / 2
    upper: np.ndarray  #: upper percentile bound, (1 + ci) / 2
    std: np.ndarray  #: standard deviation of the bootstrap samples (ddof=1)
    estimate: np.ndarray  #: the second-order matrix of the original stimuli
    n_valid: int  #: resamples used (those where an RDM became degenerate are skipped)


class PermutationResult(NamedTuple):
    p_values: np.ndarray  #: K x K, symmetric, NaN on the diagonal
    similarity: np.ndarray  #: observed similarity s(a, b) = 1 - second-order dissimilarity


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


def _check_rdms(rdms: np.ndarray, method: str, chunk_bytes: int) -> tuple[np.ndarray, int]:
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


def _chunk(k: int, chunk_bytes: int) -> int:
    """Pairs per chunk: four K x chunk float64 working arrays within ``chunk_bytes``."""
    return max(1, chunk_bytes // (4 * 8 * k))


def _pair_rows(pos: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Stimuli (i, j), i < j, of condensed positions ``pos`` (row-major upper triangle of N x N)."""
    row = np.arange(n, dtype=np.int64)
    offsets = row * (2 * n - row - 1) // 2  # position of (i, i + 1)
    i = np.searchsorted(offsets, pos, side="right") - 1
    return i, pos - offsets[i] + i + 1


def _position(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """Condensed position of the pair {i, j}, i != j (either order)."""
    a, b = np.minimum(i, j), np.maximum(i, j)
    return a * (2 * n - a - 1) // 2 + (b - a - 1)


def _weighted_pairs(counts: np.ndarray, n: int, chunk: int) -> tuple[np.ndarray, np.ndarray]:
    """A resample as (positions, weights): each pair of distinct stimuli (s, t) with
    w = c_s c_t > 0, c the number of times each stimulus was drawn. The resampled upper triangle
    (pairs i < j of draws with s_i != s_j) holds d(s, t) exactly w times."""
    p = n * (n - 1) // 2
    pos_parts, w_parts = [], []
    for start in range(0, p, chunk):
        pos = np.arange(start, min(start + chunk, p), dtype=np.int64)
        i, j = _pair_rows(pos, n)
        w = counts[i] * counts[j]
        keep = w > 0
        pos_parts.append(pos[keep])
        w_parts.append(w[keep].astype(np.float64))
    return np.concatenate(pos_parts), np.concatenate(w_parts)


def _dissimilarity(sim: np.ndarray) -> np.ndarray:
    """1 - s, clipped to [0, 2], upper triangle mirrored, exact zero diagonal (as compare.aggregate)."""
    upper = np.triu(np.clip(1.0 - sim, 0.0, 2.0), k=1)
    return upper + upper.T


def _degenerate(bad: np.ndarray) -> DegenerateRDMError:
    return DegenerateRDMError(f"rows {np.nonzero(bad)[0][:5].tolist()}: all dissimilarities are equal "
                              "(zero variance; all zero for cosine): similarity undefined")


def _gram_similarity(uppers, pos, w, method: str, chunk: int) -> np.ndarray:
    """Pearson r or cosine of every pair of weighted vectors, by chunks of pairs (two passes for pearson)."""
    k = uppers.shape[0]
    total = w.sum()
    mean = np.zeros(k)
    maxabs = np.zeros(k)
    if method == "pearson":
        for s in range(0, pos.size, chunk):
            x = uppers[:, pos[s : s + chunk]]
            mean += x @ w[s : s + chunk]
            np.maximum(maxabs, np.abs(x).max(axis=1), out=maxabs)
        mean /= total
    gram = np.zeros((k, k))
    for s in range(0, pos.size, chunk):
        x = uppers[:, pos[s : s + chunk]]
        if method == "pearson":
            x -= mean[:, None]
        gram += (x * w[s : s + chunk]) @ x.T
    norms = np.sqrt(np.diag(gram))
    bad = norms == 0
    if method == "pearson":
        bad |= norms <= 1e-12 * maxabs
    if np.any(bad):
        raise _degenerate(bad)
    return gram / norms[:, None] / norms[None, :]


def _rank_vector(values: np.ndarray, w: np.ndarray, total: float, method: str) -> np.ndarray:
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
    if method == "rho_a":
        scale = math.sqrt(12.0 / (total**3 - total))
    else:
        norm = math.sqrt(np.einsum("i,i,i->", w, centred, centred))
        if norm == 0 or norm <= 1e-12 * group_rank[-1]:
            raise DegenerateRDMError("all dissimilarities are equal (zero variance): correlation undefined")
        scale = 1.0 / norm
    centred *= np.sqrt(w)
    centred *= scale
    return centred


def _grouped_similarity(k: int, build, compare, per_rdm_bytes: int, chunk_bytes: int) -> np.ndarray:
    """K x K similarities from per-RDM vectors that need the whole vector (ranks, raw values for
    kendall): ``build(rows)`` builds the vectors of the RDMs ``rows`` (one at a time, into one
    group), ``compare(A, B, same)`` the block of similarities between two groups. Two groups are
    held at a time, each within chunk_bytes / 2; a group is rebuilt for each later group it meets
    (the one built last is kept for the next round), so G groups cost about K (G + 1) / 2 builds."""
    g = max(1, chunk_bytes // (2 * max(per_rdm_bytes, 1)))
    groups = [list(range(s, min(s + g, k))) for s in range(0, k, g)]
    sim = np.empty((k, k))
    held = None  # (group index, vectors)
    for gi, rows in enumerate(groups):
        vec_i = held[1] if held is not None and held[0] == gi else build(rows)
        held = None
        sim[np.ix_(rows, rows)] = compare(vec_i, vec_i, True)
        for gj in range(len(groups) - 1, gi, -1):  # descending: the last one built is the next gi
            cols = groups[gj]
            held = None  # free the previous vec_j before building the next
            vec_j = build(cols)
            block = compare(vec_i, vec_j, False)
            sim[np.ix_(rows, cols)] = block
            sim[np.ix_(cols, rows)] = block.T
            held = (gj, vec_j)
            del vec_j
        del vec_i
    return sim


def _kendall_blocks(va, vb, same: bool) -> np.ndarray:
    out = np.ones((len(va), len(vb)))
    for a, (x, tx) in enumerate(va):
        for b, (y, ty) in enumerate(vb):
            if not same or b > a:
                out[a, b] = kendall_tau_a(x, y, tx, ty)
            elif b < a:
                out[a, b] = out[b, a]
    return out


def _similarity(uppers: np.ndarray, pos: np.ndarray, w: np.ndarray, method: str, chunk_bytes: int) -> np.ndarray:
    """K x K similarities of the weighted resample (pos, w) of every RDM (diagonal as computed,
    1 for kendall_tau_a). Raises DegenerateRDMError as compare.per_rdm_vectors does."""
    k = uppers.shape[0]
    total = float(w.sum())
    if method in ("pearson", "cosine"):
        return _gram_similarity(uppers, pos, w, method, _chunk(k, chunk_bytes))
    if method in ("spearman", "rho_a"):
        def build(rows):
            vectors = np.empty((len(rows), pos.size))
            for r, a in enumerate(rows):
                vectors[r] = _rank_vector(uppers[a, pos], w, total, method)
            return vectors

        return _grouped_similarity(k, build, lambda va, vb, same: va @ vb.T, 8 * pos.size, chunk_bytes)
    expanded = np.repeat(pos, w.astype(np.int64))  # the resampled triangle, pairs in another order

    def build_raw(rows):
        out = []
        for a in rows:
            x = uppers[a, expanded]
            out.append((x, tied_pairs(x)))
        return out

    return _grouped_similarity(k, build_raw, _kendall_blocks, 8 * expanded.size, chunk_bytes)


def bootstrap_second_order(rdms: np.ndarray, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
                           ci: float = 0.95, chunk_bytes: int = CHUNK_BYTES) -> BootstrapResult:
    """Percentile bootstrap CI of each second-order entry, resampling stimuli with replacement.

    rdms: (K, P) condensed upper triangles (see the module docstring) or (K, N, N) square RDMs.
    Each resample draws N stimulus indices s_1..s_N uniformly with replacement and rebuilds every
    RDM's upper triangle as d(s_i, s_j) for i < j, EXCLUDING the pairs with s_i == s_j (a stimulus
    drawn twice would contribute a diagonal 0 as a dissimilarity); duplicated stimuli still yield
    duplicated (tied) off-diagonal entries, as in rsatoolbox's bootstrap. The second-order matrix
    of the resample is recomputed with ``method``; resamples in which an RDM becomes degenerate
    (zero variance) are skipped and counted out of ``n_valid``. Returns the (1 - ci)/2 and
    (1 + ci)/2 percentiles (numpy's linear interpolation), the samples' std (ddof=1), the
    estimate on the original stimuli and n_valid.

    The resampled triangle is never built: it holds d(s, t) c_s c_t times, so every method is
    computed from the distinct pairs with these weights. cosine_cov and corr_cov whiten the
    resample's whole N x N RDM instead, D'_ij = d(s_i, s_j) with 0 between two draws of the
    same stimulus (the distance of a pattern to its copy; rsatoolbox's bootstrap drops those
    entries instead, which its whitening then handles as missing), the same draws as the other
    methods for a seed. Memory beyond the input: O(P) for the
    weights, ``chunk_bytes`` for the working arrays, n_boot x K x K x 8 B for the samples.
    """
    uppers, n = _check_rdms(rdms, method, chunk_bytes)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    k = uppers.shape[0]
    chunk = _chunk(k, chunk_bytes)
    if method in WHOLE_METHODS:
        return _bootstrap_whole(uppers, n, method, n_boot, seed, ci, chunk_bytes)
    pos, w = _weighted_pairs(np.ones(n, dtype=np.int64), n, chunk)
    estimate = _dissimilarity(_similarity(uppers, pos, w, method, chunk_bytes))
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, k), np.nan)
    for b in range(n_boot):
        counts = _draw(rng, n, whole=False)
        if counts is None:
            continue
        pos, w = _weighted_pairs(counts, n, chunk)
        try:
            samples[b] = _dissimilarity(_similarity(uppers, pos, w, method, chunk_bytes))
        except DegenerateRDMError:
            continue
    del pos, w
    return _summarise(samples, estimate, ci, n_boot, n)


def _draw(rng: np.random.Generator, n: int, whole: bool) -> np.ndarray | None:
    """One bootstrap resample of N stimuli (N draws with replacement): the sorted draws (``whole``:
    cosine_cov, corr_cov) or the count of each stimulus; None when it is to be skipped (fewer than
    3 distinct stimuli, or fewer than 2 pairs of draws of different stimuli). Every bootstrap here
    draws through this function, so one seed gives the same resamples to all of them."""
    if whole:
        draws = np.sort(rng.integers(0, n, n))
        return draws if np.unique(draws).size >= 3 else None
    counts = np.bincount(rng.integers(0, n, n), minlength=n).astype(np.int64)
    return counts if (n * n - int(counts @ counts)) // 2 >= 2 else None


def _valid(samples: np.ndarray, n_boot: int, n: int) -> np.ndarray:
    """The resamples that were not skipped (not NaN); ValueError when fewer than 2 remain."""
    valid = ~np.isnan(samples[:, 0, 0])
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise ValueError(f"only {n_valid} of {n_boot} resamples gave non-degenerate RDMs; too few stimuli ({n})?")
    return samples[valid]


def _summarise(samples: np.ndarray, estimate: np.ndarray, ci: float, n_boot: int, n: int) -> BootstrapResult:
    samples = _valid(samples, n_boot, n)
    n_valid = samples.shape[0]
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    std = samples.std(axis=0, ddof=1)
    for m in (lower, upper, std):
        np.fill_diagonal(m, 0.0)
    return BootstrapResult(lower, upper, std, estimate, n_valid)


def _cov_resample(draws: np.ndarray, p: int) -> tuple[np.ndarray, np.ndarray]:
    """(where, same) of a resample ``draws`` for cosine_cov / corr_cov: the resampled RDM's upper triangle is
    upper[where] with 0 where ``same`` (two draws of one stimulus)."""
    n = draws.size
    i, j = _pair_rows(np.arange(p, dtype=np.int64), n)
    si, sj = draws[i], draws[j]
    same = si == sj
    return _position(si, np.where(same, (si + 1) % n, sj), n), same


def _cov_similarity(uppers: np.ndarray, draws: np.ndarray, method: str, chunk_bytes: int) -> np.ndarray:
    """cosine_cov / corr_cov of every pair of RDMs of the resample ``draws`` (N stimulus indices):
    each RDM's square matrix D'_ij = d(s_i, s_j), 0 between two draws of one stimulus, whitened
    as a whole (rsaflow.measures.cov_vector of its upper triangle)."""
    k, p = uppers.shape
    n = draws.size
    where, same = _cov_resample(draws, p)

    def build(rows):
        out = np.empty((len(rows), p + n))
        for r, a in enumerate(rows):
            x = uppers[a, where]
            x[same] = 0.0
            try:
                out[r] = measures.cov_vector(x, method)
            except measures.DegenerateInputError as exc:
                raise DegenerateRDMError(str(exc)) from None
        return out

    return _grouped_similarity(k, build, lambda va, vb, same_: va @ vb.T, 8 * (p + n), chunk_bytes)


def _bootstrap_whole(uppers: np.ndarray, n: int, method: str, n_boot: int, seed: int, ci: float,
                     chunk_bytes: int) -> BootstrapResult:
    """bootstrap_second_order for cosine_cov and corr_cov (see :func:`_cov_similarity`)."""
    k = uppers.shape[0]
    estimate = _dissimilarity(_cov_similarity(uppers, np.arange(n), method, chunk_bytes))
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, k), np.nan)
    for b in range(n_boot):
        draws = _draw(rng, n, whole=True)
        if draws is None:
            continue
        try:
            samples[b] = _dissimilarity(_cov_similarity(uppers, draws, method, chunk_bytes))
        except DegenerateRDMError:
            continue
    return _summarise(samples, estimate, ci, n_boot, n)


class _UnitVectors:
    """The per-RDM vectors of compare.per_rdm_vectors (spearman, pearson, cosine, rho_a), served
    a chunk of positions at a time: ``get(pos)`` is the K x len(pos) block. Stores K means and
    scales (pearson, cosine) or the ranks as int32 2 x rank (spearman, rho_a; K x P x 4 B)."""

    def __init__(self, uppers: np.ndarray, method: str, chunk: int):
        k, p = uppers.shape
        self.uppers, self.method = uppers, method
        self.center = np.zeros(k)
        if method in ("pearson", "cosine"):
            total = float(p)
            mean = np.zeros(k)
            maxabs = np.zeros(k)
            sq = np.zeros(k)
            if method == "pearson":
                for s in range(0, p, chunk):
                    x = uppers[:, s : s + chunk]
                    mean += x.sum(axis=1)
                    np.maximum(maxabs, np.abs(x).max(axis=1), out=maxabs)
                mean /= total
            for s in range(0, p, chunk):
                x = uppers[:, s : s + chunk] - mean[:, None]
                sq += np.einsum("ij,ij->i", x, x)
            norms = np.sqrt(sq)
            bad = (norms == 0) | ((norms <= 1e-12 * maxabs) if method == "pearson" else False)
            if np.any(bad):
                raise _degenerate(bad)
            self.center, self.scale = mean, 1.0 / norms
            return
        dtype = np.int32 if 2 * p < 2**31 else np.int64
        self.ranks2 = np.empty((k, p), dtype=dtype)
        self.scale = np.empty(k)
        for a in range(k):
            ranks = average_ranks(uppers[a])
            centred = ranks - (p + 1.0) / 2.0
            if method == "rho_a":
                self.scale[a] = math.sqrt(12.0 / (float(p) ** 3 - p))
            else:
                norm = math.sqrt(np.einsum("i,i->", centred, centred))
                if norm == 0 or norm <= 1e-12 * ranks.max():
                    raise _degenerate(np.arange(k) == a)
                self.scale[a] = 1.0 / norm
            self.ranks2[a] = (2.0 * ranks).astype(dtype)  # exact: average ranks are multiples of 1/2
        self.center[:] = (p + 1.0) / 2.0

    def get(self, pos) -> np.ndarray:
        """K x len(pos) block of the vectors; ``pos`` is an index array or a slice (a new array either way)."""
        if self.method in ("pearson", "cosine"):
            x = self.uppers[:, pos] - self.center[:, None]
        else:
            x = self.ranks2[:, pos] * 0.5
            x -= self.center[:, None]
        x *= self.scale[:, None]
        return x


def permutation_test(rdms: np.ndarray, method: str = "spearman", n_perm: int = 1000,
                     seed: int = 0, chunk_bytes: int = CHUNK_BYTES) -> PermutationResult:
    """Mantel test of every pair of RDMs: one-sided p-value that s(a, b) is this large by chance.

    rdms: (K, P) condensed upper triangles (see the module docstring) or (K, N, N) square RDMs.
    Each permutation pi relabels the stimuli of RDM a (rows and columns together,
    a'(i, j) = a(pi_i, pi_j)) and recomputes s(a', b) against every b; with the same pi for all
    a, this is one K x K product per chunk of pairs. For a < b,
    p(a, b) = (1 + #{pi : s(a', b) >= s(a, b) - PERM_ATOL}) / (1 + n_perm), mirrored to (b, a)
    (relabelling a by pi equals relabelling b by pi^-1, so the null is the same either way);
    the diagonal is NaN. Under the null (no relation between a and b) P(p <= alpha) <= alpha.

    Memory beyond the input: O(K^2) and ``chunk_bytes`` of working arrays per permutation, plus
    the ranks of all K RDMs as int32 for spearman and rho_a (K x P x 4 B, computed once; ranks,
    centring and scaling commute with relabelling) and O(P) per pair for kendall_tau_a.
    """
    uppers, n = _check_rdms(rdms, method, chunk_bytes)
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    k, p = uppers.shape
    chunk = _chunk(k, chunk_bytes)
    a_idx, b_idx = np.triu_indices(k, k=1)
    rng = np.random.default_rng(seed)
    count = np.zeros(a_idx.size, dtype=np.int64)
    if method == "kendall_tau_a":
        observed = _similarity(uppers, np.arange(p, dtype=np.int64), np.ones(p), method, chunk_bytes)
        ties = [tied_pairs(uppers[a]) for a in range(k)]
        threshold = observed[a_idx, b_idx] - PERM_ATOL
        for _ in range(n_perm):
            count += _kendall_null(uppers, rng.permutation(n), ties, chunk) >= threshold
    elif method in WHOLE_METHODS:
        try:
            cov = np.stack([measures.cov_vector(u, method) for u in uppers])
        except measures.DegenerateInputError as exc:
            raise DegenerateRDMError(str(exc)) from None
        observed = _cov_permuted(cov, np.arange(n), n, p, chunk)
        threshold = observed[a_idx, b_idx] - PERM_ATOL
        for _ in range(n_perm):
            null = _cov_permuted(cov, rng.permutation(n), n, p, chunk)
            count += null[a_idx, b_idx] >= threshold
    else:
        vectors = _UnitVectors(uppers, method, chunk)
        identity = np.arange(n)
        observed = _permuted_products(vectors, identity, n, p, chunk)
        threshold = observed[a_idx, b_idx] - PERM_ATOL
        for _ in range(n_perm):
            null = _permuted_products(vectors, rng.permutation(n), n, p, chunk)
            count += null[a_idx, b_idx] >= threshold
    pv = np.full((k, k), np.nan)
    pv[a_idx, b_idx] = pv[b_idx, a_idx] = (1.0 + count) / (1.0 + n_perm)
    return PermutationResult(pv, observed)


def _kendall_null(uppers: np.ndarray, perm: np.ndarray, ties: list, chunk: int) -> np.ndarray:
    """tau-a of (a relabelled by ``perm``, b) for every pair a < b (``np.triu_indices`` order)."""
    k, p = uppers.shape
    n = perm.size
    moved = np.concatenate([_moved(np.arange(s, min(s + chunk, p), dtype=np.int64), perm, n)
                            for s in range(0, p, chunk)])
    null = []
    for a in range(k - 1):
        permuted = uppers[a, moved]
        null += [kendall_tau_a(permuted, uppers[b], ties[a], ties[b]) for b in range(a + 1, k)]
    return np.array(null)


def _moved(pos: np.ndarray, perm: np.ndarray, n: int) -> np.ndarray:
    """Positions of the relabelled pairs (perm_i, perm_j) for the pairs (i, j) at ``pos``."""
    i, j = _pair_rows(pos, n)
    return _position(perm[i], perm[j], n)


def _permuted_products(vectors: _UnitVectors, perm: np.ndarray, n: int, p: int, chunk: int) -> np.ndarray:
    """K x K matrix sum_q v_a[pi(q)] v_b[q], chunk by chunk of pairs q."""
    out = None
    for s in range(0, p, chunk):
        pos = np.arange(s, min(s + chunk, p), dtype=np.int64)
        block = vectors.get(_moved(pos, perm, n)) @ vectors.get(slice(s, s + pos.size)).T
        out = block if out is None else out + block
    return out


def _cov_permuted(cov: np.ndarray, perm: np.ndarray, n: int, p: int, chunk: int) -> np.ndarray:
    """K x K matrix v_a' . v_b for cov_vector rows v (upper part, then the diagonal of G) when
    every a is relabelled by perm: G' = G[perm][:, perm], so v'[q] = v[moved(q)], v'[p + i] = v[p + perm_i]."""
    out = cov[:, p + perm] @ cov[:, p:].T
    for s in range(0, p, chunk):
        pos = np.arange(s, min(s + chunk, p), dtype=np.int64)
        out += cov[:, _moved(pos, perm, n)] @ cov[:, s : s + pos.size].T
    return out


# --- bootstrap of the mean similarity to a group's subjects (the model-versus-brain bars) -------


class SubjectBootstrap(NamedTuple):
    """Per (RDM, group) results, each K x G."""

    lower: np.ndarray  #: lower percentile bound, (1 - ci) / 2
    upper: np.ndarray  #: upper percentile bound, (1 + ci) / 2
    estimate: np.ndarray  #: mean_s sim(RDM_i, subject_s) on the original stimuli
    n_valid: int  #: resamples used (those where an RDM or a subject's RDM became degenerate are skipped)


def _weighted_unit(values: np.ndarray, w: np.ndarray, total: float, method: str) -> np.ndarray:
    """The vector v of a weighted resample (values at the distinct pairs, weights w) with
    v(a) . v(b) = the method's similarity of the resampled triangles (what :func:`_similarity`
    computes): sqrt(w) (x - mean_w) / norm_w (pearson), sqrt(w) x / norm_w (cosine), the weighted
    ranks of :func:`_rank_vector` (spearman, rho_a). Raises DegenerateRDMError as they do."""
    if method in ("spearman", "rho_a"):
        return _rank_vector(values, w, total, method)
    x = values - (w @ values) / total if method == "pearson" else values.copy()
    norm = math.sqrt(np.einsum("i,i,i->", w, x, x))
    if norm == 0 or (method == "pearson" and norm <= 1e-12 * np.abs(values).max()):
        raise _degenerate(np.ones(1, dtype=bool))
    x *= np.sqrt(w)
    x /= norm
    return x


def _subject_means(uppers: np.ndarray, groups: list, make) -> np.ndarray:
    """(K, G): row i, column g = mean over g's subjects s of make(RDM_i) . make(subject_s), the
    subjects' vectors averaged first (one vector per group held, one RDM's vector at a time)."""
    means = []
    for subjects in groups:
        acc = None
        for s in subjects:
            v = make(s)
            acc = v if acc is None else acc + v
        means.append(acc / len(subjects))
    out = np.empty((uppers.shape[0], len(groups)))
    for a in range(uppers.shape[0]):
        v = make(uppers[a])
        for g, m in enumerate(means):
            out[a, g] = v @ m
    return out


def _kendall_means(uppers: np.ndarray, groups: list, expanded: np.ndarray) -> np.ndarray:
    """(K, G) mean Kendall tau-a of each RDM with each group's subjects on the resampled triangle
    (``expanded``: the positions of its entries); O(P) memory per pair."""
    ties = [[tied_pairs(s[expanded]) for s in subjects] for subjects in groups]
    out = np.empty((uppers.shape[0], len(groups)))
    for a in range(uppers.shape[0]):
        x = uppers[a, expanded]
        tx = tied_pairs(x)
        for g, subjects in enumerate(groups):
            out[a, g] = np.mean([kendall_tau_a(x, s[expanded], tx, t) for s, t in zip(subjects, ties[g])])
    return out


def _checked_groups(rdms, groups, method: str, ci: float, n_boot: int) -> tuple[np.ndarray, list, int]:
    """(K, P) RDMs, the groups' (S_g, P) subject RDMs and N, checked for :func:`bootstrap_subject_similarity`."""
    uppers = condensed_rdms(rdms)
    groups = [condensed_rdms(s) for s in groups]
    _check_rdms(np.concatenate([uppers[:1], uppers[:1]]), method, CHUNK_BYTES)  # the method, N >= 3
    check_finite(uppers, "RDM entries")
    for g, s in enumerate(groups):
        if s.shape[1] != uppers.shape[1] or s.shape[0] < 1:
            raise ValueError(f"group {g}: subject RDMs of shape {s.shape} do not match the RDMs' {uppers.shape}")
        check_finite(s, f"subject RDMs of group {g}")
    if not groups:
        raise ValueError("need at least one group of subject RDMs")
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    return uppers, groups, n_from_pairs(uppers.shape[1])


def _resample_means(uppers: np.ndarray, groups: list, method: str, n: int):
    """means(counts, draws) -> (K, G) mean similarities to the groups' subjects on one resample:
    ``counts`` (times each stimulus was drawn) for the vector methods and kendall_tau_a, the sorted
    ``draws`` for cosine_cov and corr_cov (see :func:`bootstrap_subject_similarity`)."""
    p = uppers.shape[1]

    def means(counts=None, draws=None) -> np.ndarray:
        if method in WHOLE_METHODS:
            where, same = _cov_resample(draws, p)

            def make(u):
                x = u[where]
                x[same] = 0.0
                try:
                    return measures.cov_vector(x, method)
                except measures.DegenerateInputError as exc:
                    raise DegenerateRDMError(str(exc)) from None

            return _subject_means(uppers, groups, make)
        pos, w = _weighted_pairs(counts, n, _chunk(1, CHUNK_BYTES))
        if method == "kendall_tau_a":
            return _kendall_means(uppers, groups, np.repeat(pos, w.astype(np.int64)))
        total = float(w.sum())
        return _subject_means(uppers, groups, lambda u: _weighted_unit(u[pos], w, total, method))

    return means


def bootstrap_subject_similarity(rdms: np.ndarray, groups, method: str = "spearman", n_boot: int = 1000,
                                 seed: int = 0, ci: float = 0.95) -> SubjectBootstrap:
    """Percentile bootstrap CI of each RDM's mean similarity to each group's subjects.

    rdms: (K, P) condensed upper triangles (or (K, N, N)); groups: G arrays of (S_g, P) subject
    upper triangles (or (S_g, N, N)) of the same stimuli. The quantity is
    m(i, g) = (1 / S_g) sum_s sim(RDM_i, subject_{g, s}) (the bar of the model-versus-brain
    figure, rsatoolbox's ``eval_fixed``), sim the similarity of ``method`` (1 - the second-order
    dissimilarity, before any clipping). Each resample uses exactly the stimulus draws of
    :func:`bootstrap_second_order` with the same ``seed`` (the same generator calls, in the same
    order) and the same resampled triangles (pairs of draws of different stimuli; for cosine_cov
    and corr_cov the whole resampled RDM with 0 between two draws of one stimulus), and
    recomputes every sim of RDMs and subjects on it. A resample is skipped, and counted out of
    ``n_valid``, when bootstrap_second_order would skip it (too few distinct stimuli) or when any
    RDM or subject RDM becomes degenerate in it. Returns the (1 - ci)/2 and (1 + ci)/2
    percentiles over the valid resamples (numpy's linear interpolation), each K x G, the estimate
    on the original stimuli and n_valid.

    Every method but kendall_tau_a is a dot product of per-RDM vectors, so m(i, g) = v_i . mean_s
    v_s: per resample, one mean vector per group and one RDM's vector at a time. Memory beyond the
    inputs: O(P) for the resample's positions and weights, (G + 3) x P x 8 B of vectors
    (N (N + 1) / 2 entries and cov_vector's O(N^2) transients for cosine_cov, corr_cov),
    n_boot x K x G x 8 B for the samples; work O((K + sum S) P log P)
    per resample (O(K sum S P log P) for kendall_tau_a), against O(K^2 P) of the matrix bootstrap.
    """
    uppers, groups, n = _checked_groups(rdms, groups, method, ci, n_boot)
    k = uppers.shape[0]
    whole = method in WHOLE_METHODS
    means = _resample_means(uppers, groups, method, n)
    estimate = means(np.ones(n, dtype=np.int64), np.arange(n))
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, len(groups)), np.nan)
    for b in range(n_boot):
        drawn = _draw(rng, n, whole)
        if drawn is None:
            continue
        try:
            samples[b] = means(None, drawn) if whole else means(drawn, None)
        except DegenerateRDMError:
            continue
    samples = _valid(samples, n_boot, n)
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return SubjectBootstrap(lower, upper, estimate, samples.shape[0])

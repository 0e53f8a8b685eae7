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

rsaflow.subject_bootstrap.bootstrap_subject_similarity bootstraps, with the same draws, each RDM's mean similarity
to a group's subject RDMs (the bars of the model-versus-brain figure); its memory is in its docstring.

These functions never import torch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rsaflow import measures
from rsaflow.compare import DegenerateRDMError, kendall_tau_a, tied_pairs
from rsaflow.methods import METHODS
from rsaflow.resampling import (CHUNK_BYTES, UnitVectors, check_rdms, chunk_size, cov_resample, degenerate, draw,
                                pair_rows, position, rank_vector, valid_samples, weighted_pairs)


#: Absolute tolerance of ">=" in the permutation test: a relabelling that leaves the RDMs' pairing
#: unchanged gives the observed similarity up to summation-order rounding (~1e-16).
PERM_ATOL = 1e-12


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


def _dissimilarity(sim: np.ndarray) -> np.ndarray:
    """1 - s, clipped to [0, 2], upper triangle mirrored, exact zero diagonal (as compare.aggregate)."""
    upper = np.triu(np.clip(1.0 - sim, 0.0, 2.0), k=1)
    return upper + upper.T


def _gram_similarity(uppers, pos, w, method: str, chunk: int) -> np.ndarray:
    """Pearson r or cosine of every pair of weighted vectors, by chunks of pairs (two passes for pearson)."""
    k = uppers.shape[0]
    total = w.sum()
    mean = np.zeros(k)
    maxabs = np.zeros(k)
    centred = METHODS[method].centred
    if centred:
        for s in range(0, pos.size, chunk):
            x = uppers[:, pos[s : s + chunk]]
            mean += x @ w[s : s + chunk]
            np.maximum(maxabs, np.abs(x).max(axis=1), out=maxabs)
        mean /= total
    gram = np.zeros((k, k))
    for s in range(0, pos.size, chunk):
        x = uppers[:, pos[s : s + chunk]]
        if centred:
            x -= mean[:, None]
        gram += (x * w[s : s + chunk]) @ x.T
    norms = np.sqrt(np.diag(gram))
    bad = norms == 0
    if centred:
        bad |= norms <= 1e-12 * maxabs
    if np.any(bad):
        raise degenerate(bad)
    return gram / norms[:, None] / norms[None, :]


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
    info = METHODS[method]
    if info.kind == "vector" and not info.ranked:
        return _gram_similarity(uppers, pos, w, method, chunk_size(k, chunk_bytes))
    if info.kind == "vector":
        def build(rows):
            vectors = np.empty((len(rows), pos.size))
            for r, a in enumerate(rows):
                vectors[r] = rank_vector(uppers[a, pos], w, total, method)
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
    uppers, n = check_rdms(rdms, method, chunk_bytes)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    k = uppers.shape[0]
    chunk = chunk_size(k, chunk_bytes)
    whole = METHODS[method].kind == "whole"
    if whole:  # a resample is its draws (see _cov_similarity)
        def similarity(drawn):
            return _cov_similarity(uppers, drawn, method, chunk_bytes)

        everything = np.arange(n)
    else:  # a resample is the counts of each stimulus, as weighted pairs
        def similarity(drawn):
            return _similarity(uppers, *weighted_pairs(drawn, n, chunk), method, chunk_bytes)

        everything = np.ones(n, dtype=np.int64)
    estimate = _dissimilarity(similarity(everything))
    return _summarise(_resampled(similarity, k, n, n_boot, seed, whole), estimate, ci, n_boot, n)


def _resampled(similarity, k: int, n: int, n_boot: int, seed: int, whole: bool) -> np.ndarray:
    """(n_boot, K, K) dissimilarities of the resamples of ``seed`` (rsaflow.resampling.draw), NaN for
    a resample skipped (too few distinct stimuli) or degenerate; ``similarity(drawn)`` gives one
    resample's K x K similarities."""
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, k), np.nan)
    for b in range(n_boot):
        drawn = draw(rng, n, whole=whole)
        if drawn is None:
            continue
        try:
            samples[b] = _dissimilarity(similarity(drawn))
        except DegenerateRDMError:
            continue
    return samples


def _summarise(samples: np.ndarray, estimate: np.ndarray, ci: float, n_boot: int, n: int) -> BootstrapResult:
    samples = valid_samples(samples, n_boot, n)
    n_valid = samples.shape[0]
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    std = samples.std(axis=0, ddof=1)
    for m in (lower, upper, std):
        np.fill_diagonal(m, 0.0)
    return BootstrapResult(lower, upper, std, estimate, n_valid)


def _cov_similarity(uppers: np.ndarray, draws: np.ndarray, method: str, chunk_bytes: int) -> np.ndarray:
    """cosine_cov / corr_cov of every pair of RDMs of the resample ``draws`` (N stimulus indices):
    each RDM's square matrix D'_ij = d(s_i, s_j), 0 between two draws of one stimulus, whitened
    as a whole (rsaflow.measures.cov_vector of its upper triangle)."""
    k, p = uppers.shape
    n = draws.size
    where, same = cov_resample(draws, p)

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
    uppers, n = check_rdms(rdms, method, chunk_bytes)
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    k, p = uppers.shape
    chunk = chunk_size(k, chunk_bytes)
    a_idx, b_idx = np.triu_indices(k, k=1)
    rng = np.random.default_rng(seed)
    count = np.zeros(a_idx.size, dtype=np.int64)
    kind = METHODS[method].kind
    if kind == "raw":
        observed = _similarity(uppers, np.arange(p, dtype=np.int64), np.ones(p), method, chunk_bytes)
        ties = [tied_pairs(uppers[a]) for a in range(k)]
        threshold = observed[a_idx, b_idx] - PERM_ATOL
        for _ in range(n_perm):
            count += _kendall_null(uppers, rng.permutation(n), ties, chunk) >= threshold
    elif kind == "whole":
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
        vectors = UnitVectors(uppers, method, chunk)
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
    i, j = pair_rows(pos, n)
    return position(perm[i], perm[j], n)


def _permuted_products(vectors: UnitVectors, perm: np.ndarray, n: int, p: int, chunk: int) -> np.ndarray:
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

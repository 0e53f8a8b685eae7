"""Uncertainty of second-order comparisons: bootstrap over stimuli and Mantel permutation tests.

Both take the K RDMs as a (K, N, N) array of symmetric matrices with zero diagonal and a method
of :mod:`rsaflow.compare` (any but ``cka``, which compares activations, not RDMs). Each resample
or permutation is one matrix product over all K x K entries (``kendall_tau_a``: K (K - 1) / 2
O(n log n) comparisons). Seeds make every result reproducible (``numpy.random.default_rng``).
These functions never import torch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rsaflow.compare import (
    ALL_METHODS,
    DegenerateRDMError,
    aggregate,
    kendall_tau_a,
    per_rdm_vectors,
    similarity_matrix,
    tied_pairs,
)

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


def _check_rdms(rdms: np.ndarray, method: str) -> np.ndarray:
    if method == "cka":
        raise ValueError("cka compares activations, not RDMs: bootstrap/permutation of RDMs is not defined for it")
    if method not in ALL_METHODS:
        allowed = ", ".join(m for m in ALL_METHODS if m != "cka")
        raise ValueError(f"unknown comparison method {method!r}; choose one of {allowed}")
    rdms = np.asarray(rdms, dtype=np.float64)
    if rdms.ndim != 3 or rdms.shape[1] != rdms.shape[2] or rdms.shape[1] < 3 or rdms.shape[0] < 2:
        raise ValueError(f"rdms must be (K >= 2, N >= 3, N), got shape {rdms.shape}")
    if not np.all(np.isfinite(rdms)):
        raise ValueError(f"{np.count_nonzero(~np.isfinite(rdms))} RDM entries are NaN or Inf")
    return rdms


def bootstrap_second_order(rdms: np.ndarray, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
                           ci: float = 0.95) -> BootstrapResult:
    """Percentile bootstrap CI of each second-order entry, resampling stimuli with replacement.

    Each resample draws N stimulus indices s_1..s_N uniformly with replacement and rebuilds every
    RDM's upper triangle as d(s_i, s_j) for i < j, EXCLUDING the pairs with s_i == s_j (a stimulus
    drawn twice would contribute a diagonal 0 as a dissimilarity); duplicated stimuli still yield
    duplicated (tied) off-diagonal entries, as in rsatoolbox's bootstrap. The second-order matrix
    of the resample is recomputed with ``method``; resamples in which an RDM becomes degenerate
    (zero variance) are skipped and counted out of ``n_valid``. Returns the (1 - ci)/2 and
    (1 + ci)/2 percentiles (numpy's linear interpolation), the samples' std (ddof=1), the
    estimate on the original stimuli and n_valid.
    """
    rdms = _check_rdms(rdms, method)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    k, n, _ = rdms.shape
    iu, ju = np.triu_indices(n, k=1)
    estimate = aggregate(per_rdm_vectors(rdms[:, iu, ju], method), method)
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, k), np.nan)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        si, sj = idx[iu], idx[ju]
        keep = si != sj
        if np.count_nonzero(keep) < 2:
            continue
        try:
            samples[b] = aggregate(per_rdm_vectors(rdms[:, si[keep], sj[keep]], method), method)
        except DegenerateRDMError:
            continue
    valid = ~np.isnan(samples[:, 0, 0])
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise ValueError(f"only {n_valid} of {n_boot} resamples gave non-degenerate RDMs; too few stimuli ({n})?")
    samples = samples[valid]
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    std = samples.std(axis=0, ddof=1)
    for m in (lower, upper, std):
        np.fill_diagonal(m, 0.0)
    return BootstrapResult(lower, upper, std, estimate, n_valid)


def _pair_index(n: int) -> np.ndarray:
    """(N, N) array: position of pair (i, j), i != j, in the row-major upper triangle."""
    iu, ju = np.triu_indices(n, k=1)
    pos = np.zeros((n, n), dtype=np.intp)
    pos[iu, ju] = np.arange(iu.size)
    return pos + pos.T


def permutation_test(rdms: np.ndarray, method: str = "spearman", n_perm: int = 1000,
                     seed: int = 0) -> PermutationResult:
    """Mantel test of every pair of RDMs: one-sided p-value that s(a, b) is this large by chance.

    Each permutation pi relabels the stimuli of RDM a (rows and columns together,
    a'(i, j) = a(pi_i, pi_j)) and recomputes s(a', b) against every b; with the same pi for all
    a, this is one matrix product per permutation. For a < b,
    p(a, b) = (1 + #{pi : s(a', b) >= s(a, b) - PERM_ATOL}) / (1 + n_perm), mirrored to (b, a)
    (relabelling a by pi equals relabelling b by pi^-1, so the null is the same either way);
    the diagonal is NaN. Under the null (no relation between a and b) P(p <= alpha) <= alpha.
    """
    rdms = _check_rdms(rdms, method)
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    k, n, _ = rdms.shape
    iu, ju = np.triu_indices(n, k=1)
    vectors = per_rdm_vectors(rdms[:, iu, ju], method)
    observed = similarity_matrix(vectors, method)
    a_idx, b_idx = np.triu_indices(k, k=1)
    threshold = observed[a_idx, b_idx] - PERM_ATOL
    pos = _pair_index(n)
    ties = [tied_pairs(v) for v in vectors] if method == "kendall_tau_a" else None
    rng = np.random.default_rng(seed)
    count = np.zeros(a_idx.size, dtype=np.int64)
    for _ in range(n_perm):
        perm = rng.permutation(n)
        permuted = vectors[:, pos[perm[iu], perm[ju]]]  # rank/centre/scale commute with relabelling
        if method == "kendall_tau_a":
            null = np.array([kendall_tau_a(permuted[a], vectors[b], ties[a], ties[b]) for a, b in zip(a_idx, b_idx)])
        else:
            null = (permuted @ vectors.T)[a_idx, b_idx]
        count += null >= threshold
    p = np.full((k, k), np.nan)
    p[a_idx, b_idx] = p[b_idx, a_idx] = (1.0 + count) / (1.0 + n_perm)
    return PermutationResult(p, observed)

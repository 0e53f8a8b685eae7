"""rsatoolbox's noise ceilings of a group of subjects' RDMs, and the RDM similarity they use.

Upper triangles (diagonal excluded, scipy ``squareform`` order, as rsatoolbox's RDM vectors).
:func:`noise_ceiling` gives rsatoolbox's leave-one-subject-out lower and all-subjects upper
bounds (``rsatoolbox.inference.boot_noise_ceiling``) for the methods whose registry entry has a
``pool`` (rsaflow.methods.NOISE_CEILING_METHODS). The similarities are the second order's own
(rsaflow.compare for the vector and raw methods, rsaflow.measures.cov_vector for the whole-RDM
ones): one implementation of each formula.
"""

from __future__ import annotations

import numpy as np

from rsaflow.compare import average_ranks, kendall_tau_a, n_from_pairs, per_rdm_vector
from rsaflow.measures import cov_vector
from rsaflow.methods import METHODS, NOISE_CEILING_METHODS


def rdm_similarity(a, b, method: str) -> float:
    """Similarity of two upper triangles as rsatoolbox's ``compare`` with ``METHODS[method].rsatoolbox``.

    spearman: Pearson r of average ranks; pearson: Pearson r; cosine: uncentred cosine;
    rho_a: 12 (r(a) - mean) . (r(b) - mean) / (n^3 - n); kendall_tau_a: (concordant -
    discordant) / (n (n - 1) / 2); cosine_cov, corr_cov: rsaflow.measures.cosine_cov, corr_cov; a
    pairwise method: its own function (Method.pair_function).
    The vector methods are the dot product of rsaflow.compare.per_rdm_vector (what the second
    order compares); a constant (or, for cosine, all-zero) RDM raises DegenerateRDMError.
    """
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    if method not in NOISE_CEILING_METHODS:
        raise ValueError(f"unknown RDM comparison {method!r}; allowed: {', '.join(NOISE_CEILING_METHODS)}")
    kind = METHODS[method].kind
    if kind == "raw":
        return kendall_tau_a(a, b)
    if kind == "pairwise":
        return float(METHODS[method].pair_function()(a, b))
    if kind == "whole":
        return float(cov_vector(a, method) @ cov_vector(b, method))
    return float(per_rdm_vector(a, method) @ per_rdm_vector(b, method))


def pool_rdms(uppers: np.ndarray, method: str) -> np.ndarray:
    """Average of subjects' RDMs as rsatoolbox's ``util.inference_util.pool_rdm`` forms it.

    uppers: (S, n) upper triangles. By the method's ``pool`` (rsaflow.methods): ``rms`` (cosine,
    cosine_cov): mean of d_s / sqrt(mean(d_s^2)); ``zscore`` (pearson, corr_cov): mean of the
    z-scored d_s (std with ddof 0), minus its minimum; ``ranks`` (spearman, rho_a,
    kendall_tau_a): mean of the average ranks. (rsatoolbox normalises cosine_cov / corr_cov by
    the unwhitened RMS / std, and so does this.)
    """
    u = np.asarray(uppers, dtype=np.float64)
    pool = METHODS[method].pool if method in METHODS else None
    if pool == "rms":
        return (u / np.sqrt(np.mean(u**2, axis=1, keepdims=True))).mean(axis=0)
    if pool == "zscore":
        z = u - u.mean(axis=1, keepdims=True)
        pooled = (z / z.std(axis=1, keepdims=True)).mean(axis=0)
        return pooled - pooled.min()
    if pool == "ranks":
        return np.array([average_ranks(row) for row in u]).mean(axis=0)
    raise ValueError(f"no noise ceiling for {method!r}; allowed: {', '.join(NOISE_CEILING_METHODS)}")


def _as_uppers(subject_rdms) -> np.ndarray:
    r = np.asarray(subject_rdms, dtype=np.float64)
    if r.ndim == 3:
        if r.shape[1] != r.shape[2]:
            raise ValueError(f"subject RDMs must be S x N x N, got shape {r.shape}")
        iu = np.triu_indices(r.shape[1], k=1)
        r = r[:, iu[0], iu[1]]
    if r.ndim != 2 or r.shape[0] < 2:
        raise ValueError(f"a noise ceiling needs at least 2 subjects' RDMs (S x n or S x N x N), got {r.shape}")
    if not np.all(np.isfinite(r)):
        raise ValueError("subject RDMs contain NaN or inf; the noise ceiling needs complete RDMs")
    n_from_pairs(r.shape[1])
    return r


def noise_ceiling(subject_rdms, method: str = "spearman") -> tuple[float, float]:
    """Lower and upper noise ceilings of a group of subjects' RDMs, as rsatoolbox computes them.

    subject_rdms: (S, n) upper triangles or (S, N, N) square RDMs, S >= 2 subjects.
    lower = mean_s sim(pool(RDMs except s), RDM_s)  (leave one subject out),
    upper = mean_s sim(pool(all RDMs), RDM_s),
    with sim = :func:`rdm_similarity` (method) and pool = :func:`pool_rdms` (method): exactly
    ``rsatoolbox.inference.boot_noise_ceiling(rdms, method=METHODS[method].rsatoolbox)``, the
    ceiling rsatoolbox's ``eval_*`` functions report. A model's mean similarity to the subjects
    cannot be expected above the upper bound; the lower bound is what the other subjects'
    average achieves.
    """
    if method not in NOISE_CEILING_METHODS:
        raise ValueError(f"no noise ceiling for {method!r}; allowed: {', '.join(NOISE_CEILING_METHODS)}")
    u = _as_uppers(subject_rdms)
    everyone = pool_rdms(u, method)
    lower, upper = [], []
    for s in range(u.shape[0]):
        others = pool_rdms(np.delete(u, s, axis=0), method)
        lower.append(rdm_similarity(others, u[s], method))
        upper.append(rdm_similarity(everyone, u[s], method))
    return float(np.mean(lower)), float(np.mean(upper))

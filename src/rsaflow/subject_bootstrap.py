"""Bootstrap of each RDM's mean similarity to a group's subject RDMs (the model-versus-brain bars).

Uses exactly the stimulus draws of :func:`rsaflow.inference.bootstrap_second_order` with the same
seed (:func:`bootstrap_subject_similarity`). Never imports torch.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from rsaflow import measures
from rsaflow.compare import DegenerateRDMError, kendall_tau_a, n_from_pairs, tied_pairs
from rsaflow.finite import check_finite
from rsaflow.methods import METHODS
from rsaflow.resampling import (CHUNK_BYTES, check_rdms, chunk_size, condensed_rdms, cov_resample, draw,
                                valid_samples, weighted_pairs, weighted_unit)


class SubjectBootstrap(NamedTuple):
    """Per (RDM, group) results, each K x G."""

    lower: np.ndarray  #: lower percentile bound, (1 - ci) / 2
    upper: np.ndarray  #: upper percentile bound, (1 + ci) / 2
    estimate: np.ndarray  #: mean_s sim(RDM_i, subject_s) on the original stimuli
    n_valid: int  #: resamples used (those where an RDM or a subject's RDM became degenerate are skipped)


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
    check_rdms(np.concatenate([uppers[:1], uppers[:1]]), method, CHUNK_BYTES)  # the method, N >= 3
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
        if METHODS[method].kind == "whole":
            where, same = cov_resample(draws, p)

            def make(u):
                x = u[where]
                x[same] = 0.0
                try:
                    return measures.cov_vector(x, method)
                except measures.DegenerateInputError as exc:
                    raise DegenerateRDMError(str(exc)) from None

            return _subject_means(uppers, groups, make)
        pos, w = weighted_pairs(counts, n, chunk_size(1, CHUNK_BYTES))
        if METHODS[method].kind == "raw":
            return _kendall_means(uppers, groups, np.repeat(pos, w.astype(np.int64)))
        total = float(w.sum())
        return _subject_means(uppers, groups, lambda u: weighted_unit(u[pos], w, total, method))

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
    whole = METHODS[method].kind == "whole"
    means = _resample_means(uppers, groups, method, n)
    estimate = means(np.ones(n, dtype=np.int64), np.arange(n))
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, len(groups)), np.nan)
    for b in range(n_boot):
        drawn = draw(rng, n, whole)
        if drawn is None:
            continue
        try:
            samples[b] = means(None, drawn) if whole else means(drawn, None)
        except DegenerateRDMError:
            continue
    samples = valid_samples(samples, n_boot, n)
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return SubjectBootstrap(lower, upper, estimate, samples.shape[0])

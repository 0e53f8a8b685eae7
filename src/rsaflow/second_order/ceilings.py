"""Noise ceilings of the external groups of an analysis, and every input's similarity to their subjects.

A group is an external RDM file with dataset ``subjects`` (S, P) (rsaflow.jobs.external_rdm);
the ceilings are rsatoolbox's (rsaflow.ceiling.noise_ceiling), the subject similarities and
their bootstrap intervals those its ``eval_fixed`` reports (:func:`group_ceilings`).
"""

from __future__ import annotations

import logging

import numpy as np

from rsaflow import h5io
from rsaflow.methods import METHODS
from rsaflow.second_order.inputs import vector_length

log = logging.getLogger(__name__)


def condensed_stack(records: list[dict]) -> np.ndarray:
    """(K, P) float64: every RDM's condensed values (for inference, which needs them all)."""
    out = np.empty((len(records), vector_length(records[0]["path"], "spearman")))
    for i, r in enumerate(records):
        with h5io.open_artifact(r["path"], "rdm") as f:
            f["condensed"].read_direct(out[i])
    return out


def _subject_vectors(uppers: np.ndarray, method: str):
    """Per-RDM vectors whose dot products are ``method``'s similarity (None: compare pairwise)."""
    from rsaflow.compare import per_rdm_vectors
    from rsaflow.measures import cov_vector

    kind = METHODS[method].kind
    if kind == "vector":
        return per_rdm_vectors(uppers, method)
    if kind == "whole":
        return np.stack([cov_vector(u, method) for u in uppers])
    return None


def group_ceilings(records: list[dict], method: str, n_boot: int = 0, seed: int = 0, ci: float = 0.95,
                   stack: np.ndarray | None = None) -> dict:
    """Noise ceilings of the external groups among ``records`` and every RDM's similarity to their subjects.

    A group is an external RDM file with dataset ``subjects`` (S, P) (rsaflow.jobs.external_rdm).
    For group g and each RDM i (``records`` order, that of ``labels``): ``noise_ceiling_lower[g]``,
    ``noise_ceiling_upper[g]`` = rsaflow.ceiling.noise_ceiling(subjects, method) (exactly
    rsatoolbox's ``boot_noise_ceiling``), ``n_subjects[g]`` = S, ``subject_similarity[i, g]`` =
    mean_s sim(RDM_i, RDM_s) and ``subject_similarity_sem[i, g]`` = std_s (ddof 0) / sqrt(S): the
    quantity the ceiling bounds and its error, as rsatoolbox's ``eval_fixed``. NaN (0 for
    n_subjects) elsewhere. Empty (nothing written) when no group joined, or for a method without
    a noise ceiling (Method.pool, rsaflow.methods; the activation measures: externals do not join).
    Memory: the groups' subjects (8 sum S P) plus one RDM's vector at a time; O(K sum S P) work.

    With ``n_boot`` > 0 (config ``bootstrap``), also ``subject_similarity_ci_lower`` and
    ``subject_similarity_ci_upper`` (K, K, NaN outside group columns): the percentile interval
    ``ci`` of subject_similarity[i, g] over ``n_boot`` resamples of the stimuli,
    rsaflow.subject_bootstrap.bootstrap_subject_similarity, with the same draws (``seed``) as the matrix's
    ``ci_lower``/``ci_upper``. Adds the K condensed RDMs (8 K P, as the matrix bootstrap holds;
    ``stack``, when the caller has read them, is used instead of reading them again) and
    (G + 3) x 8 P of vectors; O((K + sum S) P log P) work per resample.
    """
    from rsaflow.ceiling import noise_ceiling
    from rsaflow.results import read_subjects

    if not METHODS[method].ceiling:
        return {}
    groups = {g: read_subjects(r["path"]) for g, r in enumerate(records) if r["model"] in ("external", "brain")}
    groups = {g: u for g, u in groups.items() if u is not None}
    if not groups:
        return {}
    k = len(records)
    out = {name: np.full(shape, np.nan) for name, shape in (("noise_ceiling_lower", k), ("noise_ceiling_upper", k),
                                                            ("subject_similarity", (k, k)),
                                                            ("subject_similarity_sem", (k, k)))}
    out["n_subjects"] = np.zeros(k, dtype=np.int64)
    for g, uppers in groups.items():
        out["noise_ceiling_lower"][g], out["noise_ceiling_upper"][g] = noise_ceiling(uppers, method)
        out["n_subjects"][g] = uppers.shape[0]
        log.info("noise ceiling of %s (%d subjects, %s): lower %.4f, upper %.4f", records[g]["label"],
                 uppers.shape[0], method, out["noise_ceiling_lower"][g], out["noise_ceiling_upper"][g])
    _subject_similarities(records, groups, method, out, stack)
    if n_boot:
        stack = condensed_stack(records) if stack is None else stack
        out.update(_subject_bootstrap(records, groups, method, n_boot, seed, ci, stack))
    return out


def _subject_similarities(records: list[dict], groups: dict, method: str, out: dict, stack=None) -> None:
    """Fill ``subject_similarity`` and ``subject_similarity_sem`` (see :func:`group_ceilings`);
    each RDM from ``stack`` (K, P) when the caller holds it, else read one at a time."""
    from rsaflow.ceiling import rdm_similarity
    from rsaflow.results import read_rdm

    vectors = {g: _subject_vectors(uppers, method) for g, uppers in groups.items()}
    for i, r in enumerate(records):
        x = read_rdm(r["path"])["condensed"] if stack is None else stack[i]
        vx = _subject_vectors(x[None], method)
        for g, uppers in groups.items():
            if vx is None:
                sims = np.array([rdm_similarity(x, u, method) for u in uppers])
            else:
                sims = vectors[g] @ vx[0]
            out["subject_similarity"][i, g] = sims.mean()
            out["subject_similarity_sem"][i, g] = sims.std() / np.sqrt(sims.size)


def _subject_bootstrap(records: list[dict], groups: dict, method: str, n_boot: int, seed: int, ci: float,
                       stack: np.ndarray) -> dict:
    """``subject_similarity_ci_lower`` / ``_ci_upper`` (see :func:`group_ceilings`)."""
    from rsaflow.subject_bootstrap import bootstrap_subject_similarity

    k, cols = len(records), list(groups)
    log.info("bootstrap of the subject similarities: %d resamples of the stimuli", n_boot)
    boot = bootstrap_subject_similarity(stack, [groups[g] for g in cols], method, n_boot, seed, ci)
    out = {}
    for name, values in (("subject_similarity_ci_lower", boot.lower), ("subject_similarity_ci_upper", boot.upper)):
        out[name] = np.full((k, k), np.nan)
        out[name][:, cols] = values
    log.info("bootstrap of the subject similarities: %d of %d resamples valid", boot.n_valid, n_boot)
    return out

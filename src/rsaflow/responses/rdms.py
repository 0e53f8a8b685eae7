"""RDMs from measured responses (runs, N stimuli, C channels), as ``rsatoolbox.rdm.calc_rdm`` computes them.

Conventions (rsatoolbox 0.3's, checked against it to 1e-10 in tests/test_responses.py). ``x_r,i`` is
stimulus i's pattern in run r (R runs), ``p_i = mean_r x_r,i`` its run average (rsatoolbox's
``average_dataset_by(dataset, descriptor)`` for the non-cross-validated metrics), ``W`` the noise
precision (rsaflow.responses.noise; identity for ``none``), C the number of channels. Every
distance is divided by C (rsatoolbox's ``/ measurements.shape[1]``):

===============  ===========================================================================
euclidean        ``||p_i - p_j||^2 / C`` (squared; scipy's 'sqeuclidean' / C)
correlation      ``1 - r(p_i, p_j)``, Pearson r over channels (no division by C)
mahalanobis      ``(p_i - p_j) W (p_i - p_j)^T / C`` (``none``: euclidean)
crossnobis       leave-one-run-out: fold f trains on ``a = mean_{r != f} x_r``, tests on
                 ``b = x_f``; ``(a_i - a_j) W (b_i - b_j)^T / C`` averaged over the R folds
                 (rsatoolbox with ``cv_descriptor`` = run). Unbiased: 0 in expectation for
                 stimuli with equal true patterns when the runs' noise is independent.
poisson          symmetrised KL of Poisson rates ``q = (p + lambda w) / (1 + w)``:
                 ``(q_i - q_j) . (log q_i - log q_j) / C`` (lambda = prior_lambda, w = prior_weight)
poisson_cv       the same with ``q`` from the training mean and ``log q`` from the held-out run,
                 averaged over the R folds. rsatoolbox 0.3's ``calc_rdm_poisson_cv`` returns the
                 LAST fold only (its loop overwrites ``rdm``); each of our folds equals its result
                 with that fold last, and we average all of them (tested).
===============  ===========================================================================

Each returns the condensed upper triangle (P = N (N - 1) / 2,) float64 in squareform order.

Memory: channels are read in blocks of ``block_bytes`` (default 256 MiB of float64 responses,
R N c x 8 B) whenever the precision is the identity or diagonal, so ``responses`` may be a
memory-mapped ``.npy``: peak about 3 x the block + 3 x 8 N^2 B; a full precision (shrinkage)
needs all channels at once: the responses as float64 + 2 x 8 N C + the C x C precision.
Crossnobis computes the sum over folds in closed form, ``sum_f a_f W b_f^T = (S W S^T - sum_r
x_r W x_r^T) / (R - 1)`` with ``S = sum_r x_r``: R + 1 Gram products instead of 2 R.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from rsaflow.rdmfile import upper_triangle
from rsaflow.responses.noise import Precision

BLOCK_BYTES = 256 * 2**20


def _blocks(responses, block_bytes: int, precision: Precision):
    """Channel slices: all at once for a full precision, else blocks of ``block_bytes``."""
    r, n, c = responses.shape
    if not precision.separable:
        yield slice(0, c)
        return
    step = max(1, int(block_bytes // (8 * r * n)))
    for lo in range(0, c, step):
        yield slice(lo, min(c, lo + step))


def _block(responses, cols: slice, present: np.ndarray | None = None) -> np.ndarray:
    """The channels ``cols`` as float64; with ``present`` (R, N), the missing (run, stimulus) rows as 0."""
    x = np.asarray(responses[:, :, cols], dtype=np.float64)
    if present is not None:
        x = np.where(present[:, :, None], x, 0.0)
    return x


def _from_kernel(k: np.ndarray, c: int) -> np.ndarray:
    """``(k_ii + k_jj - k_ij - k_ji) / C``, condensed."""
    d = np.diag(k).copy()
    rdm = d[:, None] + d[None, :] - k - k.T
    return upper_triangle(rdm) / c


def euclidean(responses, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES, present=None,
              **_) -> np.ndarray:
    """Squared Euclidean distance of the run-averaged patterns over C: ``||p_i - p_j||^2 / C``
    (rsatoolbox 'euclidean'; the precision is ignored)."""
    return mahalanobis(responses, Precision(), block_bytes, present)


def mahalanobis(responses, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES, present=None,
                **_) -> np.ndarray:
    """``(p_i - p_j) W (p_i - p_j)^T / C`` of the run-averaged patterns (rsatoolbox 'mahalanobis').

    ``present`` (R, N) bool, unbalanced designs: p_i is the mean over the runs that hold stimulus i,
    as rsatoolbox's ``calc_rdm_unbalanced`` (which averages x_a W x_b over all pairs of i's and j's
    measurements, a measurement with itself included)."""
    r, n, c = responses.shape
    k = np.zeros((n, n))
    runs = None if present is None else present.sum(axis=0).astype(np.float64)[:, None]
    for cols in _blocks(responses, block_bytes, precision):
        x = _block(responses, cols, present)
        p = x.mean(axis=0) if runs is None else x.sum(axis=0) / runs
        k += precision.apply(p, cols) @ p.T
    return _from_kernel(k, c)


def correlation(responses, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES, **_) -> np.ndarray:
    """``1 - r(p_i, p_j)``: Pearson correlation over channels of the run-averaged patterns
    (rsatoolbox 'correlation'; two passes over the channel blocks: the means, then the centred Gram)."""
    r, n, c = responses.shape
    ident = Precision()
    mean = np.zeros(n)
    for cols in _blocks(responses, block_bytes, ident):
        mean += _block(responses, cols).mean(axis=0).sum(axis=1)
    mean /= c
    g = np.zeros((n, n))
    for cols in _blocks(responses, block_bytes, ident):
        p = _block(responses, cols).mean(axis=0) - mean[:, None]
        g += p @ p.T
    norm = np.sqrt(np.diag(g))
    return upper_triangle(1 - g / norm[:, None] / norm[None, :])


def crossnobis(responses, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES, present=None,
               **_) -> np.ndarray:
    """Leave-one-run-out cross-validated Mahalanobis distance over C, averaged over the R folds
    (rsatoolbox 'crossnobis', ``cv_descriptor`` = run, one precision for all folds).

    The kernel is the mean of x_r,i W x_f,j^T over the R (R - 1) ordered pairs of runs r != f. With
    ``present`` (R, N) bool (unbalanced designs) it is the mean over the pairs of different runs that
    hold both stimuli, ``(m m^T - sum_r m_r m_r^T)`` of them (m = runs per stimulus), as rsatoolbox's
    ``calc_rdm_unbalanced`` with ``cv_descriptor`` = run."""
    r, n, c = responses.shape
    if r < 2:
        raise ValueError(f"crossnobis needs at least 2 runs, got {r}")
    k = np.zeros((n, n))
    for cols in _blocks(responses, block_bytes, precision):
        x = _block(responses, cols, present)
        s = x.sum(axis=0)
        sw = np.zeros_like(s)
        for f in range(r):
            xw = precision.apply(x[f], cols)
            sw += xw
            k -= xw @ x[f].T
        k += sw @ s.T
    if present is None:
        return _from_kernel(k / (r * (r - 1)), c)
    m = present.astype(np.float64)
    pairs = np.outer(m.sum(axis=0), m.sum(axis=0)) - m.T @ m
    return _from_kernel(k / pairs, c)


def _pair_precision(a: Precision, b: Precision, c: int) -> Precision:
    """The precision of a pair of runs from theirs: the inverse of the mean of the two covariances
    (rsatoolbox's crossnobis with a list of precisions); diagonal when both are."""
    if a.full is None and b.full is None:
        if a.diag is None and b.diag is None:
            return Precision()
        da, db = (1.0 if p.diag is None else p.diag for p in (a, b))
        return Precision(diag=np.broadcast_to(2.0 / (1.0 / da + 1.0 / db), (c,)).copy())
    ma, mb = (np.eye(c) if p.matrix(c) is None else p.matrix(c) for p in (a, b))
    return Precision(full=np.linalg.inv((np.linalg.inv(ma) + np.linalg.inv(mb)) / 2))


def crossnobis_per_run(responses, precisions: list, block_bytes: int = BLOCK_BYTES) -> np.ndarray:
    """Crossnobis with one noise precision per run (rsatoolbox's ``calc_rdm_crossnobis`` with a list of
    precisions, one per fold): the mean over the R (R - 1) / 2 pairs of runs r < f of
    ``(x_r,i - x_r,j) W_rf (x_f,i - x_f,j)^T / C``, ``W_rf`` the inverse of the mean of the two runs'
    covariances (:func:`_pair_precision`, made when its pair is reached). Not the leave-one-run-out
    average of a single precision: rsatoolbox's estimator for this case."""
    r, n, c = responses.shape
    if len(precisions) != r:
        raise ValueError(f"{len(precisions)} noise precisions for {r} runs: give one per run")
    pairs = [(i, j) for i in range(r) for j in range(i + 1, r)]
    full = any(not p.separable for p in precisions)
    k = np.zeros((n, n))
    for cols in _blocks(responses, block_bytes, Precision(full=np.eye(1)) if full else Precision()):
        x = _block(responses, cols)
        for i, j in pairs:
            w = _pair_precision(precisions[i], precisions[j], c)
            k += w.apply(x[i], cols) @ x[j].T
    return _from_kernel(k / len(pairs), c)


def _rates(x: np.ndarray, prior_lambda: float, prior_weight: float) -> np.ndarray:
    return (x + prior_lambda * prior_weight) / (1 + prior_weight)


def poisson(responses, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES,
            prior_lambda: float = 1.0, prior_weight: float = 0.1, **_) -> np.ndarray:
    """Symmetrised Poisson KL of the run-averaged rates ``q = (p + lambda w) / (1 + w)`` over C
    (rsatoolbox 'poisson' with ``prior_lambda``, ``prior_weight``; needs non-negative counts)."""
    r, n, c = responses.shape
    k = np.zeros((n, n))
    for cols in _blocks(responses, block_bytes, Precision()):
        q = _rates(_block(responses, cols).mean(axis=0), prior_lambda, prior_weight)
        k += q @ np.log(q).T
    return _from_kernel(k, c)


def poisson_cv_folds(responses, block_bytes: int = BLOCK_BYTES, prior_lambda: float = 1.0,
                     prior_weight: float = 0.1) -> np.ndarray:
    """(R, P): fold f's cross-validated Poisson KL (training rates from the mean of the other runs,
    log rates from run f), each equal to rsatoolbox's ``calc_rdm_poisson_cv`` when f is its last fold."""
    r, n, c = responses.shape
    if r < 2:
        raise ValueError(f"poisson_cv needs at least 2 runs, got {r}")
    k = np.zeros((r, n, n))
    for cols in _blocks(responses, block_bytes, Precision()):
        x = _block(responses, cols)
        s = x.sum(axis=0)
        for f in range(r):
            train = _rates((s - x[f]) / (r - 1), prior_lambda, prior_weight)
            k[f] += train @ np.log(_rates(x[f], prior_lambda, prior_weight)).T
    return np.stack([_from_kernel(k[f], c) for f in range(r)])


def poisson_cv(responses, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES,
               prior_lambda: float = 1.0, prior_weight: float = 0.1, **_) -> np.ndarray:
    """Mean over the R folds of :func:`poisson_cv_folds` (rsatoolbox keeps the last fold only)."""
    return poisson_cv_folds(responses, block_bytes, prior_lambda, prior_weight).mean(axis=0)


@dataclass(frozen=True)
class ResponseMetric:
    """One RDM metric on responses: ``compute(responses, precision, block_bytes, **options)`` ->
    condensed RDM; ``cross_validated``: needs >= 2 runs (folds = runs); ``uses_noise``: takes the
    precision (others refuse a noise estimate other than ``none``); ``rsatoolbox``: its method name;
    ``per_fold_kernels``: holds an N x N kernel per run (memory, rsaflow.responses.io.rdm_job_bytes);
    ``unbalanced``: takes ``present`` (runs missing stimuli), as rsatoolbox's calc_rdm_unbalanced;
    ``counts``: needs non-negative responses (spike counts: log rates); ``per_run_noise``: its form with
    one precision per run, ``f(responses, precisions, block_bytes)`` (None: not offered)."""

    name: str
    compute: Callable
    cross_validated: bool
    uses_noise: bool
    rsatoolbox: str
    formula: str
    per_fold_kernels: bool = False
    unbalanced: bool = False
    counts: bool = False
    per_run_noise: Callable | None = None


RESPONSE_METRICS = {
    m.name: m
    for m in (
        ResponseMetric("euclidean", euclidean, False, False, "euclidean", "||p_i - p_j||^2 / C", unbalanced=True),
        ResponseMetric("correlation", correlation, False, False, "correlation", "1 - r(p_i, p_j)"),
        ResponseMetric("mahalanobis", mahalanobis, False, True, "mahalanobis", "(p_i - p_j) W (p_i - p_j)^T / C",
                       unbalanced=True),
        ResponseMetric("crossnobis", crossnobis, True, True, "crossnobis",
                       "mean_f (a_f,i - a_f,j) W (b_f,i - b_f,j)^T / C", unbalanced=True,
                       per_run_noise=crossnobis_per_run),
        ResponseMetric("poisson", poisson, False, False, "poisson", "(q_i - q_j) . (log q_i - log q_j) / C",
                       counts=True),
        ResponseMetric("poisson_cv", poisson_cv, True, False, "poisson_cv",
                       "mean_f (q_f,i - q_f,j) . (log q'_f,i - log q'_f,j) / C", per_fold_kernels=True,
                       counts=True),
    )
}


def response_rdm(responses, metric: str, precision: Precision = Precision(), block_bytes: int = BLOCK_BYTES,
                 present: np.ndarray | None = None, **options) -> np.ndarray:
    """The condensed RDM of ``responses`` (R, N, C) under ``metric`` (a key of RESPONSE_METRICS).

    ``present`` (R, N) bool: which (run, stimulus) responses exist (an unbalanced design; the others
    are ignored, NaN or not), for the metrics whose record says ``unbalanced``; None: all."""
    record = RESPONSE_METRICS[metric]
    if isinstance(precision, (list, tuple)):  # one per run
        if record.per_run_noise is None or present is not None:
            raise ValueError(f"one noise precision per run is offered for balanced runs and "
                             f"{', '.join(m for m, x in RESPONSE_METRICS.items() if x.per_run_noise)} only")
        return record.per_run_noise(responses, list(precision), block_bytes)
    if present is not None:
        if not record.unbalanced:
            raise ValueError(f"{metric} has no unbalanced form here; "
                             f"use one of {', '.join(m for m, r in RESPONSE_METRICS.items() if r.unbalanced)}")
        options["present"] = np.asarray(present, dtype=bool)
    if responses.ndim != 3:
        raise ValueError(f"responses must be (runs, stimuli, channels), got shape {responses.shape}")
    if record.cross_validated and responses.shape[0] < 2:
        raise ValueError(f"{metric} is cross-validated over runs and needs at least 2 runs, got {responses.shape[0]}")
    return record.compute(responses, precision if record.uses_noise else Precision(), block_bytes, **options)

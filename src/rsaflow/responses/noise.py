"""Noise precision from GLM residuals, as ``rsatoolbox.data.noise.prec_from_residuals`` estimates it.

Residuals ``E``: (T, C), T time points (or observations) by C channels. Every estimate first
removes the channel means over T (rsatoolbox's ``_check_demean``: ``E - E.mean(axis=0)``) and
divides by ``dof`` (default ``T - 1``; a GLM user passes ``T - regressors``). With
``X = E - mean``:

====================  ==============================================================  =================
name                  covariance (rsatoolbox's ``cov_from_residuals(method=...)``)     memory, work
====================  ==============================================================  =================
``none``              no estimate: the identity (crossnobis then is cross-validated   O(1)
                      squared Euclidean; mahalanobis is euclidean)
``diag``              ``diag(sum_t x_tc^2 / dof)``; precision ``1 / var``, kept as a   8 C B, O(T C)
                      vector (rsatoolbox builds the C x C diagonal matrix)
``shrinkage_eye``     Ledoit & Wolf (2004): ``S = X^T X / T``, ``m = tr(S) / C``,     ~3 x 8 C^2 B,
                      ``d2 = ||S - m I||_F^2``, ``b2 = min(d2, (sum_t ||x_t||^4 / T``  O(T C^2 + C^3)
                      ``- ||S||_F^2) / T)``, ``(b2/d2 m I + (d2-b2)/d2 S) T / dof``
``shrinkage_diag``    Schäfer & Strimmer (2005): ``S = X^T X / dof``, off-diagonals     ~3 x 8 C^2 B,
                      times ``1 - lambda``, ``lambda`` clipped to [0, 1] from the       O(T C^2 + C^3)
                      variances of the standardised products (rsatoolbox's formula)
====================  ==============================================================  =================

The precision is the inverse (``numpy.linalg.inv``, as rsatoolbox). The shrinkage estimates are
C x C matrices by nature; ``diag`` and ``none`` never form one. rsatoolbox forms the squared products
``s2`` as a second C x C matrix from a Python loop over T outer products; here only their sums are
needed and come from O(T C) row norms, so its ``shrinkage_*`` equal ours to rounding (1e-10).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np


@dataclass(frozen=True)
class Precision:
    """A noise precision: ``None`` (identity), a diagonal (vector of C), or a full C x C matrix."""

    diag: np.ndarray | None = None
    full: np.ndarray | None = None

    def apply(self, x: np.ndarray, cols: slice = slice(None)) -> np.ndarray:
        """``x @ W`` for patterns ``x`` (..., c) of channels ``cols`` (diagonal / identity only;
        a full precision needs every channel: call with ``cols`` all)."""
        if self.full is not None:
            return x @ self.full
        if self.diag is not None:
            return x * self.diag[cols]
        return x

    @property
    def separable(self) -> bool:
        """Whether channels can be processed in blocks (identity or diagonal)."""
        return self.full is None

    def matrix(self, n_channels: int) -> np.ndarray | None:
        """The C x C matrix as rsatoolbox takes it (``noise=``); None for the identity."""
        if self.full is not None:
            return self.full
        return None if self.diag is None else np.diag(self.diag)


def _demeaned(residuals: np.ndarray, dof: int | None) -> tuple[np.ndarray, int]:
    x = np.asarray(residuals, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"residuals must be (T, channels) with T >= 2, got shape {x.shape}")
    x = x - x.mean(axis=0, keepdims=True)
    return x, (x.shape[0] - 1 if dof is None else int(dof))


def _none(residuals, dof=None) -> Precision:
    return Precision()


def _diag(residuals, dof=None) -> Precision:
    x, dof = _demeaned(residuals, dof)
    var = np.einsum("ij,ij->j", x, x) / dof
    if np.any(var <= 0):
        raise ValueError(f"{int(np.sum(var <= 0))} channels have zero residual variance: drop them (mask)")
    return Precision(diag=1.0 / var)


def shrinkage_eye_cov(x: np.ndarray, dof: int) -> np.ndarray:
    """Ledoit-Wolf covariance of demeaned ``x`` (T, C), rsatoolbox's ``_covariance_eye``."""
    t, c = x.shape
    s = x.T @ x / t
    # sum over all entries of s2 = sum_t (sum_i x_ti^2)^2 / T: no second C x C matrix.
    sum_s2 = np.sum(np.einsum("ij,ij->i", x, x) ** 2) / t
    b2 = (sum_s2 - np.sum(s * s)) / t
    m = np.trace(s) / c
    d2 = np.sum(s * s) - 2 * m * np.trace(s) + m * m * c
    b2 = min(d2, b2)
    s *= (d2 - b2) / d2
    s[np.diag_indices(c)] += b2 / d2 * m
    s *= t / dof
    return s


def shrinkage_diag_cov(x: np.ndarray, dof: int) -> np.ndarray:
    """Schäfer-Strimmer covariance of demeaned ``x`` (T, C), rsatoolbox's ``_covariance_diag``."""
    t, c = x.shape
    s = x.T @ x / dof
    var = np.diag(s).copy()
    # s_mean = s_sum / (std_i std_j) / (T - 1); its off-diagonal squares, from s itself.
    s_mean_sq = (s * s) * (dof * dof) / np.outer(var, var) / (t - 1) ** 2
    off_s_mean_sq = s_mean_sq.sum() - np.trace(s_mean_sq)
    del s_mean_sq
    z2 = x * x / var  # x_ti^2 / var_i
    # sum_{i != j} s2_mean_ij = (sum_t (sum_i z2_ti)^2 - sum_t sum_i z2_ti^2) / (T - 1)
    off_s2_mean = (np.sum(z2.sum(axis=1) ** 2) - np.sum(z2 * z2)) / (t - 1)
    off_var_hat = t / dof**2 * (off_s2_mean - off_s_mean_sq)
    lamb = max(min(off_var_hat / off_s_mean_sq, 1.0), 0.0)
    d = np.diag(s).copy()
    s *= 1 - lamb
    s[np.diag_indices(c)] = d
    return s


def _full(cov_fn: Callable) -> Callable:
    def estimate(residuals, dof=None) -> Precision:
        x, d = _demeaned(residuals, dof)
        return Precision(full=np.linalg.inv(cov_fn(x, d)))

    return estimate


@dataclass(frozen=True)
class NoiseEstimate:
    """One noise estimate: ``estimate(residuals, dof) -> Precision``; ``full``: a C x C matrix
    (channels cannot be processed in blocks); ``memory``: its peak beside the residuals."""

    name: str
    estimate: Callable
    full: bool
    needs_residuals: bool
    memory: str
    #: The same as numbers (rsaflow.responses.io.rdm_job_bytes): float64 C x C matrices and (T, C)
    #: copies of the residuals it holds beside the residuals read.
    c2_arrays: float = 0.0
    tc_arrays: float = 0.0


NOISE = {
    n.name: n
    for n in (
        NoiseEstimate("none", _none, False, False, "none"),
        NoiseEstimate("diag", _diag, False, True, "8 C B (+ the demeaned residuals, 8 T C B)", 0, 1),
        NoiseEstimate("shrinkage_eye", _full(shrinkage_eye_cov), True, True, "~3 x 8 C^2 B + 8 T C B", 3, 1),
        NoiseEstimate("shrinkage_diag", _full(shrinkage_diag_cov), True, True, "~3.5 x 8 C^2 B + 2 x 8 T C B", 3.5, 2),
    )
}


def precision(name: str, residuals: np.ndarray | None = None, dof: int | None = None) -> Precision:
    """The precision of noise estimate ``name`` (a key of :data:`NOISE`) from ``residuals``."""
    record = NOISE[name]
    if record.needs_residuals and residuals is None:
        raise ValueError(f"noise {name!r} needs residuals")
    return record.estimate(residuals, dof)

"""Comparing RDMs: the second-order dissimilarity matrix.

Each RDM is reduced once to a unit vector over its upper triangle (diagonal excluded, row-major
order as in :func:`rsaflow.rdm.upper_triangle`); the comparison of K RDMs is then one K x K
matrix product. Adding one RDM therefore costs one reduction, not K comparisons.

=========  ===============================================================================
method     second-order dissimilarity between RDMs a and b
=========  ===============================================================================
spearman   1 - Spearman rho of the upper triangles: the Pearson correlation of their ranks,
           ties given their average rank; equals ``1 - scipy.stats.spearmanr(a, b)[0]``
           and the tutorial's ``1 - spearmanr(...).statistic``
pearson    1 - Pearson r of the upper triangles; ``1 - scipy.stats.pearsonr(a, b)[0]``
=========  ===============================================================================

The diagonal of the result is exactly 0 and the matrix exactly symmetric. These functions never
import torch.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

METHODS = ("spearman", "pearson")


class DegenerateRDMError(ValueError):
    """An RDM whose upper triangle has zero variance: correlations with it are undefined."""


def unit_vector(values: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Centre and scale an RDM's upper-triangle ``values`` to unit norm, after ranking for spearman.

    For two such vectors u, v, ``u @ v`` is the method's correlation (Spearman rho or Pearson r).
    Raises DegenerateRDMError when the values are constant (zero variance) and ValueError for
    NaN/Inf, so that NaN is never ranked as a number.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise ValueError(f"need a 1-D vector of at least 2 dissimilarities, got shape {values.shape}")
    if not np.all(np.isfinite(values)):
        raise ValueError(f"{np.count_nonzero(~np.isfinite(values))} dissimilarities are NaN or Inf")
    if method == "spearman":
        values = rankdata(values, method="average")
    elif method != "pearson":
        raise ValueError(f"unknown comparison method {method!r}; choose one of {', '.join(METHODS)}")
    centred = values - values.mean()
    norm = np.sqrt(centred @ centred)
    if norm == 0 or norm <= 1e-12 * np.abs(values).max():
        raise DegenerateRDMError("all dissimilarities are equal (zero variance): its correlation with any RDM is undefined")
    return centred / norm


def second_order_from_vectors(vectors: np.ndarray) -> np.ndarray:
    """K x K matrix 1 - u_a . u_b from K unit vectors (rows), with exact zero diagonal.

    Values are clipped to [0, 2], the range of 1 - correlation.
    """
    vectors = np.asarray(vectors, dtype=np.float64)
    corr = vectors @ vectors.T
    dis = 1.0 - corr
    upper = np.triu(np.clip(dis, 0.0, 2.0), k=1)
    return upper + upper.T


def second_order(upper_triangles: list[np.ndarray], method: str = "spearman") -> np.ndarray:
    """Second-order dissimilarity (1 - correlation) between the RDMs given by their upper triangles."""
    sizes = {len(v) for v in upper_triangles}
    if len(sizes) > 1:
        raise ValueError(f"RDMs differ in size (upper triangles of lengths {sorted(sizes)})")
    return second_order_from_vectors(np.stack([unit_vector(v, method) for v in upper_triangles]))

"""The negative Riemannian distance between two RDMs (rsatoolbox's ``neg_riem_dist``).

For an RDM D of N stimuli (condensed upper triangle, scipy ``squareform`` order), its second
moment relative to stimulus 0 is the (N - 1) x (N - 1) matrix G_ij = (D_0i + D_0j - D_ij) / 2
(i, j = 1..N-1; G_ii = D_0i), as rsatoolbox builds it (Shahbazi et al. 2021). For two RDMs x, y
with G_x, G_y and Sigma = I + 1 1^T (rsatoolbox's default sigma_k = I in the same coordinates),

    d(x, y) = min over theta of sqrt(sum_k log(lambda_k)^2),
    lambda = the generalised eigenvalues of (e^theta_0 G_x + e^theta_1 Sigma, G_y),

minimised by Nelder-Mead from theta = (0, 0) exactly as rsatoolbox does
(``rsatoolbox.rdm.compare(x, y, method='neg_riem_dist')`` is -d(x, y)). d is not symmetric (only
G_x is scaled and regularised), so the second-order similarity is the mean of both orders,
:func:`neg_riem_dist`. G_y must be positive definite: RDMs of squared distances of fewer than N - 1
independent dimensions (e.g. ``sqeuclidean`` of a layer narrower than N - 1 units) are not; the
``euclidean`` RDMs of distinct patterns are. Cost: O(N^3) per function evaluation, about a hundred
evaluations per order. Pure NumPy/SciPy, no torch.
"""

from __future__ import annotations

import numpy as np

from rsaflow.compare import DegenerateRDMError, n_from_pairs


def second_moment(upper: np.ndarray) -> np.ndarray:
    """G_ij = (D_0i + D_0j - D_ij) / 2 (i, j = 1..N-1) of a condensed RDM of N stimuli (float64)."""
    upper = np.asarray(upper, dtype=np.float64)
    n = n_from_pairs(upper.size)
    square = np.zeros((n, n))
    square[np.triu_indices(n, k=1)] = upper
    square += square.T
    d0 = square[0, 1:]
    return (d0[:, None] + d0[None, :] - square[1:, 1:]) / 2


def riemannian_distance(x: np.ndarray, y: np.ndarray) -> float:
    """d(x, y) of the module docstring (ordered: G_x is scaled and regularised); DegenerateRDMError
    when G_y is not positive definite or the two RDMs differ in size."""
    from scipy import linalg
    from scipy.optimize import minimize

    if np.size(x) != np.size(y):
        raise DegenerateRDMError(f"RDMs of different sizes ({np.size(x)} and {np.size(y)} pairs)")
    gx, gy = second_moment(x), second_moment(y)
    sigma = np.eye(gx.shape[0]) + 1.0
    try:
        linalg.cholesky(gy)
    except linalg.LinAlgError:
        raise DegenerateRDMError("its second moment G (relative to the first stimulus) is not positive definite, "
                                 "so its Riemannian distance is undefined (e.g. squared distances of fewer than "
                                 "N - 1 dimensions)") from None

    def fun(theta):
        return np.sqrt((np.log(linalg.eigvalsh(np.exp(theta[0]) * gx + np.exp(theta[1]) * sigma, gy)) ** 2).sum())

    return float(minimize(fun, (0, 0), method="Nelder-Mead").fun)


def neg_riem_dist(x: np.ndarray, y: np.ndarray) -> float:
    """-(d(x, y) + d(y, x)) / 2: the mean of rsatoolbox's ``neg_riem_dist`` in both orders (a
    similarity: 0 for an RDM with itself, negative otherwise). Raises DegenerateRDMError as
    :func:`riemannian_distance`."""
    return -(riemannian_distance(x, y) + riemannian_distance(y, x)) / 2

"""Comparison measures beyond the classic RDM correlations, and rsatoolbox's noise ceilings.

Pure numpy/scipy functions (never torch), each with its exact formula and the name other tools
use. N stimuli; K, L are N x N *linear* Gram matrices K = X X^T of two representations X (N x M),
Y (N x M') of the same stimuli (uncentred: every function centres what it needs);
H = I - 11^T / N centres; <A, B> = sum_ij A_ij B_ij; ||A|| the Frobenius norm.

==================  ===========================================================================
function            similarity; what other tools call it
==================  ===========================================================================
cka                 linear CKA <HKH, HLH> / (||HKH|| ||HLH||): Kornblith et al. 2019;
                    thingsvision ``get_cka(kernel='linear', unbiased=False)``
cka_debiased        <K~, L~> / (||K~|| ||L~||) with the U-centred K~ (:func:`u_centre`);
                    <K~, L~> / (N (N - 3)) is the unbiased HSIC of Song et al. 2012, so this is
                    the debiased CKA of Kornblith et al. 2019 (appendix) and thingsvision's
                    ``unbiased=True``; ~0 for independent representations at any N / width
cka_rbf             CKA of Gaussian kernels exp(-d_ij^2 / (2 sigma^2)), d_ij^2 = K_ii + K_jj
                    - 2 K_ij, sigma = sigma_frac * sqrt(median of the nonzero d_ij^2, i < j);
                    biased (HKH) or debiased (U-centred). thingsvision ``kernel='rbf'`` with
                    ``sigma=None`` is sigma_frac = 1 (its NumPy backend; np.median averages the
                    two middle values); Kornblith et al.'s ``rbf(x, threshold)`` takes the
                    median with the zero diagonal included, so its threshold differs slightly
bures_similarity    tr((Kc^1/2 Lc Kc^1/2)^1/2) / sqrt(tr Kc tr Lc), Kc = HKH: the normalised
                    Bures similarity (fidelity) = cosine of the Procrustes angle; rsatoolbox
                    ``compare(method='bures')`` (which builds Kc = -HDH/2 from an RDM D)
shape_distance      angular shape metric of Williams et al. 2021 (netrep ``LinearMetric``)
                    arccos(||phi(X)^T phi(Y)||_* / (||phi(X)|| ||phi(Y)||)), a distance
                    (radians, in [0, pi/2]); alpha = 1 Procrustes, alpha = 0 CCA-like
cosine_cov          rsatoolbox ``compare(method='cosine_cov')``, RDM vectors (see below)
corr_cov            rsatoolbox ``compare(method='corr_cov')``, RDM vectors (see below)
==================  ===========================================================================

All activation measures here are computed from the N x N Gram matrices alone (shape_distance for
every alpha too: the partial whitening acts on the eigenvalues of K), so one Gram per layer is
the per-layer artifact. Per-layer work is separable from per-pair work: :func:`cka_vector` (unit
centred kernel, N^2 floats; a pair is a dot product), :func:`shape_factor` (one O(N^3)
eigendecomposition; a pair is :func:`shape_distance_factors`, O(N r_X r_Y) plus an r_X x r_Y SVD)
and :func:`cov_vector` (N (N + 1) / 2 floats; a pair is a dot product).

RDM measures take upper triangles (diagonal excluded, row-major: scipy ``squareform`` order, as
rsatoolbox's RDM vectors). rsatoolbox's noise ceilings are in :mod:`rsaflow.ceiling`.
"""

from __future__ import annotations

import math

import numpy as np

from rsaflow.compare import DegenerateRDMError, n_from_pairs
from rsaflow.methods import METHODS, methods_of


#: A representation or RDM for which the measure is undefined (e.g. all stimuli identical): the
#: same exception as rsaflow.compare's, so one ``except`` catches it from either module.
DegenerateInputError = DegenerateRDMError


# ---------------------------------------------------------------------------------------------
# Gram matrices: centring and kernels


def _gram(K) -> np.ndarray:
    K = np.asarray(K, dtype=np.float64)
    if K.ndim != 2 or K.shape[0] != K.shape[1]:
        raise ValueError(f"expected an N x N Gram matrix, got shape {K.shape}")
    return K


def _same_n(K: np.ndarray, L: np.ndarray) -> None:
    if K.shape != L.shape:
        raise ValueError(f"Gram matrices must cover the same stimuli: {K.shape} vs {L.shape}")


def centre(K) -> np.ndarray:
    """Double-centred Gram H K H (H = I - 11^T / N); the Gram of the column-centred X."""
    K = _gram(K)
    m = K.mean(axis=0)
    return K - m[:, None] - m[None, :] + m.mean()


def u_centre(K) -> np.ndarray:
    """U-centred Gram K~ of Szekely & Rizzo (2014), the debiased CKA's centring.

    With K0 = K with its diagonal set to 0 and r_i = sum_j K0_ij:
    K~_ij = K0_ij - r_i / (N - 2) - r_j / (N - 2) + sum(r) / ((N - 1)(N - 2)) for i != j, and
    K~_ii = 0. Then <K~, L~> / (N (N - 3)) is the unbiased HSIC estimator of Song et al. (2012).
    Needs N >= 4.
    """
    K = _gram(K).copy()
    n = K.shape[0]
    if n < 4:
        raise ValueError(f"debiased (U-statistic) HSIC needs at least 4 stimuli, got {n}")
    np.fill_diagonal(K, 0.0)
    r = K.sum(axis=0)
    out = K - r[:, None] / (n - 2) - r[None, :] / (n - 2) + r.sum() / ((n - 1) * (n - 2))
    np.fill_diagonal(out, 0.0)
    return out


def _check_columns(columns: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(columns)):
        bad = np.unique(np.nonzero(~np.isfinite(columns))[0])
        raise ValueError(f"activations contain NaN or Inf in {bad.size} stimuli (first rows: {bad[:5].tolist()})")
    return columns


def centered_gram_unit(activations, block: int = 4096) -> np.ndarray:
    """The centred Gram matrix HKH of ``activations`` X (N stimuli x M units), flattened
    row-major (N^2 entries) and scaled to unit Frobenius norm; input for linear CKA.

    K = X X^T and H = I - 11^T / N, so HKH = (HX)(HX)^T with HX the column-centred activations.
    Columns are read in blocks of ``block`` (an h5py dataset works too, never read whole), each
    centred by its own column means and accumulated in float64. For two layers,
    ``centered_gram_unit(X) @ centered_gram_unit(Y)`` is linear CKA(X, Y). Raises
    DegenerateRDMError when all stimuli have the same activations (HKH = 0), ValueError for
    NaN/Inf.
    """
    shape = activations.shape
    if len(shape) != 2 or shape[0] < 2 or shape[1] < 1:
        raise ValueError(f"activations must be 2-D (stimuli x units) with at least 2 stimuli, got shape {shape}")
    n, m = shape
    gram = np.zeros((n, n), dtype=np.float64)
    for start in range(0, m, block):
        cols = _check_columns(np.asarray(activations[:, start : start + block], dtype=np.float64))
        cols = cols - cols.mean(axis=0, keepdims=True)
        gram += cols @ cols.T
    gram = np.triu(gram) + np.triu(gram, k=1).T  # exactly symmetric
    norm = np.sqrt(np.einsum("ij,ij->", gram, gram))
    if norm == 0:
        raise DegenerateRDMError("all stimuli have the same activations (centred Gram matrix is zero): CKA undefined")
    return (gram / norm).ravel()


def cka_vector(K, kernel: str = "linear", debiased: bool = False, sigma_frac: float = 0.8) -> np.ndarray:
    """Per-layer part of CKA: the centred kernel matrix, flattened row-major, at unit norm.

    K: linear Gram X X^T; kernel 'linear' uses it, 'rbf' uses :func:`rbf_gram` (K, sigma_frac).
    Centred by H . H, or by :func:`u_centre` when ``debiased``. The CKA of two layers is the dot
    product of their vectors (:func:`cka`, :func:`cka_debiased`, :func:`cka_rbf`), so a K-layer
    comparison costs K of these (N^2 floats each) and one K x K matrix product.
    """
    if kernel not in ("linear", "rbf"):
        raise ValueError(f"CKA kernel must be 'linear' or 'rbf', got {kernel!r}")
    K = _gram(K) if kernel == "linear" else rbf_gram(K, sigma_frac)
    C = u_centre(K) if debiased else centre(K)
    norm = np.linalg.norm(C)
    if norm == 0.0:
        raise DegenerateInputError("CKA is undefined: a representation has all stimuli identical")
    return (C / norm).ravel()


def _cka(K, L, **kwargs) -> float:
    K, L = _gram(K), _gram(L)
    _same_n(K, L)
    return float(cka_vector(K, **kwargs) @ cka_vector(L, **kwargs))


def cka(K, L, debiased: bool = False) -> float:
    """Linear CKA from Gram matrices K = X X^T, L = Y Y^T.

    Biased: <HKH, HLH> / (||HKH|| ||HLH||) (Kornblith et al. 2019; thingsvision
    ``unbiased=False``), in [0, 1]. Debiased: the same with the U-centred :func:`u_centre`
    matrices (:func:`cka_debiased`). Invariant to rotations and isotropic scaling of X or Y.
    """
    return _cka(K, L, debiased=debiased)


def cka_debiased(K, L) -> float:
    """Debiased linear CKA: <K~, L~> / (||K~|| ||L~||), K~ = :func:`u_centre` (K).

    The ratio of unbiased HSIC estimates HSIC_u(K, L) / sqrt(HSIC_u(K, K) HSIC_u(L, L)),
    HSIC_u = <K~, L~> / (N (N - 3)) (Song et al. 2012; Kornblith et al. 2019, appendix;
    thingsvision ``get_cka(kernel='linear', unbiased=True)``). Unlike the biased CKA it is
    close to 0 for independent representations even when the width exceeds N; it can be
    slightly negative.
    """
    return cka(K, L, debiased=True)


def sq_distances(K) -> np.ndarray:
    """Squared Euclidean distances d_ij^2 = K_ii + K_jj - 2 K_ij from a linear Gram matrix.

    Clipped at 0 (rounding), exactly 0 on the diagonal; symmetric.
    """
    K = _gram(K)
    d = np.diag(K)
    D = np.maximum(d[:, None] + d[None, :] - 2.0 * K, 0.0)
    D = (D + D.T) / 2.0
    np.fill_diagonal(D, 0.0)
    return D


def rbf_bandwidth(D, sigma_frac: float = 0.8) -> float:
    """sigma = sigma_frac * sqrt(median of the nonzero squared distances D_ij, i < j).

    ``np.median`` (the mean of the two middle values for an even count); zero distances
    (duplicate stimuli) are left out, as thingsvision does (``KX[KX != 0]``).
    """
    if not sigma_frac > 0:
        raise ValueError(f"sigma_frac must be > 0, got {sigma_frac}")
    D = _gram(D)
    upper = D[np.triu_indices(D.shape[0], k=1)]
    upper = upper[upper != 0]
    if upper.size == 0:
        raise DegenerateInputError("RBF bandwidth is undefined: all stimuli are identical")
    return float(sigma_frac * math.sqrt(np.median(upper)))


def rbf_gram(K, sigma_frac: float = 0.8) -> np.ndarray:
    """Gaussian kernel exp(-d_ij^2 / (2 sigma^2)) with sigma = :func:`rbf_bandwidth` of d^2.

    K: linear Gram matrix (d^2 from :func:`sq_distances`).
    """
    D = sq_distances(K)
    sigma = rbf_bandwidth(D, sigma_frac)
    return np.exp(D * (-0.5 / sigma**2))


def cka_rbf(K, L, sigma_frac: float = 0.8, debiased: bool = False) -> float:
    """RBF CKA: :func:`cka` of the Gaussian kernels :func:`rbf_gram` (K), :func:`rbf_gram` (L).

    K, L: linear Grams X X^T, Y Y^T (each kernel gets its own bandwidth, sigma_frac times the
    root median squared distance of its own stimuli). sigma_frac = 1 with debiased False/True
    is thingsvision's ``get_cka(kernel='rbf', sigma=None, unbiased=False/True)``; Kornblith et
    al. 2019 report sigma_frac 0.2, 0.4 and 0.8 (the default here).
    """
    return _cka(K, L, kernel="rbf", debiased=debiased, sigma_frac=sigma_frac)


# ---------------------------------------------------------------------------------------------
# Bures similarity and shape metrics, from Gram matrices


def _psd_factor(K: np.ndarray, rtol: float = 1e-10) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues lam > rtol * max(lam) and their eigenvectors U of a symmetric PSD matrix."""
    lam, U = np.linalg.eigh((K + K.T) / 2.0)
    keep = lam > rtol * max(lam.max(), 0.0)
    if not keep.any():
        raise DegenerateInputError("a representation has all stimuli identical (centred Gram is 0)")
    return lam[keep], U[:, keep]


def _fidelity(factor_k, factor_l) -> float:
    """Normalised fidelity sum(svd(A^T B)) / (||A|| ||B||) for factors A = U sqrt(lam)."""
    (lk, uk), (ll, ul) = factor_k, factor_l
    a = np.sqrt(lk)[:, None] * (uk.T @ ul) * np.sqrt(ll)[None, :]
    nuclear = np.linalg.svd(a, compute_uv=False).sum()
    return float(np.clip(nuclear / math.sqrt(lk.sum() * ll.sum()), 0.0, 1.0))


def bures_similarity(K, L, center: bool = True) -> float:
    """Normalised Bures similarity tr((Kc^1/2 Lc Kc^1/2)^1/2) / sqrt(tr Kc tr Lc), in [0, 1].

    Kc = HKH, Lc = HLH (``center=False``: K, L as given, which must be PSD). Equals
    ||Xc^T Yc||_* / (||Xc|| ||Yc||) (nuclear norm; Xc the column-centred X), the cosine of the
    Procrustes angle, i.e. cos(:func:`shape_distance` (K, L, alpha=1)); rsatoolbox's
    ``compare(method='bures')`` on RDMs D is this with Kc = -HDH/2. Computed as the nuclear
    norm of diag(sqrt(lam_K)) U_K^T U_L diag(sqrt(lam_L)) from the eigendecompositions.
    """
    K, L = _gram(K), _gram(L)
    _same_n(K, L)
    if center:
        K, L = centre(K), centre(L)
    return _fidelity(_psd_factor(K), _psd_factor(L))


def shape_factor(K, alpha: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """Per-layer part of :func:`shape_distance`: (w, U) with phi(X) phi(X)^T = U diag(w) U^T.

    w = (alpha s + 1 - alpha)^2 over the nonzero singular values s of the pre-shape; U (N x r)
    their left singular vectors. One O(N^3) eigendecomposition per layer; each pair then costs
    :func:`shape_distance_factors`, O(N r_X r_Y). alpha = 1 gives the factor of ``bures``.
    """
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"shape alpha must be in [0, 1] (0: CCA-like, 1: Procrustes), got {alpha}")
    lam, U = _psd_factor(centre(K))
    s = np.sqrt(lam / lam.sum())  # singular values of the pre-shape Xc / ||Xc||
    return (alpha * s + (1.0 - alpha)) ** 2, U


def fidelity_factors(factor_x, factor_y) -> float:
    """cos(:func:`shape_distance`) from two :func:`shape_factor` results (same alpha, same stimuli):
    ||phi(X)^T phi(Y)||_* / (||phi(X)|| ||phi(Y)||) in [0, 1]; at alpha = 1 the
    :func:`bures_similarity`. One r_X x r_Y SVD after an O(N r_X r_Y) product."""
    if factor_x[1].shape[0] != factor_y[1].shape[0]:
        raise ValueError(f"shape factors cover different stimuli: {factor_x[1].shape[0]} vs {factor_y[1].shape[0]}")
    return _fidelity(factor_x, factor_y)


def shape_distance_factors(factor_x, factor_y) -> float:
    """:func:`shape_distance` from two :func:`shape_factor` results (same alpha, same stimuli)."""
    return float(np.arccos(fidelity_factors(factor_x, factor_y)))


def shape_distance(K, L, alpha: float = 1.0) -> float:
    """Angular shape distance of Williams et al. (2021), in radians in [0, pi/2], from Grams.

    With Xc the column-centred X scaled to unit Frobenius norm (its pre-shape) and
    C = Xc^T Xc, the partial whitening is phi(X) = Xc (alpha I + (1 - alpha) C^(-1/2))
    (netrep's ``whiten``; C^(-1/2) on the nonzero eigenvalues) and
    d(X, Y) = min over orthogonal Q of angle(phi(X) Q, phi(Y))
            = arccos(||phi(X)^T phi(Y)||_* / (||phi(X)|| ||phi(Y)||)),
    the widths zero-padded to match. alpha = 1: Procrustes angle (arccos of
    :func:`bures_similarity`); alpha = 0: CCA, arccos of the mean canonical correlation
    computed as sum(rho) / sqrt(rank X rank Y). A metric (triangle inequality) on
    representations modulo translation, rotation and isotropic scaling, for every alpha.
    At alpha = 0 every pair whose ranks reach N - 1 (width >= N - 1) is at distance 0 (CCA
    aligns any two full-rank centred representations), so use alpha > 0 for wide layers.
    From Grams: X = U S V^T gives phi(X) phi(X)^T = U diag((alpha s + 1 - alpha)^2) U^T with s
    the singular values of the pre-shape, so only K = X X^T is needed. Eigenvalues below
    1e-10 of the largest count as 0. Near 0 the arccos limits the absolute precision to about
    sqrt(2 * 1e-16) ~ 2e-8 (a shape against itself can give ~1e-8, not 0). netrep's
    ``LinearMetric(alpha)`` equals this at alpha 0 and 1; between, netrep does not normalise
    first and so is not scale invariant.
    """
    K, L = _gram(K), _gram(L)
    _same_n(K, L)
    return shape_distance_factors(shape_factor(K, alpha), shape_factor(L, alpha))


# ---------------------------------------------------------------------------------------------
# RDM comparisons: whitened unbiased cosine (rsatoolbox's cosine_cov, corr_cov)


def _square(upper: np.ndarray) -> np.ndarray:
    n = n_from_pairs(upper.size)
    D = np.zeros((n, n))
    D[np.triu_indices(n, k=1)] = upper
    return D + D.T


def cov_vector(upper, method: str = "cosine_cov") -> np.ndarray:
    """Unit vector v(d) with cosine_cov(a, b) = v(a) . v(b) (or corr_cov, by ``method``).

    d: an RDM's upper triangle (n = N (N - 1) / 2 entries). corr_cov first subtracts the mean
    of d (over the off-diagonal entries; the diagonal stays 0). With D the square RDM and
    G = -H D H / 2 its centred second-moment matrix, v = [sqrt(2) * upper(G), diag(G)] / ||G||,
    so v(a) . v(b) = <Ga, Gb> / (||Ga|| ||Gb||). This is rsatoolbox's ``_cov_weighting`` with its
    default noise model (``sigma_k=None``: i.i.d. pattern noise, Sigma_k = I), which rsatoolbox
    shows equals whitening the RDM vectors by V = (C C^T) o (C C^T), C the pair contrasts
    (Diedrichsen et al. 2021, "whitened unbiased RDM cosine"). Length N (N + 1) / 2.
    """
    if method not in methods_of("whole"):
        raise ValueError(f"cov_vector method must be one of {', '.join(methods_of('whole'))}, got {method!r}")
    d = np.asarray(upper, dtype=np.float64).ravel()
    if METHODS[method].centred:
        d = d - d.mean()
    G = -0.5 * centre(_square(d))
    n = G.shape[0]
    v = np.concatenate([math.sqrt(2.0) * G[np.triu_indices(n, k=1)], np.diag(G)])
    norm = np.linalg.norm(v)
    if norm == 0.0:
        raise DegenerateInputError(f"{method} is undefined for an RDM whose centred form is 0")
    return v / norm


def cosine_cov(a, b) -> float:
    """rsatoolbox ``compare(a, b, method='cosine_cov')``: <Ga, Gb> / (||Ga|| ||Gb||), G = -HDH/2.

    a, b: upper triangles. The whitened unbiased RDM cosine with i.i.d. noise (see
    :func:`cov_vector`).
    """
    return float(cov_vector(a, "cosine_cov") @ cov_vector(b, "cosine_cov"))


def corr_cov(a, b) -> float:
    """rsatoolbox ``compare(a, b, method='corr_cov')``: :func:`cosine_cov` after subtracting
    each upper triangle's mean (Gd = -H (D - mean(d) (11^T - I)) H / 2)."""
    return float(cov_vector(a, "corr_cov") @ cov_vector(b, "corr_cov"))

"""Comparing RDMs: the second-order dissimilarity matrix.

Every method is a similarity s(a, b) and the second-order dissimilarity is ``1 - s(a, b)``,
computed over the RDMs' upper triangles (diagonal excluded, row-major order as in
:func:`rsaflow.rdm.upper_triangle`), except ``cka`` which compares activations. Below, x and y
are two upper triangles of length n, r(x) their ranks with ties given their average rank
(``scipy.stats.rankdata(method='average')``), and n0 = n (n - 1) / 2 the number of pairs of
entries.

==============  =============================================================================
method          similarity s(a, b); second-order dissimilarity is 1 - s
==============  =============================================================================
spearman        Spearman rho: Pearson r of r(x), r(y); ``scipy.stats.spearmanr(x, y)[0]``,
                rsatoolbox ``'spearman'``
pearson         Pearson r of x, y; ``scipy.stats.pearsonr(x, y)[0]``, rsatoolbox ``'corr'``
cosine          x . y / (||x|| ||y||), no centring; rsatoolbox ``'cosine'``
rho_a           12 (r(x) - mean) . (r(y) - mean) / (n^3 - n): Spearman rho with the tie-free
                denominator, i.e. the expected rho under random tie breaking; rsatoolbox
                ``'rho-a'``. Without ties it equals spearman; with ties it is smaller in
                magnitude (ties are not rewarded).
kendall_tau_a   (concordant - discordant) / n0 over pairs of entries, a pair tied in x or in y
                counting as neither; rsatoolbox ``'tau-a'``
cka             linear CKA of the ACTIVATIONS X (N x M), Y (N x M'), not of RDMs:
                <HKH, HLH>_F / (||HKH||_F ||HLH||_F), K = X X^T, L = Y Y^T,
                H = I - 11^T / N (Kornblith et al. 2019)
==============  =============================================================================

Aggregation. Each RDM (layer, for cka) is reduced once by :func:`per_rdm_vector`
(rsaflow.measures.centered_gram_unit for cka) so that the K x K similarity matrix is one matrix product
V V^T (:func:`aggregate`); adding one RDM costs one reduction, not K comparisons. What is stored
per RDM:

- spearman, pearson: centred (ranked, for spearman) upper triangle scaled to unit norm;
- cosine: the raw upper triangle scaled to unit norm;
- rho_a: the centred average ranks times sqrt(12 / (n^3 - n)) (norm 1 without ties, < 1 with);
- kendall_tau_a: the raw upper triangle (float64); tau_a is not an inner product, so the
  aggregation makes K (K - 1) / 2 O(n log n) comparisons (:func:`kendall_tau_a`);
- cka: the centred Gram matrix HKH flattened (N^2 entries, row-major) at unit Frobenius norm.

The other config methods are defined in :mod:`rsaflow.measures` and computed by the second-order
job from per-layer artifacts (cka_debiased, cka_rbf: unit kernels as for cka; shape, bures: Gram
eigen-factors, one SVD per pair) or from whole RDMs (cosine_cov, corr_cov:
rsaflow.measures.cov_vector); :func:`dissimilarity` turns their similarities into the matrix
(shape: the angle arccos(s) in radians, not 1 - s).

The result of :func:`aggregate` and :func:`second_order` has an exactly zero diagonal and is
exactly symmetric (the upper triangle is mirrored). Degenerate inputs: an upper triangle with
zero variance (spearman, pearson), all zeros (cosine), or layers whose stimuli all have the same
activations (cka) raise DegenerateRDMError; rho_a and kendall_tau_a are defined there (0, as in
rsatoolbox). These functions never import torch.
"""

from __future__ import annotations

import math

import numpy as np

from rsaflow.argsort_ranking import tied_pairs  # noqa: F401  (rsaflow.compare's API; one implementation)
from rsaflow.methods import METHODS, methods_of
from rsaflow.ranking import map_threads, ranks_and_ties

#: Methods aggregated by one matrix product of per-RDM vectors (from the registry, rsaflow.methods).
VECTOR_METHODS = methods_of("vector")
#: Methods that need the raw upper triangles at aggregation time.
RAW_METHODS = methods_of("raw")
#: Methods whose per-RDM vector needs the whole RDM (rsaflow.measures.cov_vector).
WHOLE_METHODS = methods_of("whole")
#: Methods computed by their own function of two whole RDMs (Method.pair_function), one pair at a time.
PAIRWISE_METHODS = methods_of("pairwise")
#: Methods computed from activations, not RDMs.
ACTIVATION_METHODS = methods_of("activation")
ALL_METHODS = tuple(METHODS)
#: Vector methods whose per-RDM vector is a unit vector (Method.unit; rho_a's is not).
UNIT_METHODS = tuple(m for m in VECTOR_METHODS if METHODS[m].unit)


def n_from_pairs(p: int) -> int:
    """N with N (N - 1) / 2 == p (integer arithmetic); ValueError if there is none."""
    n = (1 + math.isqrt(1 + 8 * p)) // 2
    if n * (n - 1) // 2 != p:
        raise ValueError(f"an upper triangle has N (N - 1) / 2 entries; {p} is not such a number")
    return n


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks 1..n of a 1-D array, ties given the average of their ranks.

    Equals ``scipy.stats.rankdata(values, method='average')`` exactly (each tie group of sorted
    positions a..b-1 gets (a + b + 1) / 2, an int64 sum divided by 2.0, exact in float64); about
    3x faster, as it uses an unstable sort (ties need no stable order since they share one rank).
    Memory: 16 B per value at most, plus a few chunk arrays (rsaflow.ranking.ranks_and_ties).
    """
    return ranks_and_ties(values)[0]


class DegenerateRDMError(ValueError):
    """An RDM whose upper triangle has zero variance: correlations with it are undefined."""


def _check_method(method: str, allowed=ALL_METHODS) -> None:
    if method not in allowed:
        raise ValueError(f"unknown comparison method {method!r}; choose one of {', '.join(allowed)}")


def _check_values(values: np.ndarray, ndim: int = 1) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != ndim or values.shape[-1] < 2:
        what = "a 1-D vector" if ndim == 1 else "a 2-D array (one row per RDM)"
        raise ValueError(f"need {what} of at least 2 dissimilarities, got shape {values.shape}")
    # A finite sum means every value is finite (NaN and Inf propagate); only a non-finite sum
    # (or an overflow) pays for the element-wise check and its boolean temporary.
    if not np.isfinite(values.sum()) and not np.all(np.isfinite(values)):
        raise ValueError(f"{np.count_nonzero(~np.isfinite(values))} dissimilarities are NaN or Inf")
    return values


def centre_norm(values: np.ndarray, centred: bool = True) -> tuple[float, float]:
    """``(centre, norm)`` with ``(values - centre) / norm`` the unit vector of a vector method
    (:func:`unit_vector`; ``values`` are the average ranks for a ranked method). Stored per RDM file
    (rsaflow.rdmfile), so that any slice of the unit vector is derived from a slice of the stored
    values with the same float64 operations, bit for bit. Centre ``values.mean()`` (0.0 when not ``centred``)
    and norm the Euclidean norm of ``values - centre``. Raises DegenerateRDMError when that is 0
    (or, centred, below 1e-12 of max |v|: zero variance up to rounding), ValueError for NaN/Inf."""
    values = _check_values(values)
    if not centred:
        norm = float(np.sqrt(values @ values))
        if norm == 0:
            raise DegenerateRDMError("all dissimilarities are zero: its cosine with any RDM is undefined")
        return 0.0, norm
    centre = values.mean()
    norm = np.sqrt(_centred_sum_of_squares(values, centre))
    if norm == 0 or norm <= 1e-12 * max(values.max(), -values.min()):  # max |v| without an |v| copy
        raise DegenerateRDMError("all dissimilarities are equal (zero variance): its correlation with any RDM is undefined")
    return float(centre), float(norm)


#: Values per chunk of :func:`_centred_sum_of_squares` (its one temporary: 8 MiB).
SUM_CHUNK = 1 << 20


def _centred_sum_of_squares(values: np.ndarray, centre: float) -> float:
    """sum((values - centre)^2), a chunk of :data:`SUM_CHUNK` values at a time: each chunk's
    centred copy dotted with itself by np.einsum (no BLAS thread start-up per call), the chunks'
    sums added in order. One chunk for vectors up to SUM_CHUNK values (N <= 1,448)."""
    total = 0.0
    for s in range(0, values.size, SUM_CHUNK):
        c = values[s : s + SUM_CHUNK] - centre
        total += float(np.einsum("i,i->", c, c))
    return total


def unit_vector(values: np.ndarray, method: str = "spearman") -> np.ndarray:
    """Scale an RDM's upper-triangle ``values`` to unit norm: centred (after ranking for spearman)
    for spearman and pearson, raw for cosine.

    For two such vectors u, v, ``u @ v`` is the method's similarity (Spearman rho, Pearson r,
    cosine). Raises DegenerateRDMError when the values are constant (zero variance; all zero for
    cosine) and ValueError for NaN/Inf, so that NaN is never ranked as a number.
    """
    values = _check_values(values)
    _check_method(method, UNIT_METHODS)
    return _unit_into(values, METHODS[method], np.empty_like(values))


def _unit_into(values: np.ndarray, info, out: np.ndarray) -> np.ndarray:
    """Write :func:`unit_vector` of checked ``values`` into ``out``: ``(values - centre) / norm``
    with the same float64 operations (an in-place subtract and divide round as the expression)."""
    values = average_ranks(values) if info.ranked else values
    centre, norm = centre_norm(values, info.centred)
    np.subtract(values, centre, out=out)
    out /= norm
    return out


def unit_vectors(vectors, method: str = "spearman", threads: int = 1) -> np.ndarray:
    """``np.stack([unit_vector(v, method) for v in vectors])`` bit for bit, shape (K, n), with
    ``threads`` rows at a time (NumPy's sorts and elementwise loops release the GIL, so the ranking
    of K vectors runs on as many cores as the caller was given) written into one preallocated array.
    Raises as :func:`unit_vector` for the first offending row (its index in the message)."""
    _check_method(method, UNIT_METHODS)
    vectors = list(vectors)
    if not vectors:
        raise ValueError("need at least one vector")
    n = np.shape(vectors[0])[-1] if np.ndim(vectors[0]) else 0
    out = np.empty((len(vectors), n), dtype=np.float64)
    info = METHODS[method]

    def one(i: int) -> None:
        try:
            values = _check_values(vectors[i])
            if values.size != n:
                raise ValueError(f"vector {i} has {values.size} dissimilarities, vector 0 has {n}")
            _unit_into(values, info, out[i])
        except (ValueError, DegenerateRDMError) as err:
            raise type(err)(f"vector {i}: {err}") from None

    map_threads(one, range(len(vectors)), threads)
    return out


def rho_a_scale(n: int) -> float:
    """sqrt(12 / (n^3 - n)): the factor of :func:`rho_a_vector` for ``n`` dissimilarities."""
    n = float(n)
    return math.sqrt(12.0 / (n**3 - n))


def rho_a_vector(values: np.ndarray) -> np.ndarray:
    """(r - mean(r)) * sqrt(12 / (n^3 - n)) for the average ranks r of ``values`` (length n).

    The inner product of two such vectors is rsatoolbox's rho-a,
    12 (r_x - mean) . (r_y - mean) / (n^3 - n). Constant values give the zero vector (rho_a 0).
    """
    values = _check_values(values)
    ranks = average_ranks(values)
    return (ranks - ranks.mean()) * rho_a_scale(values.size)


def per_rdm_vectors(uppers: np.ndarray, method: str) -> np.ndarray:
    """:func:`per_rdm_vector` of each row of ``uppers`` (K x n), vectorised over rows."""
    uppers = _check_values(uppers, ndim=2)
    _check_method(method, VECTOR_METHODS + RAW_METHODS + PAIRWISE_METHODS)
    info = METHODS[method]
    if info.kind in ("raw", "pairwise"):
        return uppers.copy()
    n = uppers.shape[1]
    if not info.centred:
        norms = np.sqrt(np.einsum("ij,ij->i", uppers, uppers))
        if np.any(norms == 0):
            raise DegenerateRDMError(f"rows {np.nonzero(norms == 0)[0][:5].tolist()}: all dissimilarities are zero: "
                                     "cosine undefined")
        return uppers / norms[:, None]
    values = np.apply_along_axis(average_ranks, 1, uppers) if info.ranked else uppers
    centred = values - values.mean(axis=1, keepdims=True)
    if not info.unit:
        return centred * rho_a_scale(n)
    norms = np.sqrt(np.einsum("ij,ij->i", centred, centred))
    bad = (norms == 0) | (norms <= 1e-12 * np.abs(values).max(axis=1))
    if np.any(bad):
        raise DegenerateRDMError(f"rows {np.nonzero(bad)[0][:5].tolist()}: all dissimilarities are equal "
                                 "(zero variance): correlation undefined")
    return centred / norms[:, None]


def per_rdm_vector(upper: np.ndarray, method: str) -> np.ndarray:
    """What the ``rdm`` step stores for ``method`` (not cka), so that :func:`aggregate` compares.

    spearman/pearson/cosine: :func:`unit_vector`; rho_a: :func:`rho_a_vector`; kendall_tau_a and
    the pairwise methods: the upper triangle itself as float64 (checked finite).
    """
    _check_method(method, VECTOR_METHODS + RAW_METHODS + PAIRWISE_METHODS)
    if METHODS[method].kind in ("raw", "pairwise"):
        return _check_values(upper).copy()
    return unit_vector(upper, method) if METHODS[method].unit else rho_a_vector(upper)


def kendall_tau_a(x: np.ndarray, y: np.ndarray, ties_x: int | None = None, ties_y: int | None = None) -> float:
    """Kendall tau-a = (concordant - discordant) / n0, n0 = n (n - 1) / 2, in O(n log n).

    A pair (i, j) is concordant when sign(x_i - x_j) sign(y_i - y_j) = 1, discordant when it is
    -1; pairs tied in x or y count as neither but stay in the denominator. Computed from scipy's
    tau-b (tie-corrected, O(n log n)): tau_a = tau_b sqrt((n0 - n1)(n0 - n2)) / n0 with n1, n2
    the pairs tied in x, y (``ties_x``, ``ties_y``: precomputed :func:`tied_pairs`). C - D is an
    integer, so it is rounded to the nearest integer when n0 < 1e14 (where the float error is
    far below 0.5), which makes the result exact. Constant x or y gives 0.
    """
    from scipy.stats import kendalltau  # here: scipy.stats takes ~0.5 s to import (the DAG build imports this module)

    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1 or x.size < 2:
        raise ValueError(f"need two 1-D vectors of the same length >= 2, got shapes {x.shape} and {y.shape}")
    n = x.size
    n0 = n * (n - 1) // 2
    n1 = tied_pairs(x) if ties_x is None else ties_x
    n2 = tied_pairs(y) if ties_y is None else ties_y
    if n1 == n0 or n2 == n0:
        return 0.0
    tau_b = kendalltau(x, y, method="asymptotic").statistic
    c_minus_d = tau_b * math.sqrt(n0 - n1) * math.sqrt(n0 - n2)
    if n0 < 1e14:
        c_minus_d = round(c_minus_d)
    return min(1.0, max(-1.0, c_minus_d / n0))


def similarity_matrix(vectors: np.ndarray, method: str) -> np.ndarray:
    """K x K similarities s(a, b) (unclipped; diagonal as computed, Method.top for the pairwise
    methods) from stored per-RDM vectors (per-layer, cka) or, for kendall_tau_a and the pairwise
    methods, raw upper triangles (Method.pair_function of each pair)."""
    _check_method(method)
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2:
        raise ValueError(f"need a 2-D array, one row per RDM, got shape {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise ValueError(f"{np.count_nonzero(~np.isfinite(vectors))} stored values are NaN or Inf")
    info = METHODS[method]
    if info.kind not in ("raw", "pairwise"):
        return vectors @ vectors.T
    k = vectors.shape[0]
    if info.kind == "raw":
        ties = [tied_pairs(v) for v in vectors]
        pair = lambda a, b: kendall_tau_a(vectors[a], vectors[b], ties[a], ties[b])  # noqa: E731
    else:
        function = info.pair_function()
        pair = lambda a, b: function(vectors[a], vectors[b])  # noqa: E731
    sim = np.full((k, k), info.top)
    for a in range(k):
        for b in range(a + 1, k):
            sim[a, b] = sim[b, a] = pair(a, b)
    return sim


def aggregate(vectors: np.ndarray, method: str) -> np.ndarray:
    """K x K second-order dissimilarity 1 - s(a, b) from the rows of ``vectors``: what
    :func:`per_rdm_vector` (rsaflow.measures.centered_gram_unit for cka) stored, or the raw upper triangles
    for kendall_tau_a.

    One matrix product, except kendall_tau_a (K (K - 1) / 2 O(n log n) comparisons). Clipped to
    [0, 2] ([0, 1] for cka), exactly symmetric, exact zero diagonal.
    """
    _check_method(method)
    vectors = np.asarray(vectors, dtype=np.float64)
    if vectors.ndim != 2 or vectors.shape[0] < 1:
        raise ValueError(f"need a 2-D array with one row per RDM, got shape {vectors.shape}")
    return dissimilarity(similarity_matrix(vectors, method), method)


def dissimilarity(similarity: np.ndarray, method: str) -> np.ndarray:
    """K x K second-order dissimilarity from K x K similarities: Method.top - s(a, b) (1 - s; 0 - s
    for a negative distance) from the upper
    triangle, clipped to [0, Method.bound] (2; 1 for cka, cka_rbf, bures), mirrored (exactly symmetric),
    diagonal exactly 0. For ``shape`` the similarity is the cosine of the shape angle
    (rsaflow.measures.fidelity_factors) and the dissimilarity is the angle arccos(s) in radians,
    in [0, pi/2] (rsaflow.measures.shape_distance, a metric).

    The diagonal and lower triangle of ``similarity`` are not read.
    """
    _check_method(method)
    info = METHODS[method]
    s = np.asarray(similarity, dtype=np.float64)
    if info.angle:
        dis = np.arccos(np.clip(s, 0.0, 1.0))
    else:
        dis = np.clip(info.top - s, 0.0, info.bound)
    upper = np.triu(dis, k=1)
    return upper + upper.T


def second_order(upper_triangles: list[np.ndarray], method: str = "spearman", threads: int = 1) -> np.ndarray:
    """Second-order dissimilarity 1 - s(a, b) between the RDMs given by their upper triangles
    (any method but cka, which needs activations: use centered_gram_unit + aggregate); ``threads``:
    vectors prepared at once (:func:`unit_vectors`)."""
    if method in ACTIVATION_METHODS:
        raise ValueError(f"{method} compares activations, not RDMs: "
                         "use aggregate(np.stack([centered_gram_unit(X) ...]), 'cka')")
    _check_method(method)
    sizes = {len(v) for v in upper_triangles}
    if len(sizes) > 1:
        raise ValueError(f"RDMs differ in size (upper triangles of lengths {sorted(sizes)})")
    if method in UNIT_METHODS:  # one preallocated stack, the rankings ``threads`` at a time
        return aggregate(unit_vectors(upper_triangles, method, threads=threads), method)
    return aggregate(np.stack([per_rdm_vector(v, method) for v in upper_triangles]), method)

"""RDMs against scipy's pdist (float64), on random data and on duplicates and near-duplicates."""

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import percentileofscore

from rsaflow.rdm import compute_rdm, percentile_ranks, rdm_from_h5, upper_triangle


def reference(x: np.ndarray, metric: str) -> np.ndarray:
    """scipy in float64, rescaled to rsaflow's conventions (module table of rsaflow.rdm)."""
    x = x.astype(np.float64)
    m = x.shape[1]
    if metric == "euclidean":
        return squareform(pdist(x, "euclidean")) / np.sqrt(m)
    if metric == "sqeuclidean":
        return squareform(pdist(x, "sqeuclidean")) / m
    return squareform(pdist(x, metric))


@pytest.fixture
def patterns():
    rng = np.random.default_rng(1)
    # ReLU-like features: non-negative, an offset, float32 as stored by the extraction step
    return np.maximum(rng.normal(0.5, 1.0, size=(60, 700)), 0).astype(np.float32)


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "correlation", "cosine"])
def test_matches_pdist(patterns, metric):
    rdm = compute_rdm(patterns, metric)
    ref = reference(patterns, metric)
    # float64 accumulation of exact float32 products: errors are a few ulps of the largest entry
    assert np.max(np.abs(rdm - ref)) <= 1e-12 * ref.max()
    assert rdm.dtype == np.float64
    assert np.array_equal(rdm, rdm.T)
    assert np.all(np.diag(rdm) == 0)


def test_tutorial_definition_by_loop(patterns):
    """d(i, j) = sqrt(||x_i - x_j||^2 / M), by a brute-force loop."""
    x = patterns[:12].astype(np.float64)
    rdm = compute_rdm(patterns[:12])
    for i in range(12):
        for j in range(12):
            assert rdm[i, j] == pytest.approx(np.sqrt(np.sum((x[i] - x[j]) ** 2) / x.shape[1]), rel=1e-12, abs=1e-15)


def test_duplicates_are_exactly_zero(patterns):
    x = patterns.copy()
    x[5] = x[17]
    x[40] = x[17]
    rdm = compute_rdm(x)
    assert rdm[5, 17] == rdm[17, 40] == rdm[5, 40] == 0.0
    assert np.count_nonzero(rdm == 0) == x.shape[0] + 6


def test_near_duplicates_keep_their_distance():
    """A pair 1e-6 apart on norms of ~30: the Gram identity alone would lose it to cancellation."""
    rng = np.random.default_rng(2)
    x = rng.normal(5.0, 1.0, size=(20, 1000))
    x[3] = x[4]
    x[3, 0] += 1e-6
    rdm = compute_rdm(x)
    ref = reference(x, "euclidean")
    assert rdm[3, 4] == pytest.approx(ref[3, 4], rel=1e-9)
    assert rdm[3, 4] > 0


def test_gram_cancellation_is_recomputed():
    """Large common offset: float32 Gram trick (the tutorial's) fails here; ours matches pdist."""
    rng = np.random.default_rng(3)
    x = (1000.0 + rng.normal(0, 1e-3, size=(30, 512))).astype(np.float32)
    rdm = compute_rdm(x)
    ref = reference(x, "euclidean")
    assert np.max(np.abs(rdm - ref)) <= 1e-10 * ref.max()


@pytest.mark.parametrize("block", [1, 7, 64, 5000])
def test_blocked_equals_unblocked(patterns, block):
    whole = compute_rdm(patterns, block=10**6)
    blocked = compute_rdm(patterns, block=block)
    # different summation order only: a few ulps
    assert np.max(np.abs(whole - blocked)) <= 1e-13 * whole.max()


def test_from_h5_streams_blocks(tmp_path, patterns):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("activations", data=patterns, chunks=(16, 128))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        rdm, _ = rdm_from_h5(f["activations"], "euclidean", block=128)
    ref = reference(patterns, "euclidean")
    assert np.max(np.abs(rdm - ref)) <= 1e-12 * ref.max()


def test_nan_is_an_error(patterns):
    x = patterns.copy()
    x[4, 2] = np.nan
    with pytest.raises(ValueError, match="NaN or Inf in 1 stimuli"):
        compute_rdm(x)


def test_constant_rows_for_correlation():
    x = np.ones((4, 5))
    with pytest.raises(ValueError, match="constant patterns"):
        compute_rdm(x, "correlation")


def test_percentiles_match_scipy():
    rng = np.random.default_rng(4)
    rdm = squareform(rng.integers(0, 5, size=45).astype(float))  # many ties
    ours = percentile_ranks(rdm)
    ref = percentileofscore(rdm.ravel(), rdm.ravel(), kind="rank").reshape(rdm.shape)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-12)


def test_upper_triangle_order_is_squareforms():
    rng = np.random.default_rng(5)
    vec = rng.random(28)
    assert np.array_equal(upper_triangle(squareform(vec)), vec)


def test_many_near_duplicates_in_small_chunks(monkeypatch):
    """A small memory budget forces a few pairs per recomputation chunk; the result must not change."""
    import rsaflow.rdm

    monkeypatch.setattr(rsaflow.rdm, "NEAR_CHUNK_BYTES", 3 * 2 * 8 * 5000)  # 3 pairs of 5000-wide rows
    rng = np.random.default_rng(6)
    base = rng.normal(3.0, 1.0, size=(1, 5000))
    x = np.repeat(base, 12, axis=0) + rng.normal(0, 1e-7, size=(12, base.shape[1]))  # all pairs near
    rdm = compute_rdm(x)
    ref = reference(x, "euclidean")
    assert np.max(np.abs(rdm - ref)) <= 1e-9 * ref.max()
    assert np.all(rdm[~np.eye(12, dtype=bool)] > 0)  # 66 near pairs, none lost to cancellation


@pytest.mark.parametrize("metric", ["euclidean", "sqeuclidean", "correlation", "cosine"])
@pytest.mark.parametrize("block", [1, 100, 5000])
def test_from_h5_streams_every_metric(tmp_path, patterns, metric, block):
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("activations", data=patterns, chunks=(16, 128))
    with h5py.File(tmp_path / "a.h5", "r") as f:
        rdm, n_near = rdm_from_h5(f["activations"], metric, block=block)
    ref = reference(patterns, metric)
    assert np.max(np.abs(rdm - ref)) <= 1e-12 * ref.max()
    assert np.array_equal(rdm, rdm.T) and np.all(np.diag(rdm) == 0) and n_near == 0
    # one implementation: the in-memory path gives the same bytes
    assert np.array_equal(rdm, compute_rdm(patterns, metric, block=block))


@pytest.mark.parametrize("metric", ["correlation", "cosine"])
def test_angular_duplicates_exact_and_equivalent_rows_tiny(patterns, metric):
    x = patterns.astype(np.float64)
    x[5] = x[17]  # identical bytes: exactly 0
    x[8] = 3.0 * x[9] + (0.25 if metric == "correlation" else 0.0)  # same direction / same centred shape
    rdm = compute_rdm(x, metric)
    assert rdm[5, 17] == rdm[17, 5] == 0.0
    # recomputed directly (||u_i - u_j||^2 / 2): rounding of the two scaled rows, ~1e-32, not ~1e-16
    assert 0.0 <= rdm[8, 9] <= 1e-20
    ref = reference(x, metric)
    off = ~np.eye(60, dtype=bool)
    assert np.max(np.abs(rdm - ref)) <= 1e-12 * ref.max()
    assert np.count_nonzero(rdm[off] == 0) >= 2


def exact_angular_distance(a, b, center: bool) -> float:
    """1 - r (center) or 1 - cos of two float rows, from exact rational sums (fractions.Fraction):
    1 - c = (1 - c^2) / (1 + c) with 1 - c^2 = (|u|^2 |v|^2 - (u.v)^2) / (|u|^2 |v|^2) exact, so the
    only rounding is the final float conversion (relative ~1e-16 however small the distance)."""
    from fractions import Fraction

    u, v = [Fraction(float(t)) for t in a], [Fraction(float(t)) for t in b]
    if center:
        mu, mv = sum(u) / len(u), sum(v) / len(v)
        u, v = [t - mu for t in u], [t - mv for t in v]
    uv, uu, vv = sum(p * q for p, q in zip(u, v)), sum(p * p for p in u), sum(q * q for q in v)
    one_minus_c2 = float((uu * vv - uv * uv) / (uu * vv))
    return one_minus_c2 / (1.0 + float(uv) / np.sqrt(float(uu) * float(vv)))


@pytest.mark.parametrize("metric", ["correlation", "cosine"])
def test_angular_near_duplicates_keep_relative_accuracy(metric):
    """d ~ 1e-14: 1 - G_ij / (|x_i| |x_j|) from the Gram matrix (or pdist) keeps ~1e-16 absolute, i.e.
    1-40 % of it here; the direct recomputation of near pairs keeps it to ~1e-11 relative."""
    rng = np.random.default_rng(8)
    x = rng.normal(2.0, 1.0, size=(10, 400))
    x[3] = x[4] + rng.normal(0, 2e-7, size=400)
    rdm = compute_rdm(x, metric)
    ref = exact_angular_distance(x[3], x[4], metric == "correlation")
    assert 1e-15 < ref < 1e-13
    assert rdm[3, 4] == pytest.approx(ref, rel=1e-9, abs=0)
    assert rdm[4, 3] == rdm[3, 4]


def test_correlation_large_offset():
    """Rows = 1e6 + unit noise: the uncentred Gram G - M mu mu^T would cancel ~12 digits (error ~1e-4);
    centring each block by the row means before the syrk keeps pdist's accuracy."""
    rng = np.random.default_rng(9)
    x = 1e6 + rng.normal(0, 1.0, size=(25, 300))
    rdm = compute_rdm(x, "correlation", block=64)
    ref = reference(x, "correlation")
    assert np.max(np.abs(rdm - ref)) <= 1e-10 * ref.max()


@pytest.mark.parametrize("metric,kind", [("correlation", "constant"), ("cosine", "all-zero")])
def test_undefined_rows_are_named(metric, kind, tmp_path):
    x = np.random.default_rng(10).normal(size=(6, 9))
    x[1] = 0.1 if metric == "correlation" else 0.0  # 0.1 * 9 / 9 != 0.1 in float64: detected by min == max
    x[4] = 0.0
    with pytest.raises(ValueError, match=rf"2 stimuli have {kind} patterns \(first rows: \[1, 4\]\); the {metric}"):
        compute_rdm(x, metric, block=4)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("activations", data=x)
    with h5py.File(tmp_path / "a.h5", "r") as f, pytest.raises(ValueError, match=rf"first rows: \[1, 4\]"):
        rdm_from_h5(f["activations"], metric, block=4)


@pytest.mark.parametrize("metric", ["correlation", "cosine", "euclidean"])
def test_memory_independent_of_units(tmp_path, metric):
    """Peak numpy memory <= 1.5 x N^2 x 8 B + a few float64 copies of one block, far below N x M x 8 B."""
    import tracemalloc

    n, m, block = 200, 30_000, 500
    x = np.random.default_rng(11).random((n, m), dtype=np.float32)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f.create_dataset("activations", data=x, chunks=(n, block))
    del x
    with h5py.File(tmp_path / "a.h5", "r") as f:
        tracemalloc.start()
        rdm, _ = rdm_from_h5(f["activations"], metric, block=block)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    assert peak <= 1.5 * n * n * 8 + 4 * n * block * 8, peak / (n * n * 8)
    assert peak < n * m * 8 / 10

"""Response RDMs and noise estimates against rsatoolbox (calc_rdm, prec_from_residuals) on planted data."""

import numpy as np
import pytest

from rsaflow.responses.noise import NOISE, precision
from rsaflow.responses.rdms import RESPONSE_METRICS, poisson_cv_folds, response_rdm

rsatoolbox = pytest.importorskip("rsatoolbox")

R, N, C, T = 4, 7, 12, 40


def planted(seed: int, counts: bool = False):
    """Runs x stimuli x channels: a stimulus pattern per stimulus plus correlated run noise; residuals."""
    rng = np.random.default_rng(seed)
    mix = np.eye(C) + 0.3 * rng.normal(size=(C, C))
    signal = rng.normal(size=(N, C))
    noise = rng.normal(size=(R, N, C)) @ mix
    residuals = rng.normal(size=(T, C)) @ mix
    x = signal[None] + 0.5 * noise
    if counts:
        x = rng.poisson(np.exp(signal[None] * 0.5 + 1.0), size=(R, N, C)).astype(float)
    return x, residuals


def dataset(x):
    r, n, c = x.shape
    return rsatoolbox.data.Dataset(
        x.reshape(r * n, c),
        obs_descriptors={"stimulus": np.tile(np.arange(n), r), "run": np.repeat(np.arange(r), n)},
    )


def reference(x, metric, prec, **kw):
    ds = dataset(x)
    cv = "run" if RESPONSE_METRICS[metric].cross_validated else None
    rdm = rsatoolbox.rdm.calc_rdm(ds, method=metric, descriptor="stimulus", noise=prec, cv_descriptor=cv, **kw)
    return rdm.get_vectors()[0]


@pytest.mark.parametrize("noise", sorted(NOISE))
def test_precision_equals_rsatoolbox(noise):
    _, res = planted(1)
    ours = precision(noise, res)
    if noise == "none":
        assert ours.matrix(C) is None
        return
    ref = rsatoolbox.data.noise.prec_from_residuals(res.copy(), method=noise)
    # both invert a well-conditioned 12 x 12 matrix: agreement to ~1e-13 relative, 1e-10 is loose
    np.testing.assert_allclose(ours.matrix(C), ref, rtol=1e-10, atol=1e-10 * np.abs(ref).max())


def test_precision_dof():
    _, res = planted(2)
    for noise in ("diag", "shrinkage_eye", "shrinkage_diag"):
        ref = rsatoolbox.data.noise.prec_from_residuals(res.copy(), dof=30, method=noise)
        np.testing.assert_allclose(precision(noise, res, dof=30).matrix(C), ref, rtol=1e-10)


@pytest.mark.parametrize("noise", sorted(NOISE))
@pytest.mark.parametrize("metric", ["euclidean", "correlation", "mahalanobis", "crossnobis"])
@pytest.mark.parametrize("block", [8 * R * N * 5, 2**28])
def test_metric_equals_calc_rdm(metric, noise, block):
    """Each metric x noise (in channel blocks of 5 and all at once) equals calc_rdm to 1e-10."""
    x, res = planted(3)
    prec = precision(noise, res)
    ours = response_rdm(x, metric, prec, block_bytes=block)
    ref = reference(x, metric, prec.matrix(C) if RESPONSE_METRICS[metric].uses_noise else None)
    # float64 Gram products summed in another order: ~1e-15 relative to the largest entry
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10 * max(1.0, np.abs(ref).max()))


def test_poisson_equals_calc_rdm():
    x, _ = planted(4, counts=True)
    for kw in ({}, {"prior_lambda": 2.0, "prior_weight": 0.5}):
        np.testing.assert_allclose(response_rdm(x, "poisson", **kw), reference(x, "poisson", None, **kw),
                                   rtol=0, atol=1e-10)


def test_poisson_cv_folds_equal_calc_rdm_with_that_fold_last():
    """rsatoolbox 0.3 returns the last fold only; each of ours equals it when relabelled to be last."""
    x, _ = planted(5, counts=True)
    folds = poisson_cv_folds(x, prior_lambda=1.0, prior_weight=0.1)
    for f in range(R):
        order = [r for r in range(R) if r != f] + [f]  # run f gets the largest cv label
        ds = dataset(x[order])
        ref = rsatoolbox.rdm.calc_rdm(ds, method="poisson_cv", descriptor="stimulus", cv_descriptor="run")
        np.testing.assert_allclose(folds[f], ref.get_vectors()[0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(response_rdm(x, "poisson_cv"), folds.mean(axis=0), rtol=0, atol=1e-15)


def test_crossnobis_unbiased_where_mahalanobis_is_positive():
    """Identical true patterns for all stimuli: crossnobis averages to 0 over seeds (within 4 standard
    errors of the Monte-Carlo mean), the run-averaged Mahalanobis estimate is positive."""
    cross, maha = [], []
    for seed in range(200):
        rng = np.random.default_rng(100 + seed)
        x = np.ones((R, N, C)) + rng.normal(size=(R, N, C))
        res = rng.normal(size=(T, C))
        prec = precision("shrinkage_diag", res)
        cross.append(response_rdm(x, "crossnobis", prec).mean())
        maha.append(response_rdm(x, "mahalanobis", prec).mean())
    cross, maha = np.array(cross), np.array(maha)
    assert abs(cross.mean()) < 4 * cross.std(ddof=1) / np.sqrt(cross.size)
    # expected 2 tr(W Sigma) / (R C) ~ 0.5 for unit noise: far above its own Monte-Carlo error
    assert maha.mean() > 0.3 and maha.min() > 0


def test_needs_runs():
    x, _ = planted(6)
    with pytest.raises(ValueError, match="at least 2 runs"):
        response_rdm(x[:1], "crossnobis")


UNBALANCED = [m for m, r in RESPONSE_METRICS.items() if r.unbalanced]


@pytest.mark.parametrize("metric, noise", [("crossnobis", "diag"), ("crossnobis", "shrinkage_diag"),
                                           ("euclidean", "none"), ("mahalanobis", "shrinkage_eye")])
def test_unbalanced_equals_calc_rdm_unbalanced(metric, noise):
    """Runs missing stimuli (NaN rows): as rsatoolbox.rdm.calc_rdm_unbalanced on the present rows (its
    conditions in order of first appearance, put back in stimulus order); all present: the balanced RDM."""
    from rsatoolbox.rdm.calc_unbalanced import calc_rdm_unbalanced
    from scipy.spatial.distance import squareform

    assert UNBALANCED == ["euclidean", "mahalanobis", "crossnobis"]
    x, res = planted(11)
    present = np.ones((R, N), dtype=bool)
    present[0, 1] = present[2, 1] = present[3, 5] = present[1, 0] = False
    prec = precision(noise, res)
    runs, stims = np.nonzero(present)
    ds = rsatoolbox.data.Dataset(x[runs, stims], obs_descriptors={"stimulus": stims, "run": runs})
    cv = {"cv_descriptor": "run"} if RESPONSE_METRICS[metric].cross_validated else {}
    ref = calc_rdm_unbalanced(ds, method=metric, descriptor="stimulus", noise=prec.matrix(C), **cv)
    order = np.argsort(ref.pattern_descriptors["stimulus"])
    expect = squareform(squareform(ref.get_vectors()[0])[np.ix_(order, order)])
    missing = np.where(present[:, :, None], x, np.nan)
    # the same sums in another order (closed-form fold sums): 1e-10 is ~1e5 x the rounding
    np.testing.assert_allclose(response_rdm(missing, metric, prec, present=present), expect, rtol=0, atol=1e-10)
    full = np.ones((R, N), dtype=bool)
    assert response_rdm(x, metric, prec, present=full).tobytes() == response_rdm(x, metric, prec).tobytes()
    with pytest.raises(ValueError, match="correlation has no unbalanced form"):
        response_rdm(missing, "correlation", present=present)


@pytest.mark.parametrize("noise", ["diag", "shrinkage_diag"])
def test_one_precision_per_run_equals_calc_rdm_with_a_list(noise):
    """A precision per run: rsatoolbox's crossnobis with a list of precisions (pairs of runs, each with the
    inverse of the mean of their covariances)."""
    x, _ = planted(12)
    rng = np.random.default_rng(3)
    precs = [precision(noise, rng.normal(size=(T, C)) * (1 + r)) for r in range(R)]
    ref = rsatoolbox.rdm.calc_rdm(dataset(x), method="crossnobis", descriptor="stimulus",
                                  noise=[p.matrix(C) for p in precs], cv_descriptor="run").get_vectors()[0]
    np.testing.assert_allclose(response_rdm(x, "crossnobis", precs), ref, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match="one noise precision per run is offered for balanced runs and crossnobis"):
        response_rdm(x, "mahalanobis", precs)

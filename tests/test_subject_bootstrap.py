"""Bootstrap of the model-versus-brain bars (rsaflow.inference.bootstrap_subject_similarity) against a
brute-force loop: the same stimulus draws, each resampled triangle built explicitly, every subject
similarity computed directly (rsaflow.ceiling.rdm_similarity, rsatoolbox's compare; scipy inside),
averaged over subjects, percentiles."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow.inference import bootstrap_second_order
from rsaflow.subject_bootstrap import bootstrap_subject_similarity
from rsaflow.ceiling import rdm_similarity
from rsaflow.measures import DegenerateInputError
from rsaflow.methods import NOISE_CEILING_METHODS

WHOLE = ("cosine_cov", "corr_cov")


def brute_force(rdms, groups, method, n_boot, seed, ci):
    """Percentile CI of mean_s sim(RDM_i, subject_{g,s}) over resamples, with the draws of
    bootstrap_second_order (rng.integers(0, n, n) per resample, skipped ones included)."""
    n = rdms[0].shape[0]
    rng = np.random.default_rng(seed)
    iu, ju = np.triu_indices(n, k=1)
    samples = []
    for _ in range(n_boot):
        draws = rng.integers(0, n, n)
        if method in WHOLE:
            if np.unique(draws).size < 3:
                continue
            pick = lambda d: d[np.ix_(draws, draws)][iu, ju]  # noqa: E731  0 between two draws of one stimulus
        else:
            keep = draws[iu] != draws[ju]
            if keep.sum() < 2:
                continue
            pick = lambda d: d[draws[iu][keep], draws[ju][keep]]  # noqa: E731
        try:
            samples.append([[np.mean([rdm_similarity(pick(x), pick(y), method) for y in subjects])
                             for subjects in groups] for x in rdms])
        except DegenerateInputError:
            continue
    samples = np.array(samples)
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    return lower, upper, len(samples)


def data(seed: int, n: int = 9, k: int = 4, sizes=(3, 2), decimals=None):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, 3))
    rdms = [squareform(pdist(base + rng.normal(size=(n, 3)))) for _ in range(k)]
    groups = [[squareform(pdist(base + 0.7 * rng.normal(size=(n, 3)))) for _ in range(s)] for s in sizes]
    if decimals is not None:  # ties (and, for a few resamples, constant triangles)
        rdms = [np.round(r, decimals) for r in rdms]
        groups = [[np.round(r, decimals) for r in g] for g in groups]
    return rdms, groups


@pytest.mark.parametrize("method", NOISE_CEILING_METHODS)
@pytest.mark.parametrize("seed", [0, 1])
def test_equals_brute_force(method, seed):
    rdms, groups = data(seed)
    got = bootstrap_subject_similarity(np.stack(rdms), [np.stack(g) for g in groups], method, n_boot=25,
                                       seed=seed + 3, ci=0.9)
    lower, upper, n_valid = brute_force(rdms, groups, method, 25, seed + 3, 0.9)
    assert got.n_valid == n_valid
    # tolerance: sums of <= 36 products of unit-scale terms in another order, ~1e-15
    np.testing.assert_allclose(got.lower, lower, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.upper, upper, rtol=0, atol=1e-10)
    direct = [[np.mean([rdm_similarity(squareform(x), squareform(y), method) for y in g]) for g in groups]
              for x in rdms]
    np.testing.assert_allclose(got.estimate, direct, rtol=0, atol=1e-12)
    assert np.all(got.lower <= got.upper)


@pytest.mark.parametrize("method", ["spearman", "kendall_tau_a", "pearson"])
def test_ties_and_skipped_resamples_equal_brute_force(method):
    rdms, groups = data(5, n=5, decimals=0)  # few stimuli, coarse values: ties and degenerate resamples
    got = bootstrap_subject_similarity(np.stack(rdms), [np.stack(g) for g in groups], method, n_boot=40, seed=2)
    lower, upper, n_valid = brute_force(rdms, groups, method, 40, 2, 0.95)
    assert got.n_valid == n_valid
    assert method == "kendall_tau_a" or n_valid < 40  # some resamples had a constant triangle: skipped
    np.testing.assert_allclose(got.lower, lower, rtol=0, atol=1e-10)
    np.testing.assert_allclose(got.upper, upper, rtol=0, atol=1e-10)


def test_same_resamples_as_the_matrix_bootstrap():
    """A group of one subject that is one of the RDMs: its bar is the matrix entry's similarity,
    so with the same seed the intervals are 1 - the matrix bootstrap's (reversed)."""
    rdms, _ = data(7, k=3)
    stack = np.stack(rdms)
    for method in ("spearman", "cosine_cov"):
        boot = bootstrap_second_order(stack, method, n_boot=30, seed=11)
        bars = bootstrap_subject_similarity(stack, [stack[2:3]], method, n_boot=30, seed=11)
        assert bars.n_valid == boot.n_valid
        np.testing.assert_allclose(bars.lower[:2, 0], 1 - boot.upper[:2, 2], rtol=0, atol=1e-12)
        np.testing.assert_allclose(bars.upper[:2, 0], 1 - boot.lower[:2, 2], rtol=0, atol=1e-12)


def test_errors():
    rdms, groups = data(0)
    with pytest.raises(ValueError, match="compares activations"):
        bootstrap_subject_similarity(np.stack(rdms), [np.stack(groups[0])], "cka", n_boot=5)
    with pytest.raises(ValueError, match="do not match"):
        bootstrap_subject_similarity(np.stack(rdms), [np.stack([squareform(r) for r in groups[0]])[:, :-1]], "spearman", n_boot=5)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_subject_similarity(np.stack(rdms), [np.stack(groups[0])], "spearman", n_boot=1)

"""Bootstrap and permutations for cosine_cov / corr_cov (rsaflow.inference) against a brute-force
loop over square RDMs with rsaflow.measures (itself tested against rsatoolbox)."""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow import ceiling, inference, measures


def rdms(k=4, n=11, seed=0):
    rng = np.random.default_rng(seed)
    return np.stack([pdist(rng.normal(size=(n, 3 + a))) for a in range(k)])


def brute(uppers, method, index):
    """K x K 1 - similarity of the RDMs D[index][:, index] (a repeated stimulus: 0 to its copy)."""
    sub = [squareform(squareform(u)[np.ix_(index, index)], checks=False) for u in uppers]
    k = len(sub)
    out = np.array([[0.0 if a == b else 1 - ceiling.rdm_similarity(sub[a], sub[b], method) for b in range(k)]
                    for a in range(k)])
    return np.clip(out, 0, 2)


@pytest.mark.parametrize("method", ["cosine_cov", "corr_cov"])
def test_bootstrap_resamples_the_whole_rdm(method):
    u = rdms()
    n = 11
    boot = inference.bootstrap_second_order(u, method, n_boot=25, seed=4, chunk_bytes=3000)  # groups of 1 RDM
    np.testing.assert_allclose(boot.estimate, brute(u, method, np.arange(n)), rtol=0, atol=1e-12)
    rng = np.random.default_rng(4)  # the same draws, in the same order
    samples = np.stack([brute(u, method, np.sort(rng.integers(0, n, n))) for _ in range(25)])
    lower, upper = np.percentile(samples, [2.5, 97.5], axis=0)
    np.fill_diagonal(lower, 0)
    np.testing.assert_allclose(boot.lower, lower, rtol=0, atol=1e-12)
    np.testing.assert_allclose(boot.upper, upper, rtol=0, atol=1e-12)
    assert boot.n_valid == 25


@pytest.mark.parametrize("method", ["cosine_cov", "corr_cov"])
def test_permutations_relabel_the_stimuli_of_one_rdm(method):
    u = rdms(k=3, n=9, seed=1)
    n, n_perm = 9, 40
    res = inference.permutation_test(u, method, n_perm=n_perm, seed=7, chunk_bytes=500)
    observed = 1 - brute(u, method, np.arange(n))
    rng = np.random.default_rng(7)
    count = np.zeros((3, 3))
    for _ in range(n_perm):
        perm = rng.permutation(n)
        moved = [squareform(squareform(x)[np.ix_(perm, perm)], checks=False) for x in u]
        for a in range(3):
            for b in range(a + 1, 3):
                count[a, b] += ceiling.rdm_similarity(moved[a], u[b], method) >= observed[a, b] - inference.PERM_ATOL
    expected = (1 + count) / (1 + n_perm)
    iu = np.triu_indices(3, 1)
    np.testing.assert_allclose(res.p_values[iu], expected[iu], rtol=0, atol=0)
    np.testing.assert_allclose(res.similarity[iu], observed[iu], atol=1e-12)

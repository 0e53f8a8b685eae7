"""Bootstrap CIs cover the truth at about the nominal rate; permutation p-values are uniform under the null.

All seeds are fixed, so the outcomes are deterministic; the tolerances say what a correct
implementation is expected to meet for *any* seed (binomial sampling error of the Monte Carlo
counts), so they are not tuned to the seeds.
"""

import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow.compare import (ALL_METHODS, DegenerateRDMError, aggregate, kendall_tau_a, per_rdm_vectors, second_order,
                             similarity_matrix, tied_pairs)
from rsaflow.inference import PERM_ATOL, BootstrapResult, PermutationResult, bootstrap_second_order, permutation_test

D = 4  # latent dimensions of the stimuli
_W = np.random.default_rng(123).normal(size=(2, D, 6))


def simulate(rng, n):
    """Two 'layers' reading the same latent stimuli through different weights, plus noise; Euclidean RDMs."""
    s = rng.normal(size=(n, D))
    return np.stack([squareform(pdist(s @ w + rng.normal(0, 1.0, (n, 6)))) for w in _W])


def test_bootstrap_coverage_and_std():
    # The "true" value: the second-order dissimilarity of the population, approximated with 1500
    # stimuli (Monte Carlo error ~0.005, small against the CI widths ~0.2 at N=20).
    big = simulate(np.random.default_rng(999), 1500)
    iu = np.triu_indices(1500, k=1)
    true = aggregate(per_rdm_vectors(big[:, iu[0], iu[1]], "spearman"), "spearman")[0, 1]
    reps, ci = 100, 0.9
    rng = np.random.default_rng(1)
    covered, estimates, stds = 0, [], []
    for r in range(reps):
        res = bootstrap_second_order(simulate(rng, 20), "spearman", n_boot=200, seed=r, ci=ci)
        assert res.n_valid == 200
        covered += res.lower[0, 1] <= true <= res.upper[0, 1]
        estimates.append(res.estimate[0, 1])
        stds.append(res.std[0, 1])
    # Binomial(100, 0.9): sd 0.03, so a correct procedure lands within 3 sd below nominal. The
    # bootstrap over stimuli is known to be somewhat conservative (it overestimates the variance
    # of RDM comparisons; Schuett et al. 2023, eLife), so coverage may exceed nominal; but 100/100
    # would mean vacuous intervals. A broken resampling (keeping the duplicated diagonal zeros,
    # or resampling pairs instead of stimuli) falls far outside. (Seed-fixed outcome: 95/100.)
    assert ci - 0.09 <= covered / reps <= 0.99, covered
    # The bootstrap std estimates the sampling sd of the statistic across datasets: the sd of 100
    # estimates has ~7% relative error, and the conservative bias above makes the bootstrap std
    # larger (here ~1.2x), so accept a ratio in [0.8, 1.6].
    ratio = np.mean(stds) / np.std(estimates, ddof=1)
    assert 0.8 <= ratio <= 1.6, ratio


def test_bootstrap_shapes_and_determinism():
    rdms = simulate(np.random.default_rng(0), 10)
    rdms = np.concatenate([rdms, rdms[:1] + 0.1 * squareform(np.random.default_rng(1).random(45))])
    for method in ("pearson", "cosine", "rho_a", "kendall_tau_a"):
        a = bootstrap_second_order(rdms, method, n_boot=20, seed=5)
        b = bootstrap_second_order(rdms, method, n_boot=20, seed=5)
        assert all(np.array_equal(x, y) for x, y in zip(a[:4], b[:4]))
        assert a.lower.shape == (3, 3) and np.all(np.diag(a.lower) == 0) and np.all(np.diag(a.std) == 0)
        assert np.all(a.lower <= a.upper) and np.array_equal(a.lower, a.lower.T)
        iu = np.triu_indices(10, k=1)
        np.testing.assert_allclose(a.estimate, second_order(list(rdms[:, iu[0], iu[1]]), method), atol=1e-14)
    with pytest.raises(ValueError, match="activations"):
        bootstrap_second_order(rdms, "cka", n_boot=10)


def random_rdm(rng, n):
    return squareform(pdist(rng.normal(size=(n, 3))))


def test_permutation_pvalues_uniform_under_null():
    # 400 independent pairs of RDMs of 8 stimuli each; the p-value of each pair is one draw.
    rng = np.random.default_rng(7)
    p = np.array([
        permutation_test(np.stack([random_rdm(rng, 8), random_rdm(rng, 8)]), "spearman", n_perm=99,
                         seed=i).p_values[0, 1]
        for i in range(400)
    ])
    # Under H0 P(p <= k/100) = k/100 (random permutations with the +1 correction give an exactly
    # valid test). Binomial(400, q): sd <= 0.025; accept 3 sd.
    for q in (0.05, 0.2, 0.5, 0.8):
        sd = np.sqrt(q * (1 - q) / 400)
        assert abs(np.mean(p <= q) - q) <= 3 * sd, (q, np.mean(p <= q))
    assert p.min() >= 0.01 and p.max() <= 1.0


def test_permutation_power_and_layout():
    rng = np.random.default_rng(3)
    base = random_rdm(rng, 12)
    rdms = np.stack([base, base + 0.2 * random_rdm(rng, 12), random_rdm(rng, 12)])
    for method in ("spearman", "pearson", "cosine", "rho_a", "kendall_tau_a"):
        res = permutation_test(rdms, method, n_perm=99, seed=0)
        assert res.p_values[0, 1] == pytest.approx(0.01)  # nothing beats the related pair
        assert np.all(np.isnan(np.diag(res.p_values)))
        off = ~np.eye(3, dtype=bool)
        assert np.array_equal(res.p_values[off], res.p_values.T[off])
        iu = np.triu_indices(12, k=1)
        np.testing.assert_allclose(1 - res.similarity[off],
                                   second_order(list(rdms[:, iu[0], iu[1]]), method)[off], atol=1e-12)


# ---- Reference: the (K, N, N) implementation before the bounded-memory rewrite, copied verbatim
# (renamed) so that the new one is checked against it on the same seeds. ----

def reference_check_rdms(rdms: np.ndarray, method: str) -> np.ndarray:
    if method == "cka":
        raise ValueError("cka compares activations, not RDMs: bootstrap/permutation of RDMs is not defined for it")
    if method not in ALL_METHODS:
        allowed = ", ".join(m for m in ALL_METHODS if m != "cka")
        raise ValueError(f"unknown comparison method {method!r}; choose one of {allowed}")
    rdms = np.asarray(rdms, dtype=np.float64)
    if rdms.ndim != 3 or rdms.shape[1] != rdms.shape[2] or rdms.shape[1] < 3 or rdms.shape[0] < 2:
        raise ValueError(f"rdms must be (K >= 2, N >= 3, N), got shape {rdms.shape}")
    if not np.all(np.isfinite(rdms)):
        raise ValueError(f"{np.count_nonzero(~np.isfinite(rdms))} RDM entries are NaN or Inf")
    return rdms


def reference_bootstrap(rdms: np.ndarray, method: str = "spearman", n_boot: int = 1000, seed: int = 0,
                           ci: float = 0.95) -> BootstrapResult:
    """Percentile bootstrap CI of each second-order entry, resampling stimuli with replacement.

    Each resample draws N stimulus indices s_1..s_N uniformly with replacement and rebuilds every
    RDM's upper triangle as d(s_i, s_j) for i < j, EXCLUDING the pairs with s_i == s_j (a stimulus
    drawn twice would contribute a diagonal 0 as a dissimilarity); duplicated stimuli still yield
    duplicated (tied) off-diagonal entries, as in rsatoolbox's bootstrap. The second-order matrix
    of the resample is recomputed with ``method``; resamples in which an RDM becomes degenerate
    (zero variance) are skipped and counted out of ``n_valid``. Returns the (1 - ci)/2 and
    (1 + ci)/2 percentiles (numpy's linear interpolation), the samples' std (ddof=1), the
    estimate on the original stimuli and n_valid.
    """
    rdms = reference_check_rdms(rdms, method)
    if not 0 < ci < 1:
        raise ValueError(f"ci must be in (0, 1), got {ci}")
    if n_boot < 2:
        raise ValueError(f"n_boot must be at least 2, got {n_boot}")
    k, n, _ = rdms.shape
    iu, ju = np.triu_indices(n, k=1)
    estimate = aggregate(per_rdm_vectors(rdms[:, iu, ju], method), method)
    rng = np.random.default_rng(seed)
    samples = np.full((n_boot, k, k), np.nan)
    for b in range(n_boot):
        idx = rng.integers(0, n, n)
        si, sj = idx[iu], idx[ju]
        keep = si != sj
        if np.count_nonzero(keep) < 2:
            continue
        try:
            samples[b] = aggregate(per_rdm_vectors(rdms[:, si[keep], sj[keep]], method), method)
        except DegenerateRDMError:
            continue
    valid = ~np.isnan(samples[:, 0, 0])
    n_valid = int(valid.sum())
    if n_valid < 2:
        raise ValueError(f"only {n_valid} of {n_boot} resamples gave non-degenerate RDMs; too few stimuli ({n})?")
    samples = samples[valid]
    lower, upper = np.percentile(samples, [50 * (1 - ci), 50 * (1 + ci)], axis=0)
    std = samples.std(axis=0, ddof=1)
    for m in (lower, upper, std):
        np.fill_diagonal(m, 0.0)
    return BootstrapResult(lower, upper, std, estimate, n_valid)


def reference_pair_index(n: int) -> np.ndarray:
    """(N, N) array: position of pair (i, j), i != j, in the row-major upper triangle."""
    iu, ju = np.triu_indices(n, k=1)
    pos = np.zeros((n, n), dtype=np.intp)
    pos[iu, ju] = np.arange(iu.size)
    return pos + pos.T


def reference_permutation(rdms: np.ndarray, method: str = "spearman", n_perm: int = 1000,
                     seed: int = 0) -> PermutationResult:
    """Mantel test of every pair of RDMs: one-sided p-value that s(a, b) is this large by chance.

    Each permutation pi relabels the stimuli of RDM a (rows and columns together,
    a'(i, j) = a(pi_i, pi_j)) and recomputes s(a', b) against every b; with the same pi for all
    a, this is one matrix product per permutation. For a < b,
    p(a, b) = (1 + #{pi : s(a', b) >= s(a, b) - PERM_ATOL}) / (1 + n_perm), mirrored to (b, a)
    (relabelling a by pi equals relabelling b by pi^-1, so the null is the same either way);
    the diagonal is NaN. Under the null (no relation between a and b) P(p <= alpha) <= alpha.
    """
    rdms = reference_check_rdms(rdms, method)
    if n_perm < 1:
        raise ValueError(f"n_perm must be at least 1, got {n_perm}")
    k, n, _ = rdms.shape
    iu, ju = np.triu_indices(n, k=1)
    vectors = per_rdm_vectors(rdms[:, iu, ju], method)
    observed = similarity_matrix(vectors, method)
    a_idx, b_idx = np.triu_indices(k, k=1)
    threshold = observed[a_idx, b_idx] - PERM_ATOL
    pos = reference_pair_index(n)
    ties = [tied_pairs(v) for v in vectors] if method == "kendall_tau_a" else None
    rng = np.random.default_rng(seed)
    count = np.zeros(a_idx.size, dtype=np.int64)
    for _ in range(n_perm):
        perm = rng.permutation(n)
        permuted = vectors[:, pos[perm[iu], perm[ju]]]  # rank/centre/scale commute with relabelling
        if method == "kendall_tau_a":
            null = np.array([kendall_tau_a(permuted[a], vectors[b], ties[a], ties[b]) for a, b in zip(a_idx, b_idx)])
        else:
            null = (permuted @ vectors.T)[a_idx, b_idx]
        count += null >= threshold
    p = np.full((k, k), np.nan)
    p[a_idx, b_idx] = p[b_idx, a_idx] = (1.0 + count) / (1.0 + n_perm)
    return PermutationResult(p, observed)


# ---- The bounded-memory implementation equals the reference on the same seeds ----

METHODS = ("spearman", "pearson", "cosine", "rho_a", "kendall_tau_a")


def related_rdms(seed: int, n: int, k: int = 4, ties: bool = False) -> np.ndarray:
    """K square RDMs sharing some structure; ``ties``: rounded to few levels (ties in ranks, tau)."""
    rng = np.random.default_rng(seed)
    s = rng.normal(size=(n, 3))
    rdms = [squareform(pdist(s + rng.normal(0, 0.5 + a, size=(n, 3)))) for a in range(k)]
    if ties:
        rdms = [np.round(r * 2) for r in rdms]
    return np.stack(rdms)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_bytes", [300, 4000, 64 * 2**20])
@pytest.mark.parametrize("ties", [False, True])
def test_bootstrap_equals_reference(method, chunk_bytes, ties):
    rdms = related_rdms(1, 11, ties=ties)
    ref = reference_bootstrap(rdms, method, n_boot=25, seed=3)
    iu = np.triu_indices(11, k=1)
    ours = bootstrap_second_order(rdms[:, iu[0], iu[1]], method, n_boot=25, seed=3, chunk_bytes=chunk_bytes)
    assert ours.n_valid == ref.n_valid
    for name in ("lower", "upper", "std", "estimate"):
        np.testing.assert_allclose(getattr(ours, name), getattr(ref, name), rtol=0, atol=1e-12, err_msg=name)
    # the (K, N, N) form is accepted too, with the same result
    square = bootstrap_second_order(rdms, method, n_boot=25, seed=3, chunk_bytes=chunk_bytes)
    assert all(np.array_equal(x, y) for x, y in zip(square, ours))


@pytest.mark.parametrize("method", ("spearman", "pearson", "rho_a", "kendall_tau_a"))
def test_bootstrap_skips_the_same_degenerate_resamples(method):
    """N=5 with an RDM of two levels: some resamples leave it constant; both skip the same ones."""
    rdms = related_rdms(2, 5, k=3)
    rdms[2] = squareform(np.array([1.0, 1, 1, 1, 1, 1, 1, 1, 2, 1]))
    ref = reference_bootstrap(rdms, method, n_boot=60, seed=4)
    ours = bootstrap_second_order(rdms, method, n_boot=60, seed=4, chunk_bytes=200)
    if method in ("spearman", "pearson"):
        assert ref.n_valid < 60  # the case does exercise skipping
    assert ours.n_valid == ref.n_valid
    for x, y in zip(ours[:4], ref[:4]):
        np.testing.assert_allclose(x, y, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("chunk_bytes", [300, 64 * 2**20])
@pytest.mark.parametrize("ties", [False, True])
def test_permutation_equals_reference(method, chunk_bytes, ties):
    rdms = related_rdms(5, 10, k=4, ties=ties)
    ref = reference_permutation(rdms, method, n_perm=40, seed=6)
    ours = permutation_test(rdms, method, n_perm=40, seed=6, chunk_bytes=chunk_bytes)
    assert np.array_equal(ours.p_values, ref.p_values, equal_nan=True)
    np.testing.assert_allclose(ours.similarity, ref.similarity, rtol=0, atol=1e-12)


def test_condensed_input_checks():
    from rsaflow.resampling import condensed_rdms

    rdms = related_rdms(0, 6, k=2)
    iu = np.triu_indices(6, k=1)
    assert np.array_equal(condensed_rdms(rdms), rdms[:, iu[0], iu[1]])
    with pytest.raises(ValueError, match="14 is not such a number"):
        bootstrap_second_order(np.ones((2, 14)), n_boot=5)
    bad = condensed_rdms(rdms)
    bad[1, 3] = np.nan
    with pytest.raises(ValueError, match="1 RDM entries are NaN or Inf"):
        permutation_test(bad, n_perm=5)


@pytest.mark.parametrize("method", METHODS)
def test_input_is_not_modified(method):
    from rsaflow.resampling import condensed_rdms

    uppers = condensed_rdms(related_rdms(7, 9, k=3))
    before = uppers.copy()
    bootstrap_second_order(uppers, method, n_boot=3, seed=0, chunk_bytes=500)
    permutation_test(uppers, method, n_perm=3, seed=0, chunk_bytes=500)
    assert np.array_equal(uppers, before)

"""Every comparison method against an independent reference, on random and on tied data (1e-10)."""

import itertools

import numpy as np
import pytest
from scipy.stats import pearsonr, spearmanr

from rsaflow.compare import (
    DegenerateRDMError,
    aggregate,
    kendall_tau_a,
    per_rdm_vector,
    per_rdm_vectors,
    second_order,
)
from rsaflow.measures import centered_gram_unit

N = 12  # stimuli -> 66 upper-triangle entries


def _uppers(tied: bool, seed: int = 0, k: int = 5) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    n = N * (N - 1) // 2
    base = rng.random(n)
    out = [np.abs(base + rng.normal(0, s, n)) for s in np.linspace(0.05, 2.0, k)]
    if tied:  # heavy ties, including a categorical (two-valued) model RDM
        out = [np.round(u * 3) / 3 for u in out]
        out[-1] = (base > 0.5).astype(float) + 1.0
    return out


@pytest.fixture(params=[False, True], ids=["random", "tied"])
def uppers(request):
    return _uppers(request.param)


def _pairwise(uppers, stat):
    k = len(uppers)
    out = np.zeros((k, k))
    for a, b in itertools.permutations(range(k), 2):
        out[a, b] = 1 - stat(uppers[a], uppers[b])
    return out


def brute_tau_a(x, y):
    """O(n^2): (concordant - discordant) / (n (n - 1) / 2), ties counting as neither."""
    i, j = np.triu_indices(len(x), k=1)
    return np.sum(np.sign(x[i] - x[j]) * np.sign(y[i] - y[j])) / len(i)


def brute_rho_a(x, y):
    """rsatoolbox's rho-a written out: 12 sum (r_x - mean)(r_y - mean) / (n^3 - n)."""
    from scipy.stats import rankdata

    rx, ry = rankdata(x), rankdata(y)
    n = len(x)
    return 12 * np.sum((rx - rx.mean()) * (ry - ry.mean())) / (n**3 - n)


@pytest.mark.parametrize(
    "method, stat",
    [
        ("spearman", lambda x, y: spearmanr(x, y)[0]),
        ("pearson", lambda x, y: pearsonr(x, y)[0]),
        ("cosine", lambda x, y: x @ y / np.sqrt((x @ x) * (y @ y))),
        ("rho_a", brute_rho_a),
        ("kendall_tau_a", brute_tau_a),
    ],
)
def test_against_reference(uppers, method, stat):
    ref = _pairwise(uppers, stat)
    ours = second_order(uppers, method)
    np.testing.assert_allclose(ours, ref, atol=1e-10, rtol=0)
    assert np.array_equal(ours, ours.T) and np.all(np.diag(ours) == 0)
    # the stored-vector route gives the same matrix
    stored = np.stack([per_rdm_vector(u, method) for u in uppers])
    np.testing.assert_allclose(aggregate(stored, method), ours, atol=1e-14, rtol=0)
    np.testing.assert_allclose(per_rdm_vectors(np.stack(uppers), method), stored, atol=1e-14, rtol=0)


def test_rho_a_is_spearman_without_ties():
    u = _uppers(False)
    np.testing.assert_allclose(second_order(u, "rho_a"), second_order(u, "spearman"), atol=1e-12)


def test_tau_a_large_n_against_brute_force():
    rng = np.random.default_rng(3)
    x = rng.integers(0, 20, 1500).astype(float)  # ties in both
    y = x + rng.integers(0, 15, 1500)
    assert kendall_tau_a(x, y) == pytest.approx(brute_tau_a(x, y), abs=1e-12)
    assert kendall_tau_a(np.ones(10), np.arange(10.0)) == 0.0


def test_rsatoolbox_agrees(uppers):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rdms = rsatoolbox.rdm.RDMs(np.stack(uppers), dissimilarity_measure="euclidean")
    for ours, theirs in [("spearman", "spearman"), ("rho_a", "rho-a"), ("kendall_tau_a", "tau-a"),
                         ("pearson", "corr"), ("cosine", "cosine")]:
        ref = 1 - rsatoolbox.rdm.compare(rdms, rdms, method=theirs)
        np.fill_diagonal(ref, 0)
        np.testing.assert_allclose(second_order(uppers, ours), ref, atol=1e-10, rtol=0, err_msg=ours)


def textbook_cka(x, y):
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    kc = h @ (x @ x.T) @ h
    lc = h @ (y @ y.T) @ h
    return np.sum(kc * lc) / (np.linalg.norm(kc) * np.linalg.norm(lc))


def linear_cka(x, y) -> float:
    """CKA from the library's stored vectors (what the cka analysis multiplies), clipped to [0, 1]."""
    return float(np.clip(centered_gram_unit(x) @ centered_gram_unit(y), 0.0, 1.0))


def test_cka_textbook_and_invariances():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(15, 7))
    y = x @ rng.normal(size=(7, 9)) + rng.normal(0, 1.0, (15, 9))
    ref = textbook_cka(x, y)
    assert linear_cka(x, y) == pytest.approx(ref, abs=1e-12)
    q, _ = np.linalg.qr(rng.normal(size=(9, 9)))
    assert linear_cka(x, y @ q) == pytest.approx(ref, abs=1e-12)  # orthogonal transform
    assert linear_cka(3.7 * x, y) == pytest.approx(ref, abs=1e-12)  # isotropic scaling
    assert linear_cka(x + 5.0, y) == pytest.approx(ref, abs=1e-12)  # translation (centring)
    assert linear_cka(x, x) == pytest.approx(1.0, abs=1e-14)
    # blocked float32 accumulation equals the unblocked result
    x32 = x.astype(np.float32)
    np.testing.assert_allclose(centered_gram_unit(x32, block=2), centered_gram_unit(x32.astype(np.float64)), atol=1e-14)
    layers = [x, y, rng.normal(size=(15, 4))]
    m = aggregate(np.stack([centered_gram_unit(a) for a in layers]), "cka")
    ref_m = np.array([[1 - textbook_cka(a, b) if i != j else 0 for j, b in enumerate(layers)]
                      for i, a in enumerate(layers)])
    np.testing.assert_allclose(m, ref_m, atol=1e-12)
    assert np.array_equal(m, m.T) and np.all(np.diag(m) == 0)


def test_cka_with_tied_activations():
    rng = np.random.default_rng(2)
    x = rng.integers(0, 2, (10, 5)).astype(float)  # binary, duplicated rows likely
    y = np.repeat(rng.normal(size=(5, 3)), 2, axis=0)
    assert linear_cka(x, y) == pytest.approx(textbook_cka(x, y), abs=1e-12)


def test_degenerate_and_invalid():
    with pytest.raises(DegenerateRDMError, match="zero"):
        per_rdm_vector(np.zeros(6), "cosine")
    with pytest.raises(DegenerateRDMError, match="same activations"):
        centered_gram_unit(np.ones((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        per_rdm_vector(np.array([1.0, np.nan, 2.0]), "kendall_tau_a")
    with pytest.raises(ValueError, match="activations"):
        second_order(_uppers(False), "cka")
    with pytest.raises(ValueError, match="unknown comparison method"):
        second_order(_uppers(False), "kendall")
    # rho_a and tau_a are defined (0) for a constant RDM, as in rsatoolbox
    u = _uppers(False)[:2] + [np.full(66, 2.0)]
    for method in ("rho_a", "kendall_tau_a"):
        assert np.all(second_order(u, method)[2, :2] == 1.0)

"""New comparison measures (rsaflow.measures) against independent references.

References: rsatoolbox (installed) for cosine_cov, corr_cov, bures and noise ceilings; thingsvision's
own NumPy CKA (thingsvision 2.7.3, thingsvision/core/cka/cka_numpy.py, imported from its wheel:
thingsvision itself pins tensorflow<2.16, numpy<2 and torchvision==0.15.2, so it cannot be installed
in this environment) plus Song et al. (2012)'s explicit unbiased HSIC formula; shape metrics against their
definition computed on the activations with scipy.linalg.svd and scipy.linalg.orthogonal_procrustes.
Tolerance 1e-8: every computation is float64 on N <= 40 stimuli, so rounding stays near 1e-13.
"""

import importlib
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes, svd
from scipy.stats import ortho_group

from rsaflow import ceiling
from rsaflow import measures as ms
from rsaflow.methods import METHODS, NOISE_CEILING_METHODS
from rsaflow.compare import n_from_pairs

REPO = Path(__file__).resolve().parents[1]

#: Agreement with rsatoolbox and thingsvision where both sides compute the same closed formula in
#: float64 (correlations, cosines, ranks, kernels, noise ceilings): their differences are sums of
#: O(P) rounding errors, measured <= 1e-13 on these sizes with 1 and 2 BLAS threads; 1e-8 leaves
#: margin for other BLAS builds while any convention difference (a centring, a normalisation, a
#: tie rule) shows as >= 1e-3. Iterative references (sqrtm) state their own tolerance below.
TOL = 1e-8
SEEDS = range(5)


def _pair(seed: int, n: int = 30):
    """Two related representations of n stimuli with different widths (one wider than n)."""
    rng = np.random.default_rng(seed)
    m1, m2 = 5 + 7 * seed, 45 - 3 * seed
    x = rng.normal(size=(n, m1)) + 0.3 * rng.normal(size=(1, m1))
    y = np.tanh(x @ rng.normal(size=(m1, m2))) + 0.5 * rng.normal(size=(n, m2))
    return x, y


# --- thingsvision's own CKANumPy, loaded from its wheel ------------------------------------------
# thingsvision 2.7.3 pins tensorflow<2.16, numpy<2 and torchvision==0.15.2, so it cannot be installed
# beside this project; its CKA needs only numpy (and torch for type hints). .ci/run downloads the
# wheel (no dependencies) into .ci/wheels/; the two CKA modules are imported from it as they are.
TV_VERSION = "2.7.3"
TV_FILES = ("cka_base.py", "cka_numpy.py")


def _thingsvision_wheel(tmp: Path) -> Path:
    found = sorted((REPO / ".ci" / "wheels").glob(f"thingsvision-{TV_VERSION}-*.whl"))
    if found:
        return found[0]
    cmd = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"thingsvision=={TV_VERSION}", "-d", str(tmp)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    found = sorted(tmp.glob("thingsvision-*.whl"))
    if proc.returncode or not found:
        pytest.skip(f"thingsvision {TV_VERSION} wheel not in .ci/wheels/ and not downloadable: {proc.stderr[-300:]}")
    return found[0]


@pytest.fixture(scope="module")
def tv_cka(tmp_path_factory):
    """thingsvision's ``CKANumPy`` class, from thingsvision/core/cka/ of the released wheel."""
    tmp = tmp_path_factory.mktemp("thingsvision")
    package = tmp / "tv_cka"
    package.mkdir()
    (package / "__init__.py").write_text("")
    with zipfile.ZipFile(_thingsvision_wheel(tmp)) as z:
        for name in TV_FILES:
            (package / name).write_bytes(z.read(f"thingsvision/core/cka/{name}"))
    sys.path.insert(0, str(tmp))
    try:
        return importlib.import_module("tv_cka.cka_numpy").CKANumPy
    finally:
        sys.path.remove(str(tmp))


def _median_sq(x):
    d = ms.sq_distances(x @ x.T)
    return np.median(d[np.triu_indices_from(d, 1)])


def _song_hsic_u(k, l):
    """Song et al. 2012, eq. (5): unbiased HSIC with zero-diagonal kernels."""
    n = k.shape[0]
    k, l = k.copy(), l.copy()
    np.fill_diagonal(k, 0.0)
    np.fill_diagonal(l, 0.0)
    one = np.ones(n)
    return (
        np.trace(k @ l)
        + (one @ k @ one) * (one @ l @ one) / ((n - 1) * (n - 2))
        - 2.0 / (n - 2) * (one @ k @ l @ one)
    ) / (n * (n - 3))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
def test_linear_cka_matches_thingsvision(tv_cka, seed, debiased):
    x, y = _pair(seed)
    ours = ms.cka_debiased(x @ x.T, y @ y.T) if debiased else ms.cka(x @ x.T, y @ y.T)
    assert abs(ours - tv_cka(m=x.shape[0], kernel="linear", unbiased=debiased).compare(x, y)) < TOL
    if debiased:
        k, l = x @ x.T, y @ y.T
        song = _song_hsic_u(k, l) / np.sqrt(_song_hsic_u(k, k) * _song_hsic_u(l, l))
        assert abs(ours - song) < TOL


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("debiased", [False, True], ids=["biased", "debiased"])
@pytest.mark.parametrize("sigma_frac", [1.0, 0.8, 0.3])
def test_rbf_cka_matches_thingsvision(tv_cka, seed, debiased, sigma_frac):
    x, y = _pair(seed, n=31 + seed)  # odd and even numbers of pairs (median of two middles)
    ours = ms.cka_rbf(x @ x.T, y @ y.T, sigma_frac=sigma_frac, debiased=debiased)
    if sigma_frac == 1.0:  # thingsvision's sigma=None: each representation its own median bandwidth
        theirs = tv_cka(m=x.shape[0], kernel="rbf", unbiased=debiased, sigma=None).compare(x, y)
    else:  # one sigma for both: scale y to x's median distance (RBF CKA with a median-relative
        # bandwidth is invariant to scaling either representation), then sigma = frac sqrt(median)
        y = y * np.sqrt(_median_sq(x) / _median_sq(y))
        sigma = sigma_frac * np.sqrt(_median_sq(x))
        theirs = tv_cka(m=x.shape[0], kernel="rbf", unbiased=debiased, sigma=sigma).compare(x, y)
        assert abs(ms.cka_rbf(x @ x.T, y @ y.T, sigma_frac=sigma_frac, debiased=debiased) - ours) < TOL
    assert abs(ours - theirs) < TOL


def test_debiased_cka_is_near_zero_for_independent_representations():
    biased, debiased = [], []
    for seed in range(20):
        rng = np.random.default_rng(1000 + seed)
        x, y = rng.normal(size=(64, 1000)), rng.normal(size=(64, 1000))
        k, l = x @ x.T, y @ y.T
        biased.append(ms.cka(k, l))
        debiased.append(ms.cka_debiased(k, l))
    print(f"independent N=64, width 1000, 20 seeds: mean biased CKA {np.mean(biased):.4f}, "
          f"mean debiased CKA {np.mean(debiased):+.4f}")
    assert abs(np.mean(debiased)) <= 0.02
    assert abs(np.mean(biased)) > 0.02


# --- rsatoolbox: cosine_cov, corr_cov, bures, noise ceilings -----------------------------------

rsatoolbox = pytest.importorskip("rsatoolbox")


def _rsa(vectors):
    return rsatoolbox.rdm.RDMs(np.atleast_2d(np.asarray(vectors, dtype=np.float64)))


def _sqeuclidean_upper(x):
    d = ms.sq_distances(x @ x.T)
    return d[np.triu_indices(d.shape[0], k=1)]


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", ["cosine_cov", "corr_cov"])
def test_cov_weighted_match_rsatoolbox(seed, method):
    x, y = _pair(seed, n=12 + seed)
    a, b = _sqeuclidean_upper(x), _sqeuclidean_upper(y)
    b = b + np.random.default_rng(seed).random(b.size)  # not a Euclidean RDM: still defined
    ref = rsatoolbox.rdm.compare(_rsa(a), _rsa(b), method=method)[0, 0]
    ours = ms.cosine_cov(a, b) if method == "cosine_cov" else ms.corr_cov(a, b)
    assert abs(ours - ref) < TOL
    assert abs(ceiling.rdm_similarity(a, b, method) - ref) < TOL


@pytest.mark.parametrize("seed", SEEDS)
def test_bures_matches_the_exact_formula_and_rsatoolbox_within_its_accuracy(seed):
    x, y = _pair(seed, n=15)
    xc, yc = x - x.mean(0), y - y.mean(0)
    # the exact value: the nuclear norm of X_c^T Y_c over the Frobenius norms, from one SVD (float64,
    # backward stable: error ~ 1e-16, independent of the BLAS build and thread count)
    exact = np.linalg.svd(xc.T @ yc, compute_uv=False).sum() / (np.linalg.norm(xc) * np.linalg.norm(yc))
    assert abs(ms.bures_similarity(x @ x.T, y @ y.T) - exact) < 1e-12  # measured <= 7e-16
    ref = rsatoolbox.rdm.compare(_rsa(_sqeuclidean_upper(x)), _rsa(_sqeuclidean_upper(y)), method="bures")
    # rsatoolbox takes scipy.linalg.sqrtm of the centred kernels, which are singular (rank <= N - 1):
    # sqrtm is then accurate to about sqrt(eps) ~ 1.5e-8, and how close depends on the BLAS build
    # (measured 7.3e-9 here, 1.1e-8 on another machine). 1e-6 is that accuracy with margin; a formula
    # error (a missing root, uncentred kernels) moves the value by more than 1e-3.
    assert abs(ref[0, 0] - exact) < 1e-6


def _subjects(seed, s=4, n=10, tied=False):
    rng = np.random.default_rng(seed)
    truth = rng.random(n * (n - 1) // 2)
    subs = np.abs(truth + rng.normal(0, 0.3 + 0.1 * seed, (s, truth.size)))
    return np.round(subs * 4) / 4 if tied else subs


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("method", NOISE_CEILING_METHODS)
def test_noise_ceiling_matches_rsatoolbox(seed, method):
    subs = _subjects(seed, s=3 + seed % 3, n=9 + seed, tied=seed == 4)
    with pytest.warns(UserWarning) if method == "kendall_tau_a" else _no_warning():
        ref = rsatoolbox.inference.boot_noise_ceiling(_rsa(subs), method=METHODS[method].rsatoolbox)
    lower, upper = ceiling.noise_ceiling(subs, method)
    assert abs(lower - ref[0]) < TOL and abs(upper - ref[1]) < TOL
    assert lower <= upper + TOL


class _no_warning:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


@pytest.mark.parametrize("method", ["spearman", "pearson", "cosine", "rho_a", "kendall_tau_a"])
def test_rdm_similarity_matches_rsatoolbox_with_ties(method):
    subs = _subjects(7, s=2, n=12, tied=True)
    ref = rsatoolbox.rdm.compare(_rsa(subs[0]), _rsa(subs[1]), method=METHODS[method].rsatoolbox)
    assert abs(ceiling.rdm_similarity(subs[0], subs[1], method) - ref[0, 0]) < TOL


def test_noise_ceiling_accepts_square_rdms_and_checks_input():
    subs = _subjects(3)
    n = n_from_pairs(subs.shape[1])
    square = np.zeros((subs.shape[0], n, n))
    iu = np.triu_indices(n, k=1)
    square[:, iu[0], iu[1]] = subs
    square = square + square.transpose(0, 2, 1)
    assert ceiling.noise_ceiling(square, "spearman") == ceiling.noise_ceiling(subs, "spearman")
    with pytest.raises(ValueError, match="at least 2 subjects"):
        ceiling.noise_ceiling(subs[:1], "spearman")
    with pytest.raises(ValueError, match="allowed: spearman"):
        ceiling.noise_ceiling(subs, "kendall")


# --- shape metrics ------------------------------------------------------------------------------


def _phi(x, alpha):
    """Partial whitening from the definition: Xc (alpha I + (1 - alpha) C^-1/2), Xc pre-shape."""
    xc = x - x.mean(axis=0)
    xc = xc / np.linalg.norm(xc)
    _, s, vt = svd(xc, full_matrices=False)
    keep = s > 1e-5 * s.max()
    c_inv_sqrt = vt[keep].T @ np.diag(1.0 / s[keep]) @ vt[keep]  # on the nonzero eigenvalues
    return xc @ (alpha * np.eye(x.shape[1]) + (1.0 - alpha) * c_inv_sqrt)


def _shape_reference(x, y, alpha):
    px, py = _phi(x, alpha), _phi(y, alpha)
    width = max(px.shape[1], py.shape[1])
    px = np.pad(px, ((0, 0), (0, width - px.shape[1])))
    py = np.pad(py, ((0, 0), (0, width - py.shape[1])))
    q, _ = orthogonal_procrustes(px, py)
    cos = np.sum((px @ q) * py) / (np.linalg.norm(px) * np.linalg.norm(py))
    return np.arccos(np.clip(cos, -1.0, 1.0))


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("alpha", [0.0, 0.25, 0.5, 1.0])
def test_shape_distance_matches_definition(seed, alpha):
    x, y = _pair(seed, n=40)
    x, y = x[:, :12], y[:, :20]  # ranks below N - 1, so CCA (alpha 0) is not trivially 0
    ours = ms.shape_distance(x @ x.T, y @ y.T, alpha)
    assert abs(ours - _shape_reference(x, y, alpha)) < TOL
    if alpha == 1.0:
        assert abs(np.cos(ours) - ms.bures_similarity(x @ x.T, y @ y.T)) < TOL


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_shape_distance_triangle_inequality(alpha):
    rng = np.random.default_rng(11)
    worst = -np.inf
    for _ in range(100):
        n = int(rng.integers(8, 20))
        x = rng.normal(size=(n, int(rng.integers(2, 6))))
        y = x @ rng.normal(size=(x.shape[1], int(rng.integers(2, 6)))) + rng.normal(0, rng.random(), (n, 1))
        z = y @ rng.normal(size=(y.shape[1], int(rng.integers(2, 6)))) + rng.normal(0, rng.random(), (n, 1))
        k = [a @ a.T for a in (x, y, z)]
        d = {(i, j): ms.shape_distance(k[i], k[j], alpha) for i in range(3) for j in range(3) if i < j}
        for i, j, m in ((0, 2, 1), (0, 1, 2), (1, 2, 0)):
            via = d[tuple(sorted((i, m)))] + d[tuple(sorted((m, j)))]
            worst = max(worst, d[(i, j)] - via)
    assert worst <= 1e-10, worst


@pytest.mark.parametrize("alpha", [0.0, 0.5, 1.0])
def test_shape_distance_invariances(alpha):
    rng = np.random.default_rng(5)
    x, y = _pair(2, n=25)
    x, y = x[:, :10], y[:, :15]
    base = ms.shape_distance(x @ x.T, y @ y.T, alpha)
    assert base > 0.05  # a nontrivial pair
    for _ in range(5):
        q = ortho_group.rvs(x.shape[1], random_state=rng)
        scale, shift = np.exp(rng.normal(0, 2)), rng.normal(size=(1, x.shape[1]))
        x2 = scale * x @ q + shift
        y2 = np.exp(rng.normal(0, 2)) * y @ ortho_group.rvs(y.shape[1], random_state=rng)
        for a, b in ((x2, y), (x, y2), (x2, y2)):
            assert abs(ms.shape_distance(a @ a.T, b @ b.T, alpha) - base) < TOL
    assert ms.shape_distance(x @ x.T, (3 * x) @ (3 * x).T, alpha) < 1e-6  # same shape


def test_degenerate_inputs_raise():
    x = np.ones((10, 4))
    y = np.random.default_rng(0).normal(size=(10, 3))
    for f in (ms.cka, ms.cka_debiased, ms.cka_rbf, ms.bures_similarity, ms.shape_distance):
        with pytest.raises(ms.DegenerateInputError):
            f(x @ x.T, y @ y.T)
    with pytest.raises(ValueError, match="alpha must be in"):
        ms.shape_distance(y @ y.T, y @ y.T, 1.5)
    with pytest.raises(ValueError, match="same stimuli"):
        ms.cka(y @ y.T, y[:5] @ y[:5].T)


def test_measures_import_neither_torch_nor_rsatoolbox():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, rsaflow.measures; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'rsatoolbox'}))")
    src = Path(ms.__file__).resolve().parents[1]
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={"PYTHONPATH": str(src), "PATH": "/usr/bin:/bin"})
    assert out.stdout.strip() == "[]"


def test_per_layer_parts_reproduce_pairwise_measures():
    """What an aggregation would cache per layer gives the same K x K matrices as pairwise calls."""
    rng = np.random.default_rng(3)
    layers = [rng.normal(size=(20, m)) @ rng.normal(size=(m, m)) for m in (3, 8, 30, 5)]
    grams = [a @ a.T for a in layers]
    for kwargs, pair in (
        ({}, ms.cka),
        ({"debiased": True}, ms.cka_debiased),
        ({"kernel": "rbf", "sigma_frac": 0.5}, lambda k, l: ms.cka_rbf(k, l, sigma_frac=0.5)),
    ):
        v = np.array([ms.cka_vector(k, **kwargs) for k in grams])
        assert np.allclose(v @ v.T, [[pair(k, l) for l in grams] for k in grams], atol=1e-12, rtol=0)
    f = [ms.shape_factor(k, 0.5) for k in grams]
    ref = [[ms.shape_distance(k, l, 0.5) for l in grams] for k in grams]
    # arccos(1 - eps) ~ sqrt(2 eps): the diagonal (distance 0) is exact only to ~2e-8
    assert np.allclose([[ms.shape_distance_factors(a, b) for b in f] for a in f], ref, atol=1e-7, rtol=0)
    uppers = _subjects(1, s=4, n=10)
    v = np.array([ms.cov_vector(u, "corr_cov") for u in uppers])
    assert np.allclose(v @ v.T, [[ms.corr_cov(a, b) for b in uppers] for a in uppers], atol=1e-12, rtol=0)

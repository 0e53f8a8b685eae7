"""Model evaluation against subjects (rsaflow.evaluation) versus rsatoolbox and scipy, on planted data."""

import numpy as np
import pytest
from scipy import stats
from scipy.spatial.distance import pdist

from rsaflow import evaluation as ev
from rsaflow import evaluation_moments
from rsaflow.methods import METHODS
from rsaflow.resampling import draw

rsatoolbox = pytest.importorskip("rsatoolbox")
RSA = {m: METHODS[m].rsatoolbox for m in ev.EVAL_METHODS}  # the registry's rsatoolbox names
STIMULUS_METHODS = [m for m in ev.EVAL_METHODS if ev.resamples_stimuli(m)]
N, S = 14, 6


def planted(seed=0):
    """Subjects = a true RDM + noise; layer 0 carries the true RDM, layer 1 half of it, layer 2 is noise."""
    rng = np.random.default_rng(seed)
    true = pdist(rng.normal(size=(N, 4)))
    subjects = true + 0.6 * true.std() * rng.normal(size=(S, true.size))
    layers = np.stack([true + 0.2 * true.std() * rng.normal(size=true.size),
                       true + 1.5 * true.std() * rng.normal(size=true.size),
                       pdist(rng.normal(size=(N, 4)))])
    return layers, subjects


def rdms(x):
    return rsatoolbox.rdm.RDMs(x, pattern_descriptors={"index": np.arange(N)})


@pytest.mark.parametrize("method", ev.EVAL_METHODS)
def test_fixed_equals_eval_fixed(method):
    layers, subjects = planted()
    models = [rsatoolbox.model.ModelFixed(f"l{k}", rdms(layers[k : k + 1])) for k in range(3)]
    ref = rsatoolbox.inference.eval_fixed(models, rdms(subjects), method=RSA[method])
    evals, ceiling = ev.evaluate_fixed(layers, subjects, method)
    # dot products of unit vectors vs rsatoolbox's compare: float64 rounding, ~1e-15
    np.testing.assert_allclose(evals, ref.evaluations[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(ceiling, ref.noise_ceiling, rtol=0, atol=1e-12)
    var = ev.variances(evals, None, "none", N)
    np.testing.assert_allclose(var["model"], ref.model_var, rtol=1e-12)
    p = ev.tests(evals.mean(axis=1), ceiling[0], var, "t-test")
    np.testing.assert_allclose(p["zero"], ref.test_zero("t-test"), rtol=1e-8, atol=1e-12)
    np.testing.assert_allclose(p["ceiling"], ref.test_noise("t-test"), rtol=1e-8, atol=1e-12)
    i, j = np.triu_indices(3, k=1)
    np.testing.assert_allclose(p["pair"], ref.test_pairwise("t-test")[i, j], rtol=1e-8, atol=1e-12)


def test_t_tests_equal_scipy():
    layers, subjects = planted(1)
    evals, ceiling = ev.evaluate_fixed(layers, subjects, "pearson")
    p = ev.tests(evals.mean(axis=1), ceiling[0], ev.variances(evals, None, "none", N), "t-test")
    # same t statistic and t distribution: agreement to rounding (1e-12 relative)
    for k in range(3):
        assert p["zero"][k] == pytest.approx(stats.ttest_1samp(evals[k], 0, alternative="greater").pvalue, rel=1e-10)
        assert p["ceiling"][k] == pytest.approx(stats.ttest_1samp(evals[k], ceiling[0]).pvalue, rel=1e-10)
    for n, (i, j) in enumerate(zip(*np.triu_indices(3, k=1))):
        assert p["pair"][n] == pytest.approx(stats.ttest_rel(evals[i], evals[j]).pvalue, rel=1e-10)


def test_corrections():
    p = np.random.default_rng(0).random(12) ** 3
    np.testing.assert_array_equal(ev.correct(p, "fdr"), stats.false_discovery_control(p))
    np.testing.assert_array_equal(ev.correct(p, "bonferroni"), np.minimum(1, 12 * p))


@pytest.mark.parametrize("method", STIMULUS_METHODS)
def test_one_resample_equals_rsatoolbox(method):
    """A stimulus resample (weighted distinct pairs) equals rsatoolbox's subsample_pattern, and a subject
    resample's noise ceiling its boot_noise_ceiling on the subsampled RDMs."""
    layers, subjects = planted(2)
    rng = np.random.default_rng(5)
    counts = draw(rng, N, whole=False)
    idx = np.repeat(np.arange(N), counts)
    subj = np.array([0, 0, 1, 3, 3, 5])
    mult = np.bincount(subj, minlength=S)
    i, j = np.triu_indices(N, k=1)
    e, ceiling = ev._sampler(layers, subjects, method)(ev._pair_weights(counts, i, j), counts)
    data = rdms(subjects).subsample("index", subj).subsample_pattern("index", idx)
    for k in range(3):
        model = rdms(layers[k : k + 1]).subsample_pattern("index", idx)
        ref = rsatoolbox.rdm.compare(model, data, method=RSA[method])[0]
        np.testing.assert_allclose((e[k] @ mult) / mult.sum(), ref.mean(), rtol=0, atol=1e-12)
    ref_nc = rsatoolbox.inference.boot_noise_ceiling(data, method=RSA[method], rdm_descriptor="index")
    np.testing.assert_allclose(ceiling(mult), ref_nc, rtol=0, atol=1e-12)


@pytest.mark.parametrize("method", ["pearson", "cosine"])
def test_batched_bootstrap_equals_rsatoolbox_per_resample(method, monkeypatch):
    """The batched moments path (several resamples per product, pairs in blocks) gives, resample by
    resample, rsatoolbox's compare on subsample / subsample_pattern and its boot_noise_ceiling for all
    three sets of the dual bootstrap; across two batches and several blocks of pairs."""
    monkeypatch.setattr(evaluation_moments, "BLOCK", 16)  # 91 pairs: 6 blocks
    monkeypatch.setattr(evaluation_moments, "BATCH", 4)
    layers, subjects = planted(7)
    boot = ev.bootstrap(layers, subjects, method, "both", 9, seed=2)
    draws = ev._draws(np.random.default_rng(2), "both", 9, S, N)
    assert len(draws) >= 5
    for b, subj, counts in draws[:2] + draws[4:6]:
        idx, sub = np.repeat(np.arange(N), counts), np.repeat(np.arange(S), subj)
        for t, data in (("both", rdms(subjects).subsample("index", sub).subsample_pattern("index", idx)),
                        ("subjects", rdms(subjects).subsample("index", sub)),
                        ("stimuli", rdms(subjects).subsample_pattern("index", idx))):
            pattern = idx if t != "subjects" else np.arange(N)
            ref = [rsatoolbox.rdm.compare(rdms(layers[k : k + 1]).subsample_pattern("index", pattern), data,
                                          method=RSA[method])[0].mean() for k in range(3)]
            np.testing.assert_allclose(boot[f"samples_{t}"][b], ref, rtol=0, atol=1e-12)
            nc = rsatoolbox.inference.boot_noise_ceiling(data, method=RSA[method], rdm_descriptor="index")
            np.testing.assert_allclose(boot[f"ceiling_{t}"][b], nc, rtol=0, atol=1e-12)
    skipped = sorted(set(range(9)) - {d[0] for d in draws})
    assert np.isnan(boot["samples"][skipped]).all()


@pytest.mark.parametrize("method", ["pearson", "spearman"])
def test_bootstrap_bits_independent_of_threads(monkeypatch, method):
    """The batched path sums fixed blocks (6 blocks here); the per-resample path runs on one BLAS thread
    (at N = 200 threaded dot products would change its bits)."""
    from threadpoolctl import threadpool_limits

    monkeypatch.setattr(evaluation_moments, "BLOCK", 16)
    rng = np.random.default_rng(8)
    n = 14 if method == "pearson" else 200
    true = pdist(rng.normal(size=(n, 4)))
    layers = true + rng.normal(size=(5, true.size)) * true.std()
    subjects = true + rng.normal(size=(5, true.size)) * true.std()
    runs = []
    for threads in (1, 2, 3):
        with threadpool_limits(threads):
            runs.append(ev.bootstrap(layers, subjects, method, "both", 20 if method == "pearson" else 4, seed=4))
    for key in runs[0]:
        assert runs[0][key].tobytes() == runs[1][key].tobytes() == runs[2][key].tobytes(), key


def test_every_method_with_a_ceiling_evaluates():
    """rsatoolbox's eval methods that rsaflow's registry holds (corr, cosine, spearman, rho-a, tau-a,
    cosine_cov, corr_cov) are all offered, and the schema's evaluate.method enum is exactly them."""
    import yaml

    from conftest import REPO

    assert set(RSA.values()) == {"corr", "cosine", "spearman", "rho-a", "tau-a", "cosine_cov", "corr_cov"}
    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    region = schema["properties"]["brain"]["additionalProperties"]["properties"]
    assert region["evaluate"]["properties"]["method"]["enum"] == list(ev.EVAL_METHODS)
    assert STIMULUS_METHODS == ["spearman", "pearson", "cosine", "rho_a", "kendall_tau_a"]


@pytest.mark.parametrize("method", [m for m in ev.EVAL_METHODS if not ev.resamples_stimuli(m)])
def test_whole_methods_resample_subjects_as_rsatoolbox_and_refuse_stimuli(method):
    layers, subjects = planted(9)
    boot = ev.bootstrap(layers, subjects, method, "subjects", 6, seed=5)
    for b, subj, _ in ev._draws(np.random.default_rng(5), "subjects", 6, S, N)[:3]:
        data = rdms(subjects).subsample("index", np.repeat(np.arange(S), subj))
        ref = [rsatoolbox.rdm.compare(rdms(layers[k : k + 1]), data, method=RSA[method])[0].mean() for k in range(3)]
        np.testing.assert_allclose(boot["samples"][b], ref, rtol=0, atol=1e-12)
        nc = rsatoolbox.inference.boot_noise_ceiling(data, method=RSA[method], rdm_descriptor="index")
        np.testing.assert_allclose(boot["ceiling"][b], nc, rtol=0, atol=1e-12)
    for kind in ("stimuli", "both"):
        with pytest.raises(ValueError, match="no bootstrap over stimuli"):
            ev.bootstrap(layers, subjects, method, kind, 4)


def test_dual_variance_equals_rsatoolbox_extract_variances():
    layers, subjects = planted(3)
    boot = ev.bootstrap(layers, subjects, "pearson", "both", 200, seed=1)
    evals, _ = ev.evaluate_fixed(layers, subjects, "pearson")
    ours = ev.variances(evals, boot, "both", N)
    covs = []
    for t in ("both", "subjects", "stimuli"):
        m = np.concatenate([boot[f"samples_{t}"], boot[f"ceiling_{t}"]], axis=1)
        covs.append(np.cov(m[~np.isnan(m).any(axis=1)].T))
    from rsatoolbox.util.inference_util import extract_variances
    model, diff, nc = extract_variances(np.stack(covs), True, S, N)
    np.testing.assert_allclose(ours["model"], model, rtol=1e-12)
    np.testing.assert_allclose(ours["pair"], diff, rtol=1e-12)
    np.testing.assert_allclose(ours["ceiling"], nc, rtol=1e-12)


def test_bootstrap_reproducible_and_planted_winner():
    layers, subjects = planted(4)
    a = ev.bootstrap(layers, subjects, "spearman", "both", 100, seed=7)
    b = ev.bootstrap(layers, subjects, "spearman", "both", 100, seed=7)
    for key in a:
        assert a[key].tobytes() == b[key].tobytes()
    evals, ceiling = ev.evaluate_fixed(layers, subjects, "spearman")
    est = evals.mean(axis=1)
    var = ev.variances(evals, a, "both", N)
    p = ev.tests(est, ceiling[0], var, "t-test")
    assert np.argmax(est) == 0 and p["pair"][0] < 0.05 and p["zero"][0] < 0.001
    assert p["zero"][2] > 0.05  # the noise layer does not beat zero
    pb = ev.tests(est, ceiling[0], var, "bootstrap", a)
    assert pb["zero"][0] == pytest.approx(1 / 100) and pb["zero"][2] > 0.05


def test_subset_pairs_equal_the_square_submatrix():
    from scipy.spatial.distance import squareform

    d = pdist(np.random.default_rng(0).normal(size=(N, 3)))
    sub = np.array([1, 4, 5, 9, 13])
    np.testing.assert_array_equal(d[ev.subset_pairs(sub, N)], squareform(squareform(d)[np.ix_(sub, sub)]))


@pytest.mark.parametrize("split", ["stimuli", "subjects"])
def test_commitment_picks_the_signal_layer_and_reports_the_other_half(split):
    layers, subjects = planted(6)
    models = ["net", "net", "noise"]
    rows = ev.commit_layers(layers, subjects, models, "pearson", split, seed=3)
    assert [r["model"] for r in rows] == ["net", "noise"] and rows[0]["layer"] == 0 and rows[1]["layer"] == 2
    # the reported score is the chosen layer's score on the other half, recomputed independently
    rng = np.random.default_rng(3)
    if split == "stimuli":
        perm = rng.permutation(N)
        other = ev.subset_pairs(np.sort(perm[N // 2 :]), N)
        expect = ev.evaluate_fixed(layers[:1, other], subjects[:, other], "pearson")[0].mean()
    else:
        perm = rng.permutation(S)
        expect = ev.evaluate_fixed(layers[:1], subjects[np.sort(perm[S // 2 :])], "pearson")[0].mean()
    assert rows[0]["reported"] == pytest.approx(expect, abs=1e-12)


@pytest.mark.parametrize("method, k, s", [("pearson", 20, 4), ("pearson", 4, 16), ("spearman", 20, 4)])
def test_job_bytes_bound_the_peak(tmp_path, method, k, s):
    """The brain_eval memory estimate (its rule's mem_mb) is above the job's tracemalloc peak of numpy
    arrays (RDM files read, evaluation, dual bootstrap, commitment) and within 2.5x of it."""
    import tracemalloc

    from rsaflow import rdmfile
    from rsaflow.jobs.brain_eval import evaluate_region

    rng = np.random.default_rng(0)
    n = 200
    true = pdist(rng.normal(size=(n, 8)))
    paths = []
    for i in range(k):
        paths.append(tmp_path / f"l{i}.h5")
        rdmfile.write(paths[-1], true + rng.normal(size=true.size),
                      {"model": f"m{i % 3}", "layer": f"l{i}", "stimulus_digest": "d", "node_index": i})
    subjects = true + rng.normal(size=(s, true.size))
    rdmfile.write(tmp_path / "g.h5", subjects.mean(0), {"model": "brain", "layer": "V1", "stimulus_digest": "d",
                                                        "node_index": -1}, extra={"subjects": subjects})
    del subjects, true
    spec = {"method": method, "bootstrap": "both", "samples": 10 if method == "pearson" else 2, "seed": 0,
            "test": "t-test", "correction": "fdr", "commit": "stimuli"}
    evaluate_region(paths, tmp_path / "g.h5", spec)  # first: its lazy imports, whose memory is not the job's arrays
    tracemalloc.start()
    evaluate_region(paths, tmp_path / "g.h5", spec)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    from rsaflow.products import blas_threads as _blas_threads

    # the blocks run on as many threads as the BLAS limit in force (an earlier job test in this process
    # may have set it to its rule's 1)
    estimate = ev.job_bytes(k, s, n, _blas_threads(), spec["samples"])
    assert peak <= estimate <= 2.5 * peak, (estimate / 1e6, peak / 1e6)
    print(f"estimate {estimate / peak:.2f}x the peak")

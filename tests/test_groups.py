"""External RDM groups (several subjects' RDMs of one region): reading, the mean RDM, the noise ceilings
and subject similarities of the second order (against rsatoolbox), and the model-versus-brain figure."""

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow import rdmfile
from rsaflow.config import check_paths
from rsaflow.errors import ConfigError, InputFileError
from rsaflow.external import group_mean, is_group, is_group_file, load_external_group, load_external_rdm
from rsaflow.second_order.ceilings import group_ceilings
from rsaflow.results import read_meta, read_rdm

N, S = 8, 3
IDS = [f"s{i}" for i in range(N)]


def subjects(seed: int = 0, s: int = S, n: int = N) -> np.ndarray:
    """S noisy copies of one RDM (symmetric noise, zero diagonal, positive)."""
    rng = np.random.default_rng(seed)
    base = pdist(rng.normal(size=(n, 4)))
    return np.stack([squareform(base + rng.random(base.size)) for _ in range(s)])


def test_group_from_a_list_and_from_arrays(tmp_path):
    rdms = subjects()
    files = []
    for i, r in enumerate(rdms):
        np.save(tmp_path / f"sub{i}.npy", r if i else squareform(r))  # square and condensed
        files.append(tmp_path / f"sub{i}.npy")
    np.save(tmp_path / "stack.npy", rdms)
    perm = np.array([7, 2, 5, 0, 1, 6, 3, 4])
    with h5py.File(tmp_path / "square.h5", "w") as f:
        f["rdms"] = rdms[:, perm][:, :, perm]
        f["stimulus_ids"] = np.array([IDS[p] for p in perm], dtype="S")
    with h5py.File(tmp_path / "condensed.h5", "w") as f:
        f["rdms"] = np.stack([squareform(r) for r in rdms])
    for source in (files, tmp_path / "stack.npy", str(tmp_path / "stack.npy"), tmp_path / "square.h5",
                   tmp_path / "condensed.h5"):
        got = load_external_group(source, N, IDS)
        np.testing.assert_array_equal(got, rdms, err_msg=str(source))
    # the mean RDM: the arithmetic mean of the dissimilarities, as a loop over entries computes it
    mean = group_mean(rdms)
    brute = np.array([[sum(r[i, j] for r in rdms) / S for j in range(N)] for i in range(N)])
    np.testing.assert_allclose(mean, brute, rtol=1e-15, atol=0)
    assert is_group_file(tmp_path / "stack.npy") and is_group_file(tmp_path / "square.h5")
    assert not is_group_file(files[1]) and not is_group_file(tmp_path / "missing.npy")
    assert is_group({"paths": [str(f) for f in files]}) and not is_group({"path": str(files[1])})


def test_group_errors(tmp_path):
    rdms = subjects()
    np.save(tmp_path / "one.npy", rdms[:1])
    np.save(tmp_path / "stack.npy", rdms)
    np.save(tmp_path / "single.npy", rdms[0])
    with pytest.raises(InputFileError, match=r"one\.npy: a group of 1 subject RDM: a group needs at least 2"):
        load_external_group(tmp_path / "one.npy", N)
    with pytest.raises(InputFileError, match=r"single\.npy: a group of 1 subject RDM"):
        load_external_group([tmp_path / "single.npy"], N)
    with pytest.raises(InputFileError, match=r"stack\.npy: holds 3 subjects' RDMs .*read it as a group"):
        load_external_rdm(tmp_path / "stack.npy", N)
    bad = rdms.copy()
    bad[1, 0, 3] += 1.0  # subject 1 not symmetric
    np.save(tmp_path / "asym.npy", bad)
    with pytest.raises(InputFileError, match=r"asym\.npy: RDM is not symmetric: d\[0,3\]"):
        load_external_group(tmp_path / "asym.npy", N)
    with pytest.raises(InputFileError, match=r"stack\.npy: RDM has 8 stimuli but the workflow has 7"):
        load_external_group(tmp_path / "stack.npy", 7)
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f["rdms"] = np.zeros(5)
    with pytest.raises(InputFileError, match=r"flat\.h5: dataset 'rdms' must be subjects x N x N"):
        load_external_group(tmp_path / "flat.h5", N)


def test_check_paths_checks_every_file_of_a_group(tmp_path):
    np.save(tmp_path / "a.npy", subjects()[0])
    config = {"stimuli": {"source": "digits"},
              "external_rdms": {"IT": {"paths": [str(tmp_path / "a.npy"), str(tmp_path / "b.npy")]}}}
    with pytest.raises(ConfigError, match=r"external_rdms\.IT\.paths\[1\]: .*b\.npy does not exist"):
        check_paths(config, {"models": {}})
    config["external_rdms"]["IT"]["paths"][1] = str(tmp_path / "a.npy")
    check_paths(config, {"models": {}})


def _rdm_file(path, upper, label, extra=None):
    attrs = {"model": label.split("/")[0], "layer": label.split("/")[1], "stimulus_digest": "d",
             "node_index": -1 if label.startswith("external") else 1}
    rdmfile.write(path, upper, attrs, extra)
    return path


METHODS = ("spearman", "pearson", "cosine", "rho_a", "kendall_tau_a", "cosine_cov", "corr_cov")


@pytest.mark.parametrize("seed", range(2))
@pytest.mark.parametrize("method", METHODS)
def test_group_ceilings_equal_rsatoolbox(tmp_path, method, seed):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    from rsaflow.methods import METHODS

    rng = np.random.default_rng(seed)
    subs = subjects(seed, s=4)
    uppers = np.stack([squareform(r) for r in subs])
    paths = [_rdm_file(tmp_path / "g.h5", uppers.mean(axis=0), "external/IT", {"subjects": uppers}),
             _rdm_file(tmp_path / "a.h5", rng.random(uppers.shape[1]), "net/a"),
             _rdm_file(tmp_path / "b.h5", rng.random(uppers.shape[1]), "net/b"),
             _rdm_file(tmp_path / "c.h5", uppers[0] + rng.random(uppers.shape[1]), "external/single")]
    records = sorted((read_meta(p) for p in paths), key=lambda r: r["label"])
    out = group_ceilings(records, method)
    g = [r["label"] for r in records].index("external/IT")
    name = METHODS[method].rsatoolbox
    data = rsatoolbox.rdm.RDMs(uppers)
    lower, upper = rsatoolbox.inference.boot_noise_ceiling(data, method=name, rdm_descriptor="index")
    np.testing.assert_allclose([out["noise_ceiling_lower"][g], out["noise_ceiling_upper"][g]], [lower, upper],
                               rtol=0, atol=1e-8)
    assert out["n_subjects"].tolist() == [4 if i == g else 0 for i in range(4)]
    for i, r in enumerate(records):
        model = rsatoolbox.model.ModelFixed(r["label"], read_rdm(r["path"])["condensed"])
        res = rsatoolbox.inference.eval_fixed(model, data, method=name)
        evals = res.evaluations[0, 0]
        np.testing.assert_allclose(out["subject_similarity"][i, g], evals.mean(), rtol=0, atol=1e-8)
        np.testing.assert_allclose(out["subject_similarity_sem"][i, g] ** 2, res.variances[0, 0] if
                                   np.ndim(res.variances) else res.variances, rtol=1e-8, atol=1e-14)
    others = [i for i in range(4) if i != g]
    assert np.isnan(out["noise_ceiling_lower"][others]).all() and np.isnan(out["subject_similarity"][:, others]).all()


@pytest.mark.parametrize("method", ["spearman", "corr_cov"])
def test_group_ceilings_bootstrap_intervals_equal_brute_force(tmp_path, method):
    """subject_similarity_ci_lower/_upper: the brute-force loop of tests/test_subject_bootstrap.py
    (same draws, explicit resampled triangles, direct similarities) on the records' RDMs, in the
    group's column only; without n_boot they are absent."""
    from test_subject_bootstrap import brute_force

    rng = np.random.default_rng(4)
    subs = subjects(4, s=3)
    uppers = np.stack([squareform(r) for r in subs])
    paths = [_rdm_file(tmp_path / "g.h5", uppers.mean(axis=0), "external/IT", {"subjects": uppers}),
             _rdm_file(tmp_path / "a.h5", uppers[0] + rng.random(uppers.shape[1]), "net/a"),
             _rdm_file(tmp_path / "b.h5", rng.random(uppers.shape[1]), "net/b")]
    records = sorted((read_meta(p) for p in paths), key=lambda r: r["label"])
    assert "subject_similarity_ci_lower" not in group_ceilings(records, method)
    out = group_ceilings(records, method, n_boot=20, seed=3, ci=0.9)
    g = [r["label"] for r in records].index("external/IT")
    rdms = [squareform(read_rdm(r["path"])["condensed"]) for r in records]
    lower, upper, _ = brute_force(rdms, [list(subs)], method, 20, 3, 0.9)
    np.testing.assert_allclose(out["subject_similarity_ci_lower"][:, g], lower[:, 0], rtol=0, atol=1e-10)
    np.testing.assert_allclose(out["subject_similarity_ci_upper"][:, g], upper[:, 0], rtol=0, atol=1e-10)
    others = [i for i in range(3) if i != g]
    assert np.isnan(out["subject_similarity_ci_lower"][:, others]).all()
    assert np.isnan(out["subject_similarity_ci_upper"][:, others]).all()


def test_no_group_or_no_ceiling_method_writes_nothing(tmp_path):
    up = squareform(subjects()[0])
    records = [read_meta(_rdm_file(tmp_path / "a.h5", up, "external/one"))]
    assert group_ceilings(records, "spearman") == {}
    uppers = np.stack([squareform(r) for r in subjects()])
    records.append(read_meta(_rdm_file(tmp_path / "g.h5", uppers.mean(0), "external/IT", {"subjects": uppers})))
    assert group_ceilings(records, "cka") == {}


def test_brain_figure(tmp_path):
    from rsaflow.figure_data import brain_bars, brain_groups
    from rsaflow.plots.brain import brain_figure, brain_plot

    labels = ["external/IT", "external/V4", "external/x", "net/a", "net/b", "other/c"]
    k = len(labels)
    rng = np.random.default_rng(0)
    nan = np.full(k, np.nan)
    result = {"labels": labels, "models": [lab.split("/")[0] for lab in labels],
              "depth": np.array([-1, -1, -1, 2, 1, 5]), "method": "spearman", "matrix": np.zeros((k, k)),
              "n_subjects": np.array([3, 4, 0, 0, 0, 0]),
              "noise_ceiling_lower": np.r_[0.4, 0.5, nan[2:]], "noise_ceiling_upper": np.r_[0.6, 0.7, nan[2:]],
              "subject_similarity": rng.random((k, k)), "subject_similarity_sem": rng.random((k, k)) / 10}
    assert brain_groups(result) == [0, 1]
    bars = brain_bars(result, 1)
    assert [labels[i] for i in bars["rows"]] == ["net/b", "net/a", "other/c"]  # model, then depth
    assert bars["x"].tolist() == [0.0, 1.0, 3.0]  # a gap between models
    np.testing.assert_array_equal(bars["value"], result["subject_similarity"][[4, 3, 5], 1])
    assert (bars["lower"], bars["upper"], bars["n_subjects"]) == (0.5, 0.7, 4)
    fig = brain_figure(result)
    assert len([ax for ax in fig.axes if ax.get_title()]) == 2
    brain_plot(result, tmp_path / "brain.png")
    assert (tmp_path / "brain.png").stat().st_size > 0 and (tmp_path / "brain.pdf").stat().st_size > 0
    with pytest.raises(ValueError, match="no external group"):
        brain_figure({**result, "n_subjects": np.zeros(k, dtype=int)})
    # error bars: value -+ s.e.m. without the bootstrap, the bootstrap interval itself with it
    sem = result["subject_similarity_sem"][[4, 3, 5], 1]
    assert bars["error_kind"] == "sem"
    np.testing.assert_array_equal(bars["low"], bars["value"] - sem)
    np.testing.assert_array_equal(bars["high"], bars["value"] + sem)
    ci_lower, ci_upper = result["subject_similarity"] - 0.2, result["subject_similarity"] + 0.05
    boot = {**result, "subject_similarity_ci_lower": ci_lower, "subject_similarity_ci_upper": ci_upper}
    bars = brain_bars(boot, 1)
    assert bars["error_kind"] == "bootstrap"
    np.testing.assert_array_equal(bars["low"], ci_lower[[4, 3, 5], 1])
    np.testing.assert_array_equal(bars["high"], ci_upper[[4, 3, 5], 1])
    fig = brain_figure(boot)
    drawn = [c for c in fig.axes[0].collections if c.get_label() == "bootstrap interval over stimuli"]
    assert len(drawn) == 1
    segments = np.array(drawn[0].get_segments())  # one vertical segment per bar, from low to high
    np.testing.assert_allclose(segments[:, :, 1], np.c_[ci_lower[[4, 3, 5], 0], ci_upper[[4, 3, 5], 0]])
    assert "± s.e.m. over subjects" in [c.get_label() for c in brain_figure(result).axes[0].collections]

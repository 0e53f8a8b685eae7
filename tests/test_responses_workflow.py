"""The workflow from measured responses: NIfTI betas + ROI mask + residuals (made with nibabel) and an .npz
with stimulus ids, to subject RDMs equal to rsatoolbox's calc_rdm, a brain/<region> group in the second
order with its noise ceiling, and the reruns adding a subject causes."""

import re
import zipfile

import numpy as np
import pytest

from conftest import Workflow
from rsaflow import evaluation
from rsaflow.plots.evaluation import read_evaluation
from rsaflow.results import read_rdm, read_second_order, stimulus_ids

nibabel = pytest.importorskip("nibabel")
rsatoolbox = pytest.importorskip("rsatoolbox")
pytestmark = pytest.mark.slow

R, SHAPE, T = 3, (4, 4, 3), 30


def responses(rng, n, c, signal):
    return signal[None] + 0.7 * rng.normal(size=(R, n, c))


def save_nifti(path, flat, mask):
    """(V, C) values into 4-D volumes at the mask's voxels (other voxels 0)."""
    vol = np.zeros(SHAPE + (flat.shape[0],))
    vol[mask] = flat.T
    nibabel.save(nibabel.Nifti1Image(vol, np.eye(4)), str(path))


def calc_rdm(x, noise):
    ds = rsatoolbox.data.Dataset(x.reshape(-1, x.shape[2]), obs_descriptors={
        "stimulus": np.tile(np.arange(x.shape[1]), R), "run": np.repeat(np.arange(R), x.shape[1])})
    return rsatoolbox.rdm.calc_rdm(ds, method="crossnobis", descriptor="stimulus", noise=noise,
                                   cv_descriptor="run").get_vectors()[0]


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("responses")
    wf = Workflow(root)
    config = {
        "stimuli": {"source": "digits", "per_class": 2, "seed": 0},
        "models": {"resnet18": {"weights": "none", "layers": {"avgpool": "avgpool", "layer1": {"node": "layer1",
                                                                                                "reduce": "mean"}}}},
        "extraction": {"batch_size": 20, "device": "cpu", "threads": 1, "gpu": False},
        "analyses": {"corr": {"method": "pearson"}},
    }
    wf.write_config(config)
    wf.run("results/stimuli/stimuli.h5")
    ids = stimulus_ids(wf.path("results/stimuli/stimuli.h5"))
    n, rng = len(ids), np.random.default_rng(0)
    mask = np.zeros(SHAPE, dtype=bool)
    mask[1:3, :, 1:] = True  # 16 voxels
    c = int(mask.sum())
    signal = rng.normal(size=(n, c))
    x1 = responses(rng, n, c, signal)
    res1 = rng.normal(size=(T, c))
    save_nifti(root / "s01_betas.nii.gz", x1.reshape(R * n, c), mask)  # run-major volumes
    save_nifti(root / "s01_res.nii.gz", res1, mask)
    nibabel.save(nibabel.Nifti1Image(mask.astype(np.uint8), np.eye(4)), str(root / "v1_mask.nii.gz"))
    x2 = responses(rng, n, 10, signal[:, :10])
    res2 = rng.normal(size=(T, 10))
    perm = rng.permutation(n)  # the file lists the stimuli in another order, with their ids
    np.savez(root / "s02.npz", responses=x2[:, perm], stimulus_ids=np.array(ids)[perm])
    np.save(root / "s02_res.npy", res2)
    config["brain"] = {"V1": {"metric": "crossnobis", "noise": "shrinkage_diag",
                              "evaluate": {"bootstrap": "both", "samples": 20, "method": "spearman",
                                           "commit": "stimuli"}, "subjects": {
        "s01": {"responses": str(root / "s01_betas.nii.gz"), "mask": str(root / "v1_mask.nii.gz"),
                "residuals": str(root / "s01_res.nii.gz"), "order": "stimuli"},
        "s02": {"responses": str(root / "s02.npz"), "residuals": str(root / "s02_res.npy")}}}}
    wf.write_config(config)
    wf.log = wf.run().stderr  # the jobs as Snakemake printed them (resources)
    wf.run("--report", str(root / "report.zip"))
    return wf, config, {"s01": (x1, res1), "s02": (x2, res2)}, root


def test_subject_rdms_equal_calc_rdm(done):
    wf, _, data, _ = done
    for subject, (x, res) in data.items():
        prec = rsatoolbox.data.noise.prec_from_residuals(res.copy(), method="shrinkage_diag")
        got = read_rdm(wf.path(f"results/brain/V1/{subject}.h5"))
        assert got["label"] == f"brain/V1/{subject}"
        # NIfTI float64 round trip is exact; sums in another order: 1e-10 is ~1e5 x the rounding
        np.testing.assert_allclose(got["condensed"], calc_rdm(x, prec), rtol=0, atol=1e-10)


def test_region_joins_the_second_order_as_a_group(done):
    wf, *_ = done
    so = read_second_order(wf.path("results/second_order/corr/matrix.h5"))
    assert "brain/V1" in so["labels"]
    g = so["labels"].index("brain/V1")
    group = read_rdm(wf.path("results/brain/V1.h5"))
    subjects = [read_rdm(wf.path(f"results/brain/V1/{s}.h5"))["condensed"] for s in ("s01", "s02")]
    np.testing.assert_allclose(group["condensed"], np.mean(subjects, axis=0), rtol=0, atol=1e-15)
    assert so["n_subjects"][g] == 2 and np.isfinite(so["noise_ceiling_lower"][g])
    assert wf.path("results/figures/corr/brain.png").stat().st_size > 0


def test_evaluation_per_layer_and_the_figure_in_the_report(done):
    wf, _, _, root = done
    d = read_evaluation(wf.path("results/evaluation/V1/evaluation.h5"))
    assert d["labels"] == ["resnet18/layer1", "resnet18/avgpool"]  # depth order
    layers = np.stack([read_rdm(wf.path(f"results/rdms/euclidean/{lab}.h5"))["condensed"] for lab in d["labels"]])
    subjects = np.stack([read_rdm(wf.path(f"results/brain/V1/{s}.h5"))["condensed"] for s in ("s01", "s02")])
    evals, ceiling = evaluation.evaluate_fixed(layers, subjects, "spearman")  # tested against eval_fixed
    np.testing.assert_allclose(d["evaluations"], evals, rtol=0, atol=1e-13)
    np.testing.assert_allclose(d["noise_ceiling"], ceiling, rtol=0, atol=1e-13)
    assert d["samples"].shape == (20, 2)
    lines = wf.path("results/evaluation/V1/layers.tsv").read_text().splitlines()
    assert lines[0].split("\t")[:4] == ["label", "model", "depth", "estimate"] and len(lines) == 3
    commit = wf.path("results/evaluation/V1/commitment.tsv").read_text().splitlines()
    assert len(commit) == 2 and commit[1].split("\t")[:3] == ["resnet18", commit[1].split("\t")[1], "stimuli"]
    assert commit[1].split("\t")[1] in d["labels"]
    names = zipfile.ZipFile(root / "report.zip").namelist()
    assert any(n.endswith("/V1.png") for n in names), names


def test_adding_a_subject_reruns_its_rdm_the_group_and_the_analysis_only(done):
    wf, config, _, root = done
    np.save(root / "s03.npy", np.random.default_rng(3).normal(size=(R, 20, 6)))
    for r in range(R):  # one residuals file per run: a list of inputs
        np.save(root / f"s03_res{r}.npy", np.random.default_rng(4 + r).normal(size=(T, 6)))
    more = {**config, "brain": {"V1": {**config["brain"]["V1"], "subjects": {
        **config["brain"]["V1"]["subjects"],
        "s03": {"responses": str(root / "s03.npy"), "order": "stimuli",
                "residuals_per_run": [str(root / f"s03_res{r}.npy") for r in range(R)]}}}}}
    jobs = wf.planned_with(more)
    planned = {rule for rule, _ in jobs}
    rdms = {out for rule, out in jobs if rule == "brain_rdm"}
    assert rdms == {"results/brain/V1/s03.h5"}
    assert planned <= {"brain_rdm", "brain_group", "second_order", "brain_figure", "second_order_figure",
                       "mds_figure", "effective_config", "brain_eval", "evaluation_figure"}, planned
    assert {"brain_eval", "brain_group"} <= planned
    assert {"rdm", "activations", "kernel"}.isdisjoint(planned)


def test_brain_jobs_declare_the_memory_of_their_files(done):
    """mem_mb of brain_rdm from the subject's headers (rsaflow.responses.io.rdm_job_bytes, checked against
    tracemalloc in test_responses_io) and of brain_eval from K, S and N (rsaflow.evaluation.job_bytes)."""
    from rsaflow.responses.io import rdm_job_bytes

    wf, config, _, _ = done
    region = {**config["brain"]["V1"], "block_mb": 256}
    declared = {}
    for block in re.split(r"\n(?=\s*(?:local)?rule \w+:)", wf.log):
        rule = re.match(r"\s*(?:local)?rule (\w+):", block)
        out = re.search(r"output: (\S+)", block)
        mem = re.search(r"resources: .*?\bmem_mb=(\d+)", block)
        if rule and out and mem:
            declared[(rule.group(1), out.group(1).rstrip(","))] = int(mem.group(1))
    for s in ("s01", "s02"):
        files = config["brain"]["V1"]["subjects"][s]
        assert declared[("brain_rdm", f"results/brain/V1/{s}.h5")] == int(300 + rdm_job_bytes(files, region, 20) / 1e6)
    got = next(v for (rule, _), v in declared.items() if rule == "brain_eval")
    assert got == int(300 + evaluation.job_bytes(2, 2, 20, 2, 20) / 1e6)


def test_a_whole_rdm_method_with_a_stimulus_bootstrap_is_one_config_error(done):
    wf, config, _, _ = done
    bad = {**config, "brain": {"V1": {**config["brain"]["V1"], "evaluate": {"method": "cosine_cov",
                                                                        "bootstrap": "both"}}}}
    proc = wf.dry_run_with(bad)
    assert proc.returncode != 0
    assert "config error at brain.V1.evaluate.bootstrap: 'both' resamples stimuli, which method cosine_cov" in (
        proc.stdout + proc.stderr)

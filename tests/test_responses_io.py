"""Bad response inputs: one line naming the file, nothing written (rsaflow.responses.io, rsaflow.jobs.brain_rdm)."""

import numpy as np
import pytest

from rsaflow.errors import InputFileError
from rsaflow.jobs.brain_rdm import write_brain_rdm
from rsaflow.jobs.stimuli import write_stimuli
from rsaflow.results import read_rdm, stimulus_ids
from rsaflow.responses.noise import precision
from rsaflow.responses.rdms import response_rdm

nibabel = pytest.importorskip("nibabel")

R, C, T = 3, 8, 20
REGION = {"metric": "crossnobis", "noise": "diag", "dof": None, "prior_lambda": 1.0, "prior_weight": 0.1,
          "block_mb": 1}


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    path = tmp_path_factory.mktemp("stim") / "stimuli.h5"
    write_stimuli(path, {"source": "digits", "per_class": 1, "seed": 0}, [])
    return path


def run(stimuli, tmp_path, files, region=REGION):
    out = tmp_path / "out" / "s01.h5"
    out.parent.mkdir(exist_ok=True)
    write_brain_rdm({k: [str(f) for f in v] if isinstance(v, list) else str(v) if k != "order" else v
                     for k, v in files.items()}, stimuli, out, "V1", "s01", region, "code")
    return out


def arrays(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(R, n, C)), rng.normal(size=(T, C))


def test_ids_reorder_and_equal_the_direct_rdm(stimuli, tmp_path):
    ids = stimulus_ids(stimuli)
    x, res = arrays(len(ids))
    perm = np.random.default_rng(1).permutation(len(ids))
    np.savez(tmp_path / "r.npz", responses=x[:, perm], stimulus_ids=np.array(ids)[perm])
    np.save(tmp_path / "res.npy", res)
    out = run(stimuli, tmp_path, {"responses": tmp_path / "r.npz", "residuals": tmp_path / "res.npy"})
    direct = response_rdm(x, "crossnobis", precision("diag", res))
    # the same Gram products, only the stimuli permuted: equal to rounding
    np.testing.assert_allclose(read_rdm(out)["condensed"], direct, rtol=0, atol=1e-13)


def save_nifti(path, data):
    nibabel.save(nibabel.Nifti1Image(data, np.eye(4)), str(path))


def bad_cases(tmp_path, n, ids):
    x, res = arrays(n)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "res.npy", res)
    np.save(tmp_path / "res_wide.npy", np.hstack([res, res[:, :2]]))
    missing = x.copy()
    missing[1, 3] = np.nan
    np.save(tmp_path / "missing.npy", missing)
    voxel = x.copy()
    voxel[0, 2, 5] = np.nan
    np.save(tmp_path / "voxel.npy", voxel)
    np.savez(tmp_path / "foreign.npz", responses=x, stimulus_ids=np.array(ids[:-1] + ["nope"]))
    save_nifti(tmp_path / "betas.nii.gz", np.random.default_rng(2).normal(size=(2, 2, 2, R * n)))
    save_nifti(tmp_path / "mask.nii.gz", np.ones((2, 2, 3), dtype=np.uint8))
    ok = {"residuals": tmp_path / "res.npy", "order": "stimuli"}
    return [
        ({"responses": tmp_path / "betas.nii.gz", "mask": tmp_path / "mask.nii.gz", "order": "stimuli"},
         "mask.nii.gz: mask of shape (2, 2, 3) but the image's volumes are (2, 2, 2)"),
        ({"responses": tmp_path / "missing.npy", **ok}, "missing.npy: run 1 has no response for stimulus"),
        ({"responses": tmp_path / "voxel.npy", **ok}, "voxel.npy: 1 channels (voxels) are NaN or Inf"),
        ({"responses": tmp_path / "x.npy", "residuals": tmp_path / "res_wide.npy", "order": "stimuli"},
         "res_wide.npy: residuals have 10 channels but the responses have 8"),
        ({"responses": tmp_path / "foreign.npz", "residuals": tmp_path / "res.npy"},
         "foreign.npz: 1 stimulus ids are not in the stimulus set (first: ['nope'])"),
        ({"responses": tmp_path / "x.npy", "residuals": tmp_path / "res.npy"},
         "set 'order: stimuli' at brain.V1.subjects.s01"),
        ({"responses": tmp_path / "x.npy", "order": "stimuli"}, "noise 'diag' needs residuals"),
    ]


def test_bad_inputs_one_line_nothing_written(stimuli, tmp_path):
    ids = stimulus_ids(stimuli)
    for files, expected in bad_cases(tmp_path, len(ids), ids):
        with pytest.raises(InputFileError) as err:
            run(stimuli, tmp_path, files)
        assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert not (tmp_path / "out" / "s01.h5").exists()


def test_unbalanced_runs_through_the_job(stimuli, tmp_path):
    """unbalanced: true: NaN rows are missing responses, the RDM is the unbalanced crossnobis (equal to
    rsatoolbox in test_responses), in the workflow's order; a stimulus in one run only, or a metric without
    an unbalanced form, is one line."""
    ids = stimulus_ids(stimuli)
    n = len(ids)
    x, res = arrays(n)
    present = np.ones((R, n), dtype=bool)
    present[0, 2] = present[1, 4] = False
    missing = np.where(present[:, :, None], x, np.nan)
    perm = np.random.default_rng(5).permutation(n)
    np.savez(tmp_path / "m.npz", responses=missing[:, perm], stimulus_ids=np.array(ids)[perm])
    np.save(tmp_path / "res.npy", res)
    files = {"responses": tmp_path / "m.npz", "residuals": tmp_path / "res.npy"}
    region = {**REGION, "unbalanced": True}
    out = run(stimuli, tmp_path, files, region)
    direct = response_rdm(missing, "crossnobis", precision("diag", res), present=present)
    np.testing.assert_allclose(read_rdm(out)["condensed"], direct, rtol=0, atol=1e-13)
    out.unlink()
    once = missing.copy()
    once[1:, 3] = np.nan  # stimulus 3 only in run 0
    np.save(tmp_path / "once.npy", once)
    for files_, spec, expected in [
        ({"responses": tmp_path / "once.npy", "residuals": tmp_path / "res.npy", "order": "stimuli"}, region,
         f"stimulus {ids[3]!r} has a response in 1 run(s); an unbalanced design needs each stimulus in at least 2"),
        (files, {**region, "metric": "correlation", "noise": "none"},
         "2 run/stimulus responses are missing and correlation has no unbalanced form here"),
        (files, REGION, "or set unbalanced: true at brain.V1"),
    ]:
        with pytest.raises(InputFileError) as err:
            run(stimuli, tmp_path, files_, spec)
        assert expected in str(err.value) and "\n" not in str(err.value), str(err.value)
        assert not (tmp_path / "out" / "s01.h5").exists()


@pytest.mark.parametrize("metric", ["poisson", "poisson_cv"])
def test_count_metrics_refuse_negative_responses(stimuli, tmp_path, metric):
    x, _ = arrays(len(stimulus_ids(stimuli)))
    np.save(tmp_path / "x.npy", x)  # normal values, some negative
    with pytest.raises(InputFileError, match=f"{metric} needs non-negative counts"):
        run(stimuli, tmp_path, {"responses": tmp_path / "x.npy", "order": "stimuli"},
            {**REGION, "metric": metric, "noise": "none"})
    assert not (tmp_path / "out" / "s01.h5").exists()


def test_one_precision_per_run_through_the_job(stimuli, tmp_path):
    """residuals_per_run: one file per run gives crossnobis with a precision per run (equal to rsatoolbox's
    list of precisions in test_responses), in the workflow's order; another count of files is one line."""
    from rsaflow.responses.io import rdm_job_bytes

    ids = stimulus_ids(stimuli)
    x, _ = arrays(len(ids))
    rng = np.random.default_rng(9)
    for r in range(R):
        np.save(tmp_path / f"res{r}.npy", rng.normal(size=(T, C)) * (1 + r))
    per_run = [tmp_path / f"res{r}.npy" for r in range(R)]
    np.save(tmp_path / "x.npy", x)
    files = {"responses": tmp_path / "x.npy", "residuals_per_run": per_run, "order": "stimuli"}
    out = run(stimuli, tmp_path, files)
    direct = response_rdm(x, "crossnobis", [precision("diag", np.load(f)) for f in per_run])
    np.testing.assert_allclose(read_rdm(out)["condensed"], direct, rtol=0, atol=1e-13)
    assert rdm_job_bytes({**files, "residuals_per_run": [str(f) for f in per_run]}, REGION, len(ids)) > 0
    out.unlink()
    with pytest.raises(InputFileError) as err:
        run(stimuli, tmp_path, {**files, "residuals_per_run": per_run[:2]})
    assert "residuals_per_run: 2 files for 3 runs; one per run" in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "out" / "s01.h5").exists()


def test_reuse_key_holds_every_setting(stimuli, tmp_path, caplog):
    """The same files and settings are reused from the store; a changed dof (or prior) computes anew."""
    import logging

    from rsaflow import store

    x, res = arrays(len(stimulus_ids(stimuli)))
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "res.npy", res)
    files = {"responses": tmp_path / "x.npy", "residuals": tmp_path / "res.npy", "order": "stimuli"}
    store_dir = tmp_path / "store"
    old = store.STORE_DIR
    store.STORE_DIR = store_dir
    try:
        with caplog.at_level(logging.INFO, logger="rsaflow.store"):
            run(stimuli, tmp_path, files)
            (tmp_path / "out" / "s01.h5").unlink()
            run(stimuli, tmp_path, files)
            first = read_rdm(tmp_path / "out" / "s01.h5")["condensed"]
            (tmp_path / "out" / "s01.h5").unlink()
            run(stimuli, tmp_path, files, {**REGION, "dof": 10})
        kinds = [r.getMessage().split()[0] for r in caplog.records if "brain_rdm" in r.getMessage()]
        assert kinds == ["computed", "reused", "computed"], kinds
        # dof scales the diag precision by 10 / 19: the RDM changes by that factor
        np.testing.assert_allclose(read_rdm(tmp_path / "out" / "s01.h5")["condensed"], first * 10 / 19, rtol=1e-12)
    finally:
        store.STORE_DIR = old


@pytest.mark.parametrize("fmt, metric, noise, shape, t", [
    ("npy", "crossnobis", "diag", (4, 60, 12000), 50),  # memory-mapped, channel blocks of 1 MB
    ("npz", "euclidean", "none", (3, 60, 12000), 50),  # read whole
    ("npy", "crossnobis", "shrinkage_diag", (3, 40, 900), 60),  # C x C matrices dominate
    ("nii", "mahalanobis", "shrinkage_eye", (3, 40, 700), 60),
    ("npy", "poisson_cv", "none", (6, 200, 500), 50),  # one N x N kernel per run
])
def test_rdm_job_bytes_bound_the_peak(tmp_path, fmt, metric, noise, shape, t):
    """The brain_rdm memory estimate (its rule's mem_mb) is above the job's tracemalloc peak of numpy
    arrays and within 2.5x of it, for each way the responses are held."""
    import tracemalloc

    from rsaflow.jobs.brain_rdm import _subject_rdm
    from rsaflow.responses.io import rdm_job_bytes

    rng = np.random.default_rng(0)
    r, n, c = shape
    x = np.abs(rng.normal(size=shape))
    res = rng.normal(size=(t, c))
    files = {"order": "stimuli"}
    if fmt == "nii":
        save_nifti(tmp_path / "x.nii.gz", x.reshape(r * n, c).T.reshape(c, 1, 1, r * n).astype(np.float32))
        save_nifti(tmp_path / "res.nii.gz", res.T.reshape(c, 1, 1, t).astype(np.float32))
        save_nifti(tmp_path / "mask.nii.gz", np.ones((c, 1, 1), np.uint8))
        files.update(responses=str(tmp_path / "x.nii.gz"), residuals=str(tmp_path / "res.nii.gz"),
                     mask=str(tmp_path / "mask.nii.gz"))
    else:
        np.save(tmp_path / "x.npy", x) if fmt == "npy" else np.savez(tmp_path / "x.npz", responses=x)
        np.save(tmp_path / "res.npy", res)
        files.update(responses=str(tmp_path / f"x.{fmt}"), residuals=str(tmp_path / "res.npy"))
    del x, res
    region = {**REGION, "metric": metric, "noise": noise}
    estimate = rdm_job_bytes(files, region, n)
    tracemalloc.start()
    _subject_rdm(files, region, [str(i) for i in range(n)], "brain.V1.subjects.s01")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak <= estimate <= 2.5 * peak, (estimate / 1e6, peak / 1e6)

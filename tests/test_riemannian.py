"""compare.method neg_riem_dist (rsaflow.riemannian) against rsatoolbox's compare(method='neg_riem_dist'):
the function, the in-memory second order, the second-order job on RDM files (reuse of stored pairs
included), its errors, and one workflow run with an external RDM."""

import logging
import re

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform

from rsaflow import riemannian
from rsaflow.compare import DegenerateRDMError, second_order

rsatoolbox = pytest.importorskip("rsatoolbox")
N = 9


def _uppers(k=4, n=N, width=12, seed=0):
    """Euclidean RDMs of distinct random patterns: their second moments are positive definite."""
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(n, width))
    return [pdist(base + rng.normal(0, 0.5 * (i + 1), size=(n, width))) for i in range(k)]


def _reference(uppers) -> np.ndarray:
    """rsatoolbox's K x K neg_riem_dist matrix (entry (a, b): RDM a regularised, RDM b whitened)."""
    rdms = rsatoolbox.rdm.RDMs(np.stack(uppers))
    return rsatoolbox.rdm.compare(rdms, rdms, method="neg_riem_dist")


def test_distance_is_rsatoolbox_and_the_similarity_its_mean_over_both_orders():
    uppers = _uppers()
    ref = _reference(uppers)
    for a in range(len(uppers)):
        for b in range(len(uppers)):
            assert abs(-riemannian.riemannian_distance(uppers[a], uppers[b]) - ref[a, b]) < 1e-9
    assert abs(riemannian.neg_riem_dist(uppers[0], uppers[1]) - (ref[0, 1] + ref[1, 0]) / 2) < 1e-9
    assert not np.allclose(ref, ref.T, atol=1e-6)  # rsatoolbox's is not symmetric; the mean is


def test_second_moment_is_rsatoolbox_transform():
    u = _uppers(1)[0]
    g = riemannian.second_moment(u)
    d = squareform(u)
    assert g.shape == (N - 1, N - 1)
    np.testing.assert_allclose(np.diag(g), d[0, 1:], rtol=0, atol=0)
    assert g[2, 5] == (d[0, 3] + d[0, 6] - d[3, 6]) / 2


def test_second_order_is_the_symmetrised_rsatoolbox_matrix():
    uppers = _uppers(5, seed=1)
    ref = _reference(uppers)
    want = -(ref + ref.T) / 2
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(second_order(uppers, "neg_riem_dist"), want, rtol=0, atol=1e-9)


def test_not_positive_definite_is_one_error():
    rng = np.random.default_rng(2)
    flat = pdist(rng.normal(size=(N, 3)), "sqeuclidean")  # squared distances of 3 < N - 1 dimensions
    with pytest.raises(DegenerateRDMError, match="not positive definite"):
        riemannian.neg_riem_dist(_uppers(1)[0], flat)
    with pytest.raises(DegenerateRDMError, match="different sizes"):
        riemannian.neg_riem_dist(_uppers(1)[0], _uppers(1, n=N + 1)[0])


def test_second_order_job_on_rdm_files_reuses_pairs_and_names_a_bad_file(tmp_path, caplog):
    from test_second_order import write_rdms

    from rsaflow.errors import InputFileError
    from rsaflow.jobs.second_order import write_second_order

    caplog.set_level(logging.INFO)
    rng = np.random.default_rng(3)
    acts = [rng.normal(size=(N, 12)) for _ in range(4)]
    paths = write_rdms(tmp_path, acts)
    spec, root = {"method": "neg_riem_dist"}, tmp_path / "store"

    def run(ps, name):
        return write_second_order(ps, tmp_path / f"{name}.h5", tmp_path / f"{name}.tsv", spec, "code",
                                  store_root=root)[0]

    def computed():
        return [int(m[1]) for r in caplog.records if (m := re.search(r"computed (\d+) of", r.getMessage()))][-1]

    three = run(paths[:3], "three")
    assert computed() == 3
    four = run(paths, "four")
    assert computed() == 3  # only the added RDM's row
    ref = _reference([pdist(x) for x in acts])
    want = -(ref + ref.T) / 2  # the dissimilarity: the mean Riemannian distance
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(four, want, rtol=0, atol=1e-9)
    np.testing.assert_array_equal(three, four[:3, :3])
    bad = write_rdms(tmp_path, [acts[0][[0, 0] + list(range(2, N))]], names=["flat"])  # two equal patterns
    with pytest.raises(InputFileError, match=r"flat\.h5.*not positive definite"):
        write_second_order(paths[:1] + bad, tmp_path / "x.h5", tmp_path / "x.tsv", spec, "code", store_root=root)


def test_config_refuses_resampling_and_labels_the_distance():
    from rsaflow import config
    from rsaflow.errors import ConfigError
    from rsaflow.methods import dissimilarity_label

    base = {"rdm": {"metric": "euclidean"}, "compare": {"method": "spearman"}}
    found = config.analyses({**base, "analyses": {"riem": {"method": "neg_riem_dist"}}})
    assert found["riem"]["artifact"] == "rdm" and found["riem"]["joins_external"]
    with pytest.raises(ConfigError, match=r"analyses\.riem\.bootstrap.*neg_riem_dist has no resampling"):
        config.analyses({**base, "analyses": {"riem": {"method": "neg_riem_dist", "bootstrap": 5}}})
    assert dissimilarity_label("neg_riem_dist") == "Riemannian distance"


@pytest.mark.slow
def test_workflow_with_an_external_rdm(tmp_path):
    """The whole workflow with compare.method neg_riem_dist: a python model's two layers and an
    external RDM, the matrix the symmetrised rsatoolbox one of the RDM files it wrote."""
    from conftest import Workflow
    from test_sources import NET

    wf = Workflow(tmp_path)
    (wf.work / "nets").mkdir()
    (wf.work / "nets" / "net.py").write_text(NET)
    brain = squareform(pdist(np.random.default_rng(4).normal(size=(20, 6))))
    np.save(wf.work / "brain.npy", brain)
    wf.write_config({
        "stimuli": {"source": "digits", "per_class": 2, "seed": 0},
        "models": {"mynet": {"source": "python", "arch": "nets/net.py:build",
                             "preprocess": {"size": [16, 16], "mean": [0.5] * 3, "std": [0.25] * 3},
                             "layers": {"conv": {"node": "relu", "reduce": "mean"}, "fc": "fc"}}},
        "extraction": {"batch_size": 8, "device": "cpu", "threads": 1, "gpu": False},
        "compare": {"method": "neg_riem_dist"},
        "external_rdms": {"brain": {"path": "brain.npy", "order": "stimuli"}},
    })
    wf.run("--until", "second_order")
    with h5py.File(wf.path("results/second_order/main/matrix.h5")) as f:
        matrix, labels = f["matrix"][()], [x.decode() for x in f["labels"][()]]
    assert labels == ["external/brain", "mynet/conv", "mynet/fc"]
    uppers = [squareform(brain, checks=False)]
    for layer in ("conv", "fc"):
        with h5py.File(wf.path(f"results/rdms/euclidean/mynet/{layer}.h5")) as f:
            uppers.append(f["condensed"][()])
    ref = _reference(uppers)
    want = -(ref + ref.T) / 2
    np.fill_diagonal(want, 0.0)
    np.testing.assert_allclose(matrix, want, rtol=0, atol=1e-9)
    assert np.all(matrix[~np.eye(3, dtype=bool)] > 0.01)

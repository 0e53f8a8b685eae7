"""The torch path of the numeric kernels (rsaflow.kernels, rsaflow.torch_kernels) against the NumPy
path and independent references, on the CPU: the RDM of every metric (distances within the 1e-13 of
the largest that rsaflow.rdm documents, RDM_RTOL; exact zeros and symmetry as on the NumPy path), the average
ranks bit for bit (scipy.stats.rankdata, heavy ties), the second order's products, the RDM job's
product key, and the errors naming the config keys. Skipped when torch is not installed."""

from __future__ import annotations

import importlib.util
import re

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import rankdata

from rsaflow import compare, h5io, kernels, products, rdm, rdmfile
from rsaflow.errors import ConfigError
from rsaflow.methods import METRICS

pytest.importorskip("torch")

#: Distances agree to "about 1e-13 of the largest" (rsaflow.rdm): the NumPy path itself is up to 6e-13
#: from pdist on the workflow test's ResNet activations (Euclidean via the Gram identity), so 1e-12.
RDM_RTOL = 1e-12
SCIPY_METRIC = {"euclidean": "euclidean", "sqeuclidean": "sqeuclidean", "correlation": "correlation",
                "cosine": "cosine"}


@pytest.fixture(scope="module")
def torch_cpu():
    return kernels.select({"backend": "torch", "device": "cpu"}, "rdm")


def torch_ranks(values):
    """rsaflow.torch_kernels.ranks_and_ties on the CPU (what a CUDA job runs, on the CPU's torch.sort)."""
    import torch

    from rsaflow import torch_kernels

    return torch_kernels.ranks_and_ties(values, torch.device("cpu"))


def patterns(n=70, m=45, seed=0):
    """Random float32 patterns with a duplicate row, a near-duplicate and a scaled copy (the near-pair paths)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, m)).astype(np.float32) * 3 + 1
    x[5] = x[9]
    x[11] = x[12] + np.float32(1e-4)
    x[20] = 2 * x[21]
    return x


def reference(x, metric):
    d = squareform(pdist(x.astype(np.float64), SCIPY_METRIC[metric]))
    m = x.shape[1]
    return {"euclidean": d / np.sqrt(m), "sqeuclidean": d / m}.get(metric, d)


@pytest.mark.parametrize("metric", list(METRICS))
def test_rdm_torch_equals_numpy_and_pdist(metric, torch_cpu):
    x = patterns()
    ref_np = rdm.compute_rdm(x, metric, block=16)
    got = rdm.compute_rdm(x, metric, block=16, kernels=torch_cpu)
    scale = np.abs(ref_np).max()
    assert np.abs(got - ref_np).max() <= RDM_RTOL * scale
    assert np.abs(got - reference(x, metric)).max() <= RDM_RTOL * scale
    assert np.array_equal(got, got.T) and np.all(np.diag(got) == 0)
    assert got[5, 9] == 0.0 and got.dtype == np.float64
    # the near pair recomputed from the rows: relative accuracy, not 1e-13 of the largest
    assert got[11, 12] == pytest.approx(reference(x, metric)[11, 12], rel=1e-6)


def test_rdm_from_h5_torch_streams_like_numpy(tmp_path, torch_cpu):
    x = patterns(40, 300, seed=1)
    with h5py.File(tmp_path / "a.h5", "w") as f:
        f["x"] = x
    with h5py.File(tmp_path / "a.h5", "r") as f:
        a, near_a = rdm.rdm_from_h5(f["x"], "correlation", block=64)
        b, near_b = rdm.rdm_from_h5(f["x"], "correlation", block=64, kernels=torch_cpu)
    assert near_a == near_b and np.abs(a - b).max() <= RDM_RTOL * a.max()


def test_rdm_torch_refuses_the_rows_numpy_refuses(torch_cpu):
    x = patterns(30, 8)
    x[3] = 0.0
    with pytest.raises(ValueError, match="all-zero patterns"):
        rdm.compute_rdm(x, "cosine", kernels=torch_cpu)
    x[3] = 1.0
    with pytest.raises(ValueError, match="constant patterns"):
        rdm.compute_rdm(x, "correlation", kernels=torch_cpu)


def tie_vectors():
    rng = np.random.default_rng(3)
    yield rng.integers(0, 5, 1000).astype(np.float64)  # a few huge tie runs
    yield np.round(rng.random(70_000), 2)  # packed-key size on the NumPy path, 101 distinct values
    yield rng.random(30_000)  # no ties
    yield np.full(500, 0.25)  # one run
    v = rng.integers(-3, 4, 5000).astype(np.float64) * 0.5
    v[v == 0] = np.where(rng.random(int((v == 0).sum())) < 0.5, -0.0, 0.0)  # -0.0 ties 0.0
    yield v
    yield np.array([2.0])


@pytest.mark.parametrize("values", list(tie_vectors()), ids=lambda v: f"n{v.size}")
def test_ranks_bit_identical_to_rankdata(values):
    ranks, ties = torch_ranks(values)
    want = rankdata(values, method="average")
    assert ranks.dtype == np.float64 and np.array_equal(ranks.view(np.int64), want.view(np.int64))
    r0, t0 = compare.ranks_and_ties(values)
    assert np.array_equal(ranks, r0) and ties == t0
    _, counts = np.unique(values, return_counts=True)
    assert ties == int((counts * (counts - 1) // 2).sum())


def test_ranks_with_nan_as_the_numpy_path():
    v = np.array([3.0, np.nan, 1.0, 3.0, np.nan, 0.5])
    ranks, ties = torch_ranks(v)
    r0, t0 = compare.ranks_and_ties(v)
    assert np.array_equal(ranks, r0) and ties == t0 == 1


def test_rdm_file_ranks_from_torch_are_the_numpy_files(tmp_path):
    d = np.round(np.random.default_rng(4).random(190), 1)  # N = 20, heavy ties
    rdmfile.write(tmp_path / "a.h5", d, {"label": "a"})
    rdmfile.write(tmp_path / "b.h5", d, {"label": "a"}, ranker=torch_ranks)
    with h5py.File(tmp_path / "a.h5") as fa, h5py.File(tmp_path / "b.h5") as fb:
        assert np.array_equal(fa["ranks"][()], fb["ranks"][()])
        assert {k: fa.attrs[k] for k in fa.attrs if k != "created"} == {k: fb.attrs[k] for k in fb.attrs
                                                                          if k != "created"}


@pytest.mark.parametrize("shape", [(12, 5000), (9, products.BLOCK + 777)], ids=["threaded", "thin"])
def test_gram_torch_equals_numpy(shape):
    rng = np.random.default_rng(5)
    a = rng.standard_normal(shape)
    b = rng.standard_normal((4, shape[1]))
    want_aa, want_ab = products.gram(a), products.gram(a, b)
    k = kernels.select({"backend": "torch", "device": "cpu"}, "second_order")
    with kernels.using(k):
        got_aa, got_ab = products.gram(a), products.gram(a, b)
    assert kernels.active() is kernels.NUMPY
    bound = 1e-14 * (np.abs(a) @ np.abs(a).T).max()
    assert np.abs(got_aa - want_aa).max() <= bound and np.abs(got_ab - want_ab).max() <= bound
    assert np.array_equal(got_aa, got_aa.T)


def test_second_order_block_torch_equals_numpy(tmp_path):
    from rsaflow.second_order.blocks import similarity_block

    rng = np.random.default_rng(6)
    paths = []
    for i in range(10):  # more than THIN_ROWS: the products.gram path
        p = tmp_path / f"r{i}.h5"
        rdmfile.write(p, np.round(rng.random(300), 2), {"label": f"m/l{i}", "model": "m", "layer": f"l{i}",
                                                         "stimulus_digest": "d"})
        paths.append(p)
    for method in ("spearman", "pearson", "cosine", "rho_a"):
        want = similarity_block(paths, paths, method)
        with kernels.using(kernels.select({"backend": "torch", "device": "cpu"}, "second_order")):
            got = similarity_block(paths, paths, method)
        assert np.abs(got - want).max() <= 1e-14 * len(paths) * 300, method
        ref = compare.similarity_matrix(np.stack([compare.per_rdm_vector(h5io_condensed(p), method)
                                                  for p in paths]), method)
        assert np.abs(got - ref).max() <= 1e-12, method


def h5io_condensed(path):
    with h5io.open_artifact(path, "rdm") as f:
        return f["condensed"][()]


def test_rdm_job_key_names_the_backend(tmp_path):
    from rsaflow.jobs.rdm import write_rdm

    x = patterns(30, 10)
    h5io.write_h5(tmp_path / "act.h5", "activations", {"activations": x},
                  {"model": "net", "layer": "pool", "stimulus_digest": "d1"})
    spec = {"metric": "euclidean", "block": 4096}
    torch_spec = {**spec, **kernels.spec_slice({"backend": "torch", "device": "cpu"}, "rdm")}
    assert kernels.spec_slice({"backend": "numpy", "device": "cuda"}, "rdm") == {}
    assert kernels.select(torch_spec, "rdm").ranks_and_ties is None  # on the CPU: NumPy's ranks (same bits)
    assert write_rdm(tmp_path / "act.h5", tmp_path / "np.h5", spec, "c0")
    assert write_rdm(tmp_path / "act.h5", tmp_path / "t.h5", torch_spec, "c0")  # computed: not the NumPy product
    assert not write_rdm(tmp_path / "act.h5", tmp_path / "t2.h5", torch_spec, "c0")  # reused: same key
    with h5py.File(tmp_path / "np.h5") as a, h5py.File(tmp_path / "t.h5") as b:
        assert a.attrs["content_key"] != b.attrs["content_key"]
        assert "kernels" not in a.attrs and '"backend":"torch"' in b.attrs["kernels"].replace(" ", "")
        assert np.abs(a["condensed"][()] - b["condensed"][()]).max() <= RDM_RTOL * a["condensed"][()].max()
        np.testing.assert_array_equal(rankdata(b["condensed"][()]), b["ranks"][()])


def test_errors_name_the_key(monkeypatch):
    import torch

    with pytest.raises(ConfigError, match=r"^config error at rdm.backend: 'jax' is not allowed; allowed: numpy, torch"):
        kernels.select({"backend": "jax"}, "rdm")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match=r"^config error at second_order.device: cuda asked for, but torch"):
            kernels.select({"backend": "torch", "device": "cuda"}, "second_order")
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "torch" else real(name, *a))
    with pytest.raises(ConfigError, match=r"^config error at rdm.backend: torch is asked for but not installed"):
        kernels.select({"backend": "torch", "device": "cpu"}, "rdm")
    assert kernels.select({"metric": "euclidean"}, "rdm") is kernels.NUMPY  # numpy never looks for torch


def test_a_device_too_small(monkeypatch):
    """The Gram refuses before allocating (naming the key); the ranking falls back to NumPy's (same bits)."""
    import torch

    from rsaflow import torch_kernels

    monkeypatch.setattr(torch_kernels, "free_bytes", lambda device: 10**6)
    with pytest.raises(ConfigError, match=r"^config error at rdm.device: the 1000 x 1000 float64 Gram matrix"):
        torch_kernels.GramAccumulator(1000, torch.device("cpu"), "rdm.device", 8192)
    v = np.round(np.random.default_rng(7).random(50_000), 2)
    called = []
    ranks, ties = torch_kernels.ranks_and_ties(v, torch.device("cpu"),
                                               fallback=lambda x: called.append(1) or compare.ranks_and_ties(x))
    assert called and np.array_equal(ranks, rankdata(v)) and ties == compare.tied_pairs(v)


def test_gpu_resource_follows_backend_and_device():
    none, gpu_run, cpu_run = {"declared": None, "visible": 0}, {"declared": 2, "visible": 0}, {"declared": 0,
                                                                                              "visible": 1}
    assert kernels.gpu_resource({"backend": "numpy", "device": "cuda"}, gpu_run, "rdm") == 0
    assert kernels.gpu_resource({"backend": "torch", "device": "cpu"}, gpu_run, "rdm") == 0
    assert kernels.gpu_resource({"backend": "torch", "device": "cuda:1"}, none, "rdm") == 1
    assert kernels.gpu_resource({"backend": "torch", "device": "auto"}, gpu_run, "rdm") == 1
    assert kernels.gpu_resource({"backend": "torch", "device": "auto"}, cpu_run, "rdm") == 0
    assert kernels.gpu_resource({"backend": "torch", "device": "auto"}, {"declared": None, "visible": 1}, "rdm") == 1


def test_schema_checks_the_keys():
    from conftest import REPO
    from rsaflow.schema import load_schema, schema_errors

    schema = load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")
    base = {"stimuli": {"source": "digits"}, "models": {"m": {"weights": "none", "layers": {"a": "fc"}}}}
    ok = {**base, "rdm": {"backend": "torch", "device": "cuda:0"}, "second_order": {"backend": "torch"}}
    assert schema_errors(ok, schema) == []
    bad = schema_errors({**base, "rdm": {"backend": "cupy"}, "second_order": {"device": "gpu"}}, schema)
    assert {"rdm.backend", "second_order.device"} <= {e.key for e in bad}


# ---- the workflow with the torch backend (one run shared by the assertions) --------------------


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    from conftest import Workflow, tiny_config, write_cifar10

    root = tmp_path_factory.mktemp("torch_run")
    wf = Workflow(root)
    cfg = tiny_config(write_cifar10(root / "cifar", per_class=3))
    cfg["models"] = {"resnet18": cfg["models"]["resnet18"]}
    cfg["rdm"] = {"backend": "torch", "device": "cpu"}
    cfg["second_order"] = {"backend": "torch", "device": "cpu"}
    wf.write_config(cfg)
    wf.run()
    return wf, cfg


@pytest.mark.slow
def test_workflow_rdms_and_second_order_on_torch(torch_run):
    import json


    wf, _ = torch_run
    paths = sorted(wf.path("results/rdms").rglob("*.h5"))
    assert len(paths) == 2
    vectors = []
    for path in paths:
        with h5io.open_artifact(path, "rdm") as f:
            kern = json.loads(f.attrs["kernels"])
            condensed, ranks = f["condensed"][()], f["ranks"][()]
            layer = f.attrs["layer"]
        assert kern["backend"] == "torch" and kern["device"] == "cpu"
        np.testing.assert_array_equal(ranks, rankdata(condensed))
        with h5io.open_artifact(wf.path(f"results/activations/resnet18/{layer}.h5"), "activations") as f:
            want = rdm.upper_triangle(rdm.rdm_from_h5(f["activations"], "euclidean")[0])
        assert np.abs(condensed - want).max() <= RDM_RTOL * want.max()
        vectors.append(compare.per_rdm_vector(condensed, "spearman"))
    with h5py.File(wf.path("results/second_order/main/matrix.h5")) as f:
        matrix = f["matrix"][()]
    want = compare.dissimilarity(compare.similarity_matrix(np.stack(vectors), "spearman"), "spearman")
    assert np.abs(matrix - want).max() <= 1e-12


@pytest.mark.slow
def test_workflow_cuda_without_a_gpu_is_one_error_naming_the_key(torch_run):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible here")
    wf, cfg = torch_run
    wf.write_config({**cfg, "rdm": {"backend": "torch", "device": "cuda"}})
    proc = wf.run("--keep-going", check=False)
    assert proc.returncode != 0
    out = proc.stdout + proc.stderr
    assert "config error at rdm.device: cuda asked for, but torch" in out
    assert re.search(r"rule rdm(?:__\w+)?:(?:\n .*)*\n\s+resources: .*\bgpu=1\b", out), out[-3000:]  # declared a GPU
    assert len(sorted(wf.path("results/rdms").rglob("*.h5"))) == 0  # no partial artifact kept

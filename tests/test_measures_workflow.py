"""The activation measures (cka_debiased, cka_rbf, shape, bures) and the whitened RDM measures
(cosine_cov, corr_cov) run as analyses of the workflow: matrices against rsaflow.measures and
rsatoolbox computed directly from the activation and RDM files, inference wired through, per-layer
artifacts shared and rerun only where their parameters change, config errors one line each."""

import copy

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import squareform

from conftest import REPO, Workflow
from rsaflow import config as rsacfg
from rsaflow import ceiling, inference, measures, schema
from rsaflow.errors import ConfigError
from rsaflow.results import read_rdm

pytestmark = pytest.mark.slow

BRANCHES = [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features")]
ANALYSES = {
    "debiased": {"method": "cka_debiased"},
    "rbf": {"method": "cka_rbf", "sigma_frac": 0.5},
    "rbf_debiased": {"method": "cka_rbf_debiased", "sigma_frac": 0.5},
    "shape": {"method": "shape", "alpha": 0.5},
    "bures": {"method": "bures"},
    "procrustes": {"method": "shape"},  # alpha 1: the same per-layer artifacts as bures
    "wcos": {"method": "cosine_cov", "metric": "sqeuclidean", "bootstrap": 12, "permutations": 15, "seed": 3},
    "wcorr": {"method": "corr_cov", "permutations": 10},
}


def measures_config(brain_path):
    return {
        "stimuli": {"source": "digits", "per_class": 3, "seed": 0},
        "models": {
            "resnet18": {"weights": "none", "layers": {"avgpool": "avgpool", "layer3": {"node": "layer3", "reduce": "mean"}}},
            "squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"features": "features.12"}},
        },
        "extraction": {"batch_size": 8, "device": "cpu", "threads": 1, "gpu": False},
        "analyses": copy.deepcopy(ANALYSES),
        "external_rdms": {"brain": {"path": str(brain_path), "order": "stimuli"}},
    }


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("measures")
    brain = squareform(np.random.default_rng(0).random(30 * 29 // 2))
    np.save(root / "brain.npy", brain)
    wf = Workflow(root)
    config = measures_config(root / "brain.npy")
    wf.write_config(config)
    wf.run("--until", "second_order")  # the matrices (figures are tested elsewhere)
    return wf, config


def grams(wf):
    out = []
    for m, l in BRANCHES:
        with h5py.File(wf.path(f"results/activations/{m}/{l}.h5")) as f:
            x = f["activations"][()].astype(np.float64)
        out.append(x @ x.T)
    return out


def result(wf, name):
    with h5py.File(wf.path(f"results/second_order/{name}/matrix.h5")) as f:
        return {k: f[k][()] for k in f}, [x.decode() for x in f["labels"][()]]


REFERENCES = {
    "debiased": lambda k, l: 1 - measures.cka_debiased(k, l),
    "rbf": lambda k, l: 1 - measures.cka_rbf(k, l, sigma_frac=0.5),
    "rbf_debiased": lambda k, l: 1 - measures.cka_rbf(k, l, sigma_frac=0.5, debiased=True),
    "shape": lambda k, l: measures.shape_distance(k, l, alpha=0.5),
    "bures": lambda k, l: 1 - measures.bures_similarity(k, l),
    "procrustes": lambda k, l: measures.shape_distance(k, l, alpha=1.0),
}


@pytest.mark.parametrize("name", list(REFERENCES))
def test_activation_measures_against_measures_on_the_activation_files(done, name):
    wf, _ = done
    res, labels = result(wf, name)
    assert labels == [f"{m}/{l}" for m, l in BRANCHES]  # external RDMs have no activations
    g = grams(wf)
    ref = np.array([[0.0 if a == b else REFERENCES[name](g[a], g[b]) for b in range(3)] for a in range(3)])
    np.testing.assert_allclose(res["matrix"], ref, rtol=0, atol=1e-8)
    assert np.all(res["matrix"][~np.eye(3, dtype=bool)] > 1e-6)  # different layers: not trivially 0


def test_each_parameter_set_has_its_own_per_layer_artifacts_and_bures_shares_procrustes(done):
    wf, _ = done
    folders = sorted(p.name for p in wf.path("results/kernels").iterdir())
    assert folders == ["cka_debiased", "cka_rbf_debiased_sigma_frac-0.5", "cka_rbf_sigma_frac-0.5", "shape_alpha-0.5",
                       "shape_alpha-1.0"]
    for m, l in BRANCHES:
        log = wf.path(f"results/logs/kernel/shape_alpha-1.0/{m}/{l}.log").read_text()
        assert "computed shape " in log
        with h5py.File(wf.path(f"results/kernels/shape_alpha-1.0/{m}/{l}.h5")) as f:
            assert f["factor_u"].shape[0] == 30 and f["factor_w"].shape == (f["factor_u"].shape[1],)


@pytest.mark.parametrize("name, method", [("wcos", "cosine_cov"), ("wcorr", "corr_cov")])
def test_whitened_rdm_measures_against_rsatoolbox_and_inference(done, name, method):
    wf, config = done
    metric = config["analyses"][name].get("metric", "euclidean")
    folder = f"rdms/{metric}"
    res, labels = result(wf, name)
    assert labels == ["external/brain"] + [f"{m}/{l}" for m, l in BRANCHES]
    paths = [wf.path("results/external/brain.h5")] + [wf.path(f"results/{folder}/{m}/{l}.h5") for m, l in BRANCHES]
    uppers = np.stack([read_rdm(p)["condensed"] for p in paths])
    ref = np.array([[0.0 if a == b else 1 - ceiling.rdm_similarity(x, y, method) for b, y in enumerate(uppers)]
                    for a, x in enumerate(uppers)])
    np.testing.assert_allclose(res["matrix"], ref, rtol=0, atol=1e-8)
    rsatoolbox = pytest.importorskip("rsatoolbox")
    rdms = rsatoolbox.rdm.RDMs(uppers)
    theirs = 1 - rsatoolbox.rdm.compare(rdms, rdms, method=method)
    np.fill_diagonal(theirs, 0)
    np.testing.assert_allclose(res["matrix"], theirs, rtol=0, atol=1e-8)
    spec = config["analyses"][name]
    perm = inference.permutation_test(uppers, method, spec["permutations"], spec.get("seed", 0))
    np.testing.assert_array_equal(res["p_values"], perm.p_values)
    if spec.get("bootstrap"):
        boot = inference.bootstrap_second_order(uppers, method, spec["bootstrap"], spec["seed"])
        np.testing.assert_array_equal(res["ci_lower"], boot.lower)
        assert np.all(res["ci_lower"] <= res["ci_upper"])


def test_changing_sigma_frac_reruns_only_the_rbf_analysis_and_its_artifacts(done):
    wf, config = done
    more = copy.deepcopy(config)
    more["analyses"]["rbf"]["sigma_frac"] = 0.25
    more["compare"] = {"sigma_frac": 0.3, "alpha": 0.2}  # the main analysis (spearman) takes neither
    jobs = wf.planned_with(more)
    assert {out for rule, out in jobs if rule == "kernel"} == {
        f"results/kernels/cka_rbf_sigma_frac-0.25/{m}/{l}.h5" for m, l in BRANCHES}
    assert {out for rule, out in jobs if rule == "second_order" and out.endswith("matrix.h5")} == {
        "results/second_order/rbf/matrix.h5"}
    assert not {rule for rule, _ in jobs} & {"activations", "rdm", "external_rdm"}


def test_adding_a_layer_costs_one_artifact_per_parameter_set(done):
    """The model's extraction reruns (one job per model), so its other layers' artifacts are
    scheduled too, but they are reused by content: only the new layer's are computed."""
    wf, config = done
    more = copy.deepcopy(config)
    more["models"]["squeeze"]["layers"]["early"] = "features.3"
    names = ("cka_debiased", "cka_rbf_sigma_frac-0.5", "cka_rbf_debiased_sigma_frac-0.5", "shape_alpha-0.5",
             "shape_alpha-1.0")
    wf.write_config(more)
    try:
        wf.run("--until", "second_order")
    finally:
        wf.write_config(config)
    for name in names:
        kind = "shape" if name.startswith("shape") else "cka"
        assert f"computed {kind} " in wf.path(f"results/logs/kernel/{name}/squeeze/early.log").read_text()
        assert f"reused {kind} " in wf.path(f"results/logs/kernel/{name}/squeeze/features.log").read_text()
    res, labels = result(wf, "bures")
    assert "squeeze/early" in labels and res["matrix"].shape == (4, 4)


SCHEMA = schema.load_schema(REPO / "workflow" / "schemas" / "config.schema.yaml")


def normalised_analyses(compare=None, analyses=None):
    config = {"stimuli": {"source": "digits", "per_class": 2},
              "models": {"resnet18": {"weights": "none", "layers": ["avgpool", "layer3"]}},
              "compare": compare or {}, "analyses": analyses or {}}
    schema.validate(config, SCHEMA)
    return rsacfg.analyses(config)


@pytest.mark.parametrize("method", ["cka", "cka_debiased", "cka_rbf", "cka_rbf_debiased", "shape", "bures"])
@pytest.mark.parametrize("key", ["bootstrap", "permutations"])
def test_inference_on_activation_measures_is_a_one_line_error_naming_the_key(method, key):
    with pytest.raises(ConfigError) as err:
        normalised_analyses(analyses={"x": {"method": method, key: 10}})
    line = str(err.value)
    assert "\n" not in line and line.startswith(f"config error at analyses.x.{key}: ") and method in line
    with pytest.raises(ConfigError, match=r"^config error at compare\.bootstrap: "):
        normalised_analyses(compare={"method": method, "bootstrap": 10})


def test_method_parameters_reach_only_the_analyses_that_take_them():
    found = normalised_analyses({"method": "spearman", "sigma_frac": 0.3, "alpha": 0.2},
                                {"r": {"method": "cka_rbf"}, "s": {"method": "shape", "alpha": 0}, "b": {"method": "bures"}})
    slices = {name: rsacfg.analysis_slice(spec) for name, spec in found.items()}
    assert "sigma_frac" not in slices["main"] and "alpha" not in slices["main"]
    assert slices["r"]["sigma_frac"] == 0.8 and "alpha" not in slices["r"]  # the schema's default
    assert slices["s"]["alpha"] == 0 and "alpha" not in slices["b"]
    assert found["s"]["kernel"] == "shape_alpha-0.0" and found["b"]["kernel"] == "shape_alpha-1.0"
    assert rsacfg.kernels(found)["shape_alpha-1.0"] == {"kind": "shape", "alpha": 1.0}


@pytest.mark.parametrize("edit, key, allowed", [
    ({"alpha": 1.5}, "compare.alpha", "a number >= 0 and <= 1"),
    ({"sigma_frac": 0}, "compare.sigma_frac", "a number > 0"),
    ({"method": "cka_debaised"}, "compare.method", "close matches: cka_debiased"),
])
def test_schema_errors_of_the_new_keys_are_one_line(edit, key, allowed):
    config = {"stimuli": {"source": "digits", "per_class": 2},
              "models": {"resnet18": {"weights": "none", "layers": ["avgpool"]}}, "compare": edit}
    lines = [str(e) for e in schema.schema_errors(config, SCHEMA)]
    assert len(lines) == 1 and "\n" not in lines[0] and lines[0].startswith(f"config error at {key}: ")
    assert allowed in lines[0], lines

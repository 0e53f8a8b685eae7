"""Several analyses, layer sweeps, CKA, inference and external RDMs in one run (tiny config)."""

import copy

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import kendalltau, pearsonr

from conftest import Workflow, tiny_config, write_cifar10
from rsaflow.results import read_rdm

pytestmark = pytest.mark.slow
TILES = 3


def textbook_cka(x, y):
    n = x.shape[0]
    h = np.eye(n) - np.ones((n, n)) / n
    k, l = h @ x @ x.T @ h, h @ y @ y.T @ h
    return np.sum(k * l) / np.sqrt(np.sum(k * k) * np.sum(l * l))


def analyses_config(cifar_root, external):
    config = tiny_config(cifar_root)
    config["models"]["squeeze"]["layers"] = ["features.3", "features.12"]  # a sweep: nodes in depth order
    config["analyses"] = {
        "corr": {"metric": "correlation", "method": "pearson", "bootstrap": 40, "permutations": 30, "seed": 1},
        "cka": {"method": "cka"},
        "tau": {"method": "kendall_tau_a"},
        "tiled": {"method": "spearman", "tiles": TILES},  # compare.tiles: equal to the main analysis
        "tiled_cka": {"method": "cka", "tiles": TILES},
    }
    config["external_rdms"] = {"brain": {"path": str(external), "order": "stimuli"}}
    return config


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("analyses")
    cifar = write_cifar10(root / "cifar")
    rng = np.random.default_rng(0)
    brain = squareform(rng.random(30 * 29 // 2))
    np.save(root / "brain.npy", brain)
    wf = Workflow(root)
    config = analyses_config(cifar, root / "brain.npy")
    wf.write_config(config)
    wf.run()
    return wf, config, brain


def acts(wf, model, layer):
    with h5py.File(wf.path(f"results/activations/{model}/{layer}.h5")) as f:
        return f["activations"][()].astype(np.float64)


def second_order(wf, analysis):
    with h5py.File(wf.path(f"results/second_order/{analysis}/matrix.h5")) as f:
        return {k: f[k][()] for k in f}, [x.decode() for x in f["labels"][()]]


BRANCHES = [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features.12"), ("squeeze", "features.3")]


def test_correlation_pearson_analysis_with_inference(done):
    wf, _, brain = done
    res, labels = second_order(wf, "corr")
    assert labels == ["external/brain"] + [f"{m}/{l}" for m, l in BRANCHES]
    uppers = [squareform(brain, checks=False)] + [pdist(acts(wf, m, l), "correlation") for m, l in BRANCHES]
    k = len(uppers)
    ref = np.array([[0 if a == b else 1 - pearsonr(uppers[a], uppers[b])[0] for b in range(k)] for a in range(k)])
    np.testing.assert_allclose(res["matrix"], ref, atol=1e-10)
    assert np.all(res["ci_lower"] <= res["ci_upper"]) and res["ci_lower"].shape == (k, k)
    off = ~np.eye(k, dtype=bool)
    assert np.all((res["p_values"][off] > 0) & (res["p_values"][off] <= 1))
    assert wf.path("results/figures/corr/heatmap.png").exists()


def test_cka_analysis_from_activations(done):
    wf, _, _ = done
    res, labels = second_order(wf, "cka")
    assert labels == [f"{m}/{l}" for m, l in BRANCHES]  # external RDMs have no activations
    x = [acts(wf, m, l) for m, l in BRANCHES]
    ref = np.array([[0 if a == b else 1 - textbook_cka(x[a], x[b]) for b in range(4)] for a in range(4)])
    np.testing.assert_allclose(res["matrix"], ref, atol=1e-10)


def test_kendall_tau_a_analysis(done):
    wf, _, brain = done
    res, labels = second_order(wf, "tau")
    a = read_rdm(wf.path("results/rdms/euclidean/resnet18/avgpool.h5"))["condensed"]
    b = squareform(brain, checks=False)
    # no ties in continuous data: tau-a equals scipy's tau-b
    assert res["matrix"][0, 1] == pytest.approx(1 - kendalltau(a, b)[0], abs=1e-12)


def test_sweep_depths_and_trajectory_order(done):
    wf, _, _ = done
    res, labels = second_order(wf, "main")
    depth = dict(zip(labels, res["depth"]))
    assert depth["squeeze/features.3"] < depth["squeeze/features.12"]
    assert depth["external/brain"] == -1


def test_rsatoolbox_opens_the_export(done):
    rsatoolbox = pytest.importorskip("rsatoolbox")
    wf, _, _ = done
    rdms = rsatoolbox.rdm.load_rdm(str(wf.path("results/export/rdms_rsatoolbox.h5")))
    res, labels = second_order(wf, "main")
    assert list(rdms.rdm_descriptors["name"]) == labels
    ours = 1 - rsatoolbox.rdm.compare(rdms, rdms, method="spearman")
    np.fill_diagonal(ours, 0)
    np.testing.assert_allclose(ours, res["matrix"], atol=1e-10)


def test_adding_an_analysis_reuses_rdms(done):
    wf, config, _ = done
    more = copy.deepcopy(config)
    more["analyses"]["cos"] = {"metric": "correlation", "method": "cosine"}
    jobs = wf.planned_with(more)
    assert {rule for rule, _ in jobs} == {"second_order", "second_order_figure", "mds_figure", "effective_config"}
    assert {out for rule, out in jobs if rule == "second_order"} == {
        "results/second_order/cos/matrix.h5", "results/second_order/cos/matrix.tsv",
        "results/second_order/cos/inference.tsv", "results/second_order/cos/pairs.h5"}
    assert {out for rule, out in jobs if rule == "mds_figure"} == {"results/figures/cos/mds.png", "results/figures/cos/mds.pdf"}


def test_adding_an_analysis_with_a_new_metric_adds_only_its_rdms(done):
    wf, config, _ = done
    more = copy.deepcopy(config)
    more["analyses"]["cosine"] = {"metric": "cosine"}
    jobs = wf.planned_with(more)
    assert {out for rule, out in jobs if rule == "rdm"} == {f"results/rdms/cosine/{m}/{l}.h5" for m, l in BRANCHES}
    assert "activations" not in {rule for rule, _ in jobs}


def test_adding_an_external_rdm(done, tmp_path):
    wf, config, brain = done
    np.save(tmp_path / "v1.npy", brain[::-1, ::-1].copy())
    more = copy.deepcopy(config)
    more["external_rdms"]["v1"] = {"path": str(tmp_path / "v1.npy"), "order": "stimuli"}
    jobs = wf.planned_with(more)
    rules = {rule for rule, _ in jobs}
    assert ("external_rdm", "results/external/v1.h5") in jobs
    assert not rules & {"activations", "rdm", "kernel", "stimuli"}
    so = {out for rule, out in jobs if rule == "second_order" and out.endswith("matrix.h5")}
    assert so == {"results/second_order/main/matrix.h5", "results/second_order/corr/matrix.h5",
                  "results/second_order/tau/matrix.h5", "results/second_order/tiled/matrix.h5"}  # not cka


def test_external_rdm_of_wrong_size_is_refused(workflow, cifar_root, tmp_path):
    np.save(tmp_path / "small.npy", squareform(np.arange(1.0, 11.0)))  # 5 x 5, the stimuli are 30
    config = tiny_config(cifar_root)
    config["external_rdms"] = {"small": {"path": str(tmp_path / "small.npy"), "order": "stimuli"}}
    workflow.write_config(config)
    proc = workflow.run("results/external/small.h5", check=False)
    assert proc.returncode != 0
    assert "small.npy" in proc.stderr and "30" in proc.stderr and "5" in proc.stderr
    assert not workflow.path("results/external/small.h5").exists()


def test_layer_pattern_expands_to_graph_nodes(workflow, cifar_root):
    config = tiny_config(cifar_root)
    config["models"]["squeeze"]["layers"] = "features.1?.cat"  # the last three Fire modules
    workflow.write_config(config)
    jobs = workflow.planned()
    assert {out for rule, out in jobs if rule == "rdm" and "squeeze" in out} == {
        f"results/rdms/euclidean/squeeze/features.{i}.cat.h5" for i in (10, 11, 12)}


def test_layer_pattern_without_match_is_a_config_error(workflow, cifar_root):
    config = tiny_config(cifar_root)
    config["models"]["squeeze"]["layers"] = "layer*"
    workflow.write_config(config)
    proc = workflow.run("-n", check=False)
    assert proc.returncode != 0
    assert "config error at models.squeeze.layers: the pattern 'layer*' matches no node of squeezenet1_1" in proc.stdout + proc.stderr


def test_only_configured_analyses_and_registered_metrics_are_targets(workflow, cifar_root):
    workflow.write_config(tiny_config(cifar_root))
    for target in ("results/second_order/other/matrix.h5", "results/rdms/manhattan/resnet18/avgpool.h5",
                   "results/figures/other/mds.png"):
        proc = workflow.run("-n", target, check=False)
        assert proc.returncode != 0 and "MissingRuleException" in proc.stdout + proc.stderr, target
    # any registered metric is a target, its value taken from the path (no analysis uses cosine here)
    assert ("rdm", "results/rdms/cosine/resnet18/avgpool.h5") in workflow.planned(
        "results/rdms/cosine/resnet18/avgpool.h5")


@pytest.mark.parametrize("tiled, single", [("tiled", "main"), ("tiled_cka", "cka")])
def test_tiled_second_order_equals_one_job(done, tiled, single):
    from rsaflow.second_order.tiling import tile_members

    wf, _, _ = done
    a, labels = second_order(wf, tiled)
    b, labels_b = second_order(wf, single)
    assert labels == labels_b
    np.testing.assert_allclose(a["matrix"], b["matrix"], rtol=0, atol=1e-12)
    full = [i for i, m in enumerate(tile_members(labels, TILES)) if m]
    tiles = sorted(p.name for p in wf.path(f"results/second_order/{tiled}/tiles").glob("*.h5"))
    assert tiles == sorted(f"{i}_{j}.h5" for n, i in enumerate(full) for j in full[n:])
    log = wf.path(f"results/logs/second_order/{tiled}.log").read_text()
    assert f"assembled from {len(tiles)} tiles" in log


def planned_tiles(wf, config, new_labels):
    """(planned second_order_tile outputs of the tiled analysis, the tiles of the row of the block of
    ``new_labels``) under ``config``."""
    from rsaflow.second_order.tiling import block_of, tile_members

    _, labels = second_order(wf, "tiled")
    labels = sorted(set(labels) | set(new_labels))
    (block,) = {block_of(lab, TILES) for lab in new_labels}
    full = [i for i, m in enumerate(tile_members(labels, TILES)) if m]
    planned = {out for rule, out in wf.planned_with(config) if rule == "second_order_tile" and "/tiled/" in out}
    return planned, {f"results/second_order/tiled/tiles/{min(block, j)}_{max(block, j)}.h5" for j in full}


def test_adding_a_model_plans_only_the_tiles_of_its_block(done):
    """A block depends on the model alone: the new model's two RDMs change one block's tiles only
    (the library test tests/test_tiles.py checks that those compute only its entries)."""
    wf, config, _ = done
    more = copy.deepcopy(config)
    more["models"]["mobile"] = {"arch": "mobilenet_v3_small", "weights": "none",
                                "layers": {"pool": "avgpool", "early": "features.2"}}
    planned, row = planned_tiles(wf, more, ["mobile/pool", "mobile/early"])
    assert planned == row


def test_adding_a_layer_plans_only_the_tiles_of_its_models_block(done):
    """Adding a layer reruns the model's extraction and so all of its RDM jobs (Snakemake has no
    early cutoff); with a model's layers in one block, only that block's tiles rerun."""
    wf, config, _ = done
    more = copy.deepcopy(config)
    more["models"]["squeeze"]["layers"] = ["features.3", "features.7", "features.12"]
    planned, row = planned_tiles(wf, more, ["squeeze/features.3", "squeeze/features.7", "squeeze/features.12"])
    assert planned == row
    existing = {f"results/second_order/tiled/tiles/{p.name}"
                for p in wf.path("results/second_order/tiled/tiles").iterdir()}
    assert planned < existing  # some tile is left alone (with these names, the external RDM's own tile)


def test_tiles_with_inference_are_a_config_error(done):
    wf, config, _ = done
    bad = copy.deepcopy(config)
    bad["analyses"]["tiled"]["bootstrap"] = 10
    proc = wf.dry_run_with(bad)
    assert proc.returncode != 0
    assert "config error at analyses.tiled.tiles: bootstrap and permutations" in proc.stdout + proc.stderr

"""The workflow end to end on a tiny config in a temp dir, and what each change reruns (dry runs)."""

import copy
from pathlib import Path

import h5py
import numpy as np
import pytest
from scipy.spatial.distance import pdist, squareform
from scipy.stats import spearmanr

from conftest import tiny_config
from rsaflow.results import read_rdm

pytestmark = pytest.mark.slow

FINAL = {"rdm_figure", "stimulus_mds_figure", "export_rsatoolbox", "second_order", "second_order_figure", "mds_figure"}
CONFIG_CHANGE = FINAL | {"effective_config", "activations", "rdm"}


def model_jobs(model, *layers):
    """One extraction job for the model (its folder), one RDM job per layer."""
    return {("activations", f"results/activations/{model}")} | {("rdm", f"results/rdms/euclidean/{model}/{l}.h5") for l in layers}


def rules_of(jobs):
    return {rule for rule, _ in jobs}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    """One complete run of the tiny config, shared by the tests of this module (each works on a copy)."""
    from conftest import Workflow, write_cifar10

    root = tmp_path_factory.mktemp("wf")
    wf = Workflow(root)
    config = tiny_config(write_cifar10(root / "cifar"))
    wf.write_config(config)
    wf.run()
    return wf, config


def test_outputs_and_numbers(done):
    wf, config = done
    for fig in ("stimuli", "rdms", "stimulus_mds", "main/heatmap", "main/mds"):
        assert wf.path(f"results/figures/{fig}.png").stat().st_size > 1000
        assert wf.path(f"results/figures/{fig}.pdf").read_bytes()[:5] == b"%PDF-"
    with h5py.File(wf.path("results/stimuli/stimuli.h5")) as f:
        assert f["images"].shape == (30, 3, 32, 32) and f["images"].dtype == np.uint8
        digest = f.attrs["digest"]
    uppers, labels = [], []
    for model, layer in [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features")]:
        with h5py.File(wf.path(f"results/activations/{model}/{layer}.h5")) as f:
            acts = f["activations"][()]
            assert acts.dtype == np.float32 and acts.shape[0] == 30
            assert f.attrs["stimulus_digest"] == digest
            assert f.attrs["weights"] == "none" and f.attrs["model"] == model and f.attrs["layer"] == layer
        rdm = read_rdm(wf.path(f"results/rdms/euclidean/{model}/{layer}.h5"), square=True)["rdm"]
        ref = squareform(pdist(acts.astype(np.float64))) / np.sqrt(acts.shape[1])
        assert np.max(np.abs(rdm - ref)) <= 1e-10 * ref.max()
        uppers.append(rdm[np.triu_indices(30, 1)])
        labels.append(f"{model}/{layer}")
    with h5py.File(wf.path("results/second_order/main/matrix.h5")) as f:
        matrix = f["matrix"][()]
        assert [x.decode() for x in f["labels"][()]] == labels
    expected = np.zeros((3, 3))
    for a in range(3):
        for b in range(3):
            if a != b:
                expected[a, b] = 1 - spearmanr(uppers[a], uppers[b]).statistic
    np.testing.assert_allclose(matrix, expected, atol=1e-12)
    tsv = wf.path("results/second_order/main/matrix.tsv").read_text().splitlines()
    assert tsv[0].split("\t")[1:] == labels
    np.testing.assert_allclose(np.array([r.split("\t")[1:] for r in tsv[1:]], dtype=float), matrix, atol=1e-15)


def test_progress_in_logs(done):
    wf, _ = done
    extraction = wf.path("results/logs/activations/resnet18.log").read_text()
    assert "batch 4/4, 30/30 images" in extraction and "images/s" in extraction
    assert "done: resnet18, 2 layers on cpu (cpu), N=30, 4 forward passes" in extraction
    rdm = wf.path("results/logs/rdm/euclidean/squeeze/features.log").read_text()
    assert "Gram block 11/11 (86528/86528 units)" in rdm and "RDM done in" in rdm


def test_reductions_have_expected_widths(done):
    wf, _ = done
    widths = {}
    for model, layer in [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features")]:
        with h5py.File(wf.path(f"results/activations/{model}/{layer}.h5")) as f:
            widths[(model, layer)] = f["activations"].shape[1]
    assert widths[("resnet18", "avgpool")] == 512  # (N, 512, 1, 1) flattened
    assert widths[("resnet18", "layer3")] == 256  # (N, 256, 14, 14) averaged over space
    assert widths[("squeeze", "features")] == 512 * 13 * 13  # (N, 512, 13, 13) flattened


def test_no_change_runs_nothing(done):
    wf, _ = done
    assert wf.planned() == set()


def job_counts(wf, *args):
    """Job stats of a dry run: {rule: jobs}, per rule as Snakemake names it."""
    import re

    proc = wf.run("-n", *args)
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^([\w.-]+)\s+(\d+)$", proc.stdout, re.M)}


def test_rdm_jobs_follow_models_and_rdm_jobs_layer_splits_them(done):
    """rdm.jobs: model (the default) is one RDM job per model, its layers' files its outputs, with
    one log per layer; rdm.jobs: layer one job per layer, whose rerun (a new rule) reuses every RDM."""
    wf, config = done
    counts = job_counts(wf, "--forcerun", "rdm__resnet18", "rdm__squeeze")
    assert counts["rdm__resnet18"] == 1 and counts["rdm__squeeze"] == 1 and "rdm" not in counts
    log = wf.path("results/logs/rdm/euclidean/resnet18.log").read_text()
    assert "results/activations/resnet18: 2 RDMs, 2 computed, 0 reused" in log
    assert "computed rdm" in wf.path("results/logs/rdm/euclidean/resnet18/layer3.log").read_text()
    assert "features" not in wf.path("results/logs/rdm/euclidean/resnet18/layer3.log").read_text()
    before = {l: wf.path(f"results/rdms/euclidean/resnet18/{l}.h5").read_bytes() for l in ("avgpool", "layer3")}
    layered = _with(config, rdm__jobs="layer")
    wf.write_config(layered)
    try:
        assert job_counts(wf)["rdm"] == 3  # a new rule: its jobs run, and reuse
        wf.run()
        for layer, data in before.items():
            assert wf.path(f"results/rdms/euclidean/resnet18/{layer}.h5").read_bytes() == data
            assert "reused rdm" in wf.path(f"results/logs/rdm/euclidean/resnet18/{layer}.log").read_text()
        assert wf.planned() == set()
    finally:
        wf.write_config(config)
    wf.run()
    assert wf.planned() == set()


def test_reordering_runs_nothing(done):
    wf, config = done
    shuffled = {k: config[k] for k in reversed(list(config))}
    shuffled["models"] = {k: config["models"][k] for k in reversed(list(config["models"]))}
    r18 = copy.deepcopy(config["models"]["resnet18"])
    shuffled["models"]["resnet18"] = {"layers": dict(reversed(list(r18["layers"].items()))), "weights": "none"}
    assert wf.planned_with(shuffled) == set()


def test_adding_a_model_runs_only_its_branch(done):
    wf, config = done
    more = copy.deepcopy(config)
    more["models"]["mobile"] = {"arch": "mobilenet_v3_small", "weights": "none", "layers": {"pool": "avgpool"}}
    jobs = wf.planned_with(more)
    assert {j for j in jobs if j[0] in ("activations", "rdm")} == model_jobs("mobile", "pool")
    assert rules_of(jobs) == CONFIG_CHANGE


def test_adding_a_layer_reruns_only_its_models_pass(done):
    # One forward pass of that model; Snakemake then reruns its RDM jobs (no early cutoff), which
    # reuse unchanged RDMs from the store (tests/test_reuse.py runs it and reads the logs).
    wf, config = done
    more = copy.deepcopy(config)
    more["models"]["squeeze"]["layers"]["early"] = "features.3"
    jobs = wf.planned_with(more)
    assert {j for j in jobs if j[0] in ("activations", "rdm")} == model_jobs("squeeze", "early", "features")
    assert rules_of(jobs) == CONFIG_CHANGE


def test_changing_weights_reruns_that_model_only(done):
    wf, config = done
    changed = copy.deepcopy(config)
    changed["models"]["resnet18"]["seed"] = 7  # another untrained initialisation
    jobs = wf.planned_with(changed)
    assert {j for j in jobs if j[0] in ("activations", "rdm")} == model_jobs("resnet18", "avgpool", "layer3")


def test_changing_a_node_reruns_that_models_pass(done):
    wf, config = done
    changed = copy.deepcopy(config)
    changed["models"]["resnet18"]["layers"]["layer3"] = {"node": "layer3", "reduce": "flatten"}
    jobs = wf.planned_with(changed)
    assert {j for j in jobs if j[0] in ("activations", "rdm")} == model_jobs("resnet18", "avgpool", "layer3")


def test_seed_of_a_trained_model_is_not_in_its_slice(done):
    wf, config = done
    changed = copy.deepcopy(config)
    changed["models"]["resnet18"]["seed"] = 3
    assert ("activations", "results/activations/resnet18") in wf.planned_with(changed)  # untrained: seeds the init
    ckpt = wf.path("r18.pt")
    ckpt.write_bytes(b"")  # existence is all a dry run checks
    for seed in (0, 5):
        changed["models"]["resnet18"].update(weights=str(ckpt), seed=seed)
        jobs = wf.planned_with(changed)
        assert ("activations", "results/activations/resnet18") in jobs
    changed["models"]["resnet18"]["seed"] = 0
    base = wf.planned_with(changed)
    changed["models"]["resnet18"]["seed"] = 9
    assert wf.planned_with(changed) == base


def test_editing_the_rdm_math_reruns_rdm_jobs(done):
    wf, _ = done
    jobs = wf.edited("rdm.py")
    assert "activations" not in rules_of(jobs) and "stimuli" not in rules_of(jobs)
    assert {out for rule, out in jobs if rule == "rdm"} == {
        "results/rdms/euclidean/resnet18/avgpool.h5", "results/rdms/euclidean/resnet18/layer3.h5",
        "results/rdms/euclidean/squeeze/features.h5"}
    assert FINAL <= rules_of(jobs)


def test_editing_the_extraction_reruns_extraction_only_upstream(done):
    wf, _ = done
    jobs = wf.edited("extract.py")
    assert "stimuli" not in rules_of(jobs)
    assert len([1 for rule, _ in jobs if rule == "activations"]) == 2  # one job per model


def test_editing_a_figure_module_reruns_figures_only(done):
    wf, _ = done
    assert rules_of(wf.edited("figure_data.py")) == {
        "stimulus_grid", "rdm_figure", "stimulus_mds_figure", "second_order_figure", "mds_figure"}
    assert wf.planned() == set()  # the restored mtime leaves nothing to do


def test_report_embeds_every_figure_with_its_caption(done):
    wf, _ = done
    wf.run("--report", str(wf.path("report.html")))
    html = wf.path("report.html").read_text(errors="replace")
    for name in ("stimuli.png", "rdms.png", "stimulus_mds.png", "heatmap.png", "mds.png", "config.yaml"):
        assert name in html
    for caption in ("percentiles", "Second-order dissimilarity matrix", "metric MDS", "one row per class"):
        assert caption in html


def _rerun_rows():
    """The first cells of the rerun table of docs/reruns.md."""
    text = (Path(__file__).resolve().parents[1] / "docs" / "reruns.md").read_text()
    table = text.split("\n\n")
    rows = next(block for block in table if block.startswith("| change |")).splitlines()[2:]
    return [row.split(" | ")[0].lstrip("| ").strip() for row in rows]


def _with(config, **changes):
    """A copy of ``config`` with dotted-path ``changes`` (``models.resnet18.seed=3``)."""
    out = copy.deepcopy(config)
    for path, value in changes.items():
        *head, last = path.split("__")
        node = out
        for key in head:
            node = node.setdefault(key, {})
        node[last] = value
    return out


R18 = ("resnet18", "avgpool", "layer3")
ALL_ACT = {("activations", "results/activations/resnet18"), ("activations", "results/activations/squeeze")}
#: README row -> (changed config, extraction + RDM jobs a dry run must plan), for the rows a dry run of the
#: tiny config can show; the others name the test that checks them.
RERUN_ROWS = {
    "nothing; reorder models, layers or YAML keys": (lambda c: c, set()),
    "add a model": (lambda c: _with(c, models__mobile={"arch": "mobilenet_v3_small", "weights": "none",
                                                       "layers": {"pool": "avgpool"}}), model_jobs("mobile", "pool")),
    "add a layer to a model": (lambda c: _with(c, models__squeeze__layers={"features": "features.12",
                                                                          "early": "features.3"}),
                               model_jobs("squeeze", "early", "features")),
    "a layer's node or reduce": (lambda c: _with(c, models__resnet18__layers={
        "avgpool": "avgpool", "layer3": {"node": "layer3", "reduce": "flatten"}}), model_jobs(*R18)),
    "a model's weights (or `seed` of an untrained model)": (lambda c: _with(c, models__resnet18__seed=4),
                                                            model_jobs(*R18)),
    "`seed` of a model with trained weights or a checkpoint": "test_seed_of_a_trained_model_is_not_in_its_slice",
    "a checkpoint file's content, or `weights:` pointing at another existing file":
        "tests/test_stale_inputs.py::test_another_checkpoint_reruns_exactly_its_model",
    "`extraction.batch_size`, `device`, `precision`, `channels_last`": (
        lambda c: _with(c, extraction__batch_size=5), ALL_ACT | model_jobs(*R18) | model_jobs("squeeze", "features")),
    "`extraction.threads`, `mem_mb`, `gpu`": (lambda c: _with(c, extraction__threads=2, extraction__mem_mb=999),
                                              set()),
    "`rdm.metric`": (lambda c: _with(c, rdm__metric="cosine"),
                     {("rdm", f"results/rdms/cosine/{m}/{l}.h5") for m, l in
                      [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features")]}),
    "`compare.*`": (lambda c: _with(c, compare__method="pearson"), set()),
    "`rdm.backend: torch` or its `rdm.device`": "tests/test_torch_kernels.py::test_rdm_job_key_names_the_backend",
    "`second_order.backend` or `device`": (lambda c: _with(c, second_order={"backend": "torch"}), set()),
    "add an analysis": (lambda c: _with(c, analyses={"p": {"method": "pearson"}}), set()),
    "an external RDM's `path` or `paths` (another existing file), its `ids` file or `order`":
        "tests/test_stale_inputs.py::test_another_external_file_reruns_exactly_that_rdm",
    "an image's bytes (a folder source); `touch` alone reruns nothing":
        "tests/test_stimulus_identity.py::test_workflow_reruns_on_new_bytes_and_not_on_touch",
    "more stimuli (`per_class` 10 → 20, new files, a new class)":
        "tests/test_stimulus_growth.py::test_grown_set_forwards_only_the_new_images",
    "fewer stimuli (a subset) or another order": "tests/test_stimulus_growth.py::test_subset_reorder_and_edited_image",
    "edit `src/rsaflow/rdm.py`": "test_editing_the_rdm_math_reruns_rdm_jobs",
    "edit `src/rsaflow/extract.py`": "test_editing_the_extraction_reruns_extraction_only_upstream",
    "edit `src/rsaflow/figure_data.py` (or a module of `plots/`)": "test_editing_a_figure_module_reruns_figures_only",
    "back to an earlier config": "tests/test_reuse.py::test_going_back_reuses_everything",
}


def test_every_row_of_the_readme_rerun_table_is_checked():
    assert _rerun_rows() == list(RERUN_ROWS)


@pytest.mark.parametrize("row", [r for r, v in RERUN_ROWS.items() if isinstance(v, tuple)])
def test_readme_rerun_table_row(done, row):
    wf, config = done
    change, expected = RERUN_ROWS[row]
    jobs = wf.planned_with(change(config))
    assert {j for j in jobs if j[0] in ("activations", "rdm")} == expected

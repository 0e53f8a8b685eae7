"""Per-stimulus reuse of activations (rsaflow.shards): a grown, subset, reordered or edited
stimulus set forwards only the images no shard holds, counted from each extraction's log line
``forwarded F images, reused R from S shards``; the assembled files equal a cold extraction.

Tolerance: on the CPU batch composition changes the last bits (convolutions: only in a batch of
one image, up to 7e-7 of the layer's largest value; fully connected layers such as alexnet's
classifier: whenever the batch size changes, up to 6e-7; docs/reruns.md), so assembled and cold
files are compared with rtol=1e-5 and an absolute 1e-6 of the layer's largest value; RDMs and
second orders with rtol/atol 1e-5.
"""

from __future__ import annotations

import copy
import json
import re
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from conftest import Workflow, write_cifar10
from test_stimulus_identity import save_image, write_folder

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")

from rsaflow import shards  # noqa: E402
from rsaflow.extract import extract_model  # noqa: E402

LINE = re.compile(r"(\S+): forwarded (\d+) images, reused (\d+) from (\d+) shards")
MODELS = {"squeeze": {"arch": "squeezenet1_1", "weights": "none",
                      "layers": {"f12": "features.12", "f5": {"node": "features.5", "reduce": "mean"}}}}
EXTRACTION = {"batch_size": 8, "device": "cpu", "threads": 1, "gpu": False}
TARGETS = ["results/second_order/main/matrix.h5"]
ACTIVATIONS = [f"results/activations/{m}" for m in MODELS]


def counts(wf) -> dict:
    """model -> (forwarded, reused) from the last extraction log of each model."""
    out = {}
    for log in sorted(wf.path("results/logs/activations").glob("*.log")):
        found = LINE.findall(log.read_text())
        assert found, log.read_text()[-2000:]
        model, fwd, reused, _ = found[-1]
        out[model] = (int(fwd), int(reused))
    return out


def read_folder(folder):
    out = {}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path) as f:
            out[path.stem] = (f["activations"][()], {k: f.attrs[k] for k in f.attrs})
    return out


def cold(wf, tmp_path, spec_models=MODELS):
    """The layer files of a cold extraction (an empty store) of the workflow's current stimuli."""
    out = {}
    saved = shards.STORE_DIR
    shards.STORE_DIR = tmp_path / "cold-store"
    try:
        for model, entry in spec_models.items():
            spec = {"model": model, "arch": entry["arch"], "weights": "none", "seed": 0,
                    "layers": {k: (v if isinstance(v, dict) else {"node": v, "reduce": "flatten"})
                               for k, v in entry["layers"].items()},
                    "batch_size": 8, "device": "cpu", "precision": "float32", "channels_last": False}
            extract_model(wf.path("results/stimuli/stimuli.h5"), tmp_path / "cold" / model, spec, 1, {})
            out[model] = read_folder(tmp_path / "cold" / model)
    finally:
        shards.STORE_DIR = saved
        shutil.rmtree(tmp_path / "cold", ignore_errors=True)
        shutil.rmtree(tmp_path / "cold-store", ignore_errors=True)
    return out


def assert_close_to_cold(wf, tmp_path):
    for model, layers in cold(wf, tmp_path).items():
        ours = read_folder(wf.path(f"results/activations/{model}"))
        assert sorted(ours) == sorted(layers)
        for label, (values, _) in layers.items():
            got = ours[label][0]
            assert got.shape == values.shape
            np.testing.assert_allclose(got, values, rtol=1e-5, atol=1e-6 * np.abs(values).max())


def ids(wf):
    return [ln.split("\t")[1] for ln in wf.path("results/stimuli/order.tsv").read_text().splitlines()[1:]]


def state(wf):
    """(ids, {model/layer: activations}) of the current run."""
    acts = {f"{m}/{k}": v[0] for m in MODELS for k, v in read_folder(wf.path(f"results/activations/{m}")).items()}
    return ids(wf), acts


@pytest.fixture(scope="module")
def folder_runs(tmp_path_factory):
    """One workflow grown, subset, reordered and edited in turn; each state's counts and files."""
    root = tmp_path_factory.mktemp("growth")
    write_folder(root / "img", per_class=5, names=("k", "b", "x", "a", "m"))  # 3 classes x 5 = 15
    rng = np.random.default_rng(1)
    config = {"stimuli": {"source": "folder", "root": str(root / "img"), "per_class": None, "seed": 0},
              "models": MODELS, "extraction": EXTRACTION}
    wf = Workflow(root)
    wf.write_config(config)
    wf.run(*TARGETS)
    runs = {"cold": (counts(wf), state(wf))}
    for cls in ("apple", "moth"):  # grow: 15 -> 17 images (about 10 %)
        save_image(root / "img" / cls / "n.bmp", rng)
    wf.run(*TARGETS)
    runs["grown"] = (counts(wf), state(wf))
    yield wf, root, config, runs, rng


def test_cold_run_forwards_every_image_once(folder_runs):
    wf, root, config, runs, rng = folder_runs
    assert runs["cold"][0] == {"squeeze": (15, 0)}
    manifest = wf.path(f"results/activations/squeeze/{shards.MANIFEST}")
    assert manifest.is_file()


def test_grown_set_forwards_only_the_new_images(folder_runs, tmp_path):
    wf, root, config, runs, rng = folder_runs
    assert runs["grown"][0] == {"squeeze": (2, 15)}
    grown_ids, acts = runs["grown"][1]
    cold_ids, cold_acts = runs["cold"][1]
    assert len(grown_ids) == 17 and set(cold_ids) < set(grown_ids)
    # the old images' rows are the stored rows exactly (they were not recomputed)
    for name, values in cold_acts.items():
        at = [grown_ids.index(i) for i in cold_ids]
        np.testing.assert_array_equal(acts[name][at], values)


def test_grown_run_equals_a_cold_workflow_run_downstream(folder_runs, tmp_path):
    """RDMs and the second order of the grown run equal a fresh workflow's on the same images."""
    wf, root, config, runs, rng = folder_runs
    fresh = Workflow(tmp_path)
    fresh.write_config(config)
    fresh.run(*TARGETS)
    assert counts(fresh) == {"squeeze": (17, 0)}
    for m in MODELS:
        ours, theirs = read_folder(wf.path(f"results/activations/{m}")), read_folder(fresh.path(f"results/activations/{m}"))
        for label, (values, attrs) in theirs.items():
            np.testing.assert_allclose(ours[label][0], values, rtol=1e-5, atol=1e-6 * np.abs(values).max())
            same = {k for k in attrs if k not in ("data_sha256",)}
            assert {k: str(ours[label][1][k]) for k in same} == {k: str(attrs[k]) for k in same}
    rdms = sorted(p.relative_to(fresh.work) for p in fresh.path("results/rdms").rglob("*.h5"))
    assert rdms
    for rel in rdms:
        with h5py.File(fresh.work / rel) as a, h5py.File(wf.work / rel) as b:
            for name in a:
                if isinstance(a[name], h5py.Dataset) and a[name].dtype.kind == "f":
                    np.testing.assert_allclose(b[name][()], a[name][()], rtol=1e-5, atol=1e-5)
    with h5py.File(fresh.path(TARGETS[0])) as a, h5py.File(wf.path(TARGETS[0])) as b:
        floats = [n for n in a if isinstance(a[n], h5py.Dataset) and a[n].dtype.kind == "f"]
        assert floats
        for name in floats:
            np.testing.assert_allclose(b[name][()], a[name][()], rtol=1e-5, atol=1e-5)


def test_subset_reorder_and_edited_image(folder_runs, tmp_path):
    """A subset and a reorder forward nothing (the reorder's rows are the old rows moved exactly);
    an image whose bytes changed forwards that image alone. Each state equals a cold extraction."""
    wf, root, config, runs, rng = folder_runs
    grown_ids, grown_acts = runs["grown"][1]
    # subset: 2 per class of the 6 (the seeded selection)
    sub = copy.deepcopy(config)
    sub["stimuli"]["per_class"] = 2
    wf.write_config(sub)
    wf.run(*ACTIVATIONS)
    assert counts(wf) == {"squeeze": (0, 6)}
    sub_ids, sub_acts = state(wf)
    for name, values in sub_acts.items():
        np.testing.assert_array_equal(values, grown_acts[name][[grown_ids.index(i) for i in sub_ids]])
    assert_close_to_cold(wf, tmp_path)
    # reorder: the tutorial's seeded selection order instead of sorted paths is not a folder
    # option, so rename the class folders (same images, another class order)
    wf.write_config(config)
    (root / "img" / "apple").rename(root / "img" / "zz_apple")
    wf.run(*ACTIVATIONS)
    assert counts(wf) == {"squeeze": (0, 17)}
    new_ids, new_acts = state(wf)
    moved = [grown_ids.index(i.replace("zz_apple", "apple")) for i in new_ids]
    assert moved != sorted(moved)
    for name, values in new_acts.items():
        np.testing.assert_array_equal(values, grown_acts[name][moved])
    # one image's bytes changed (same file name): that image alone is forwarded
    save_image(root / "img" / "moth" / "k.bmp", rng)
    wf.run(*ACTIVATIONS)
    assert counts(wf) == {"squeeze": (1, 16)}
    assert_close_to_cold(wf, tmp_path)


def test_every_stored_shard_is_referenced_by_the_current_files(folder_runs):
    """After five states, three shards (the first 15, the 2 added, the edited image): all named by
    the activation folder's manifest, so prune keeps them (tests/test_shards.py prunes others)."""
    wf, root, config, runs, rng = folder_runs
    found = shards.all_shards(wf.path("results/store"))
    manifest = json.loads(wf.path(f"results/activations/squeeze/{shards.MANIFEST}").read_text())
    assert len(found) == 3 * 2 and sorted(manifest) == ["f12", "f5"]
    assert sorted(p.name for paths in manifest.values() for p in map(Path, paths)) == sorted(p.name for p in found)
    assert shards.prune(wf.path("results/store"), dry_run=True) == []


@pytest.mark.parametrize("grown", [20])
def test_cifar_10_to_20_per_class_forwards_only_the_new_ten(tmp_path, grown):
    cifar = write_cifar10(tmp_path / "cifar", per_class=20, n_classes=2)
    config = {"stimuli": {"source": "cifar10", "root": str(cifar), "per_class": 10, "seed": 42},
              "models": {"squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"f12": "features.12"}}},
              "extraction": EXTRACTION}
    wf = Workflow(tmp_path)
    wf.write_config(config)
    wf.run(*ACTIVATIONS)
    assert counts(wf) == {"squeeze": (20, 0)}
    config["stimuli"]["per_class"] = grown
    wf.write_config(config)
    wf.run(*ACTIVATIONS)
    assert counts(wf) == {"squeeze": (20, 20)}
    assert_close_to_cold_models(wf, tmp_path, {"squeeze": config["models"]["squeeze"]})


def assert_close_to_cold_models(wf, tmp_path, models):
    for model, layers in cold(wf, tmp_path, models).items():
        ours = read_folder(wf.path(f"results/activations/{model}"))
        for label, (values, attrs) in layers.items():
            np.testing.assert_allclose(ours[label][0], values, rtol=1e-5, atol=1e-6 * np.abs(values).max())
            assert ours[label][1]["stimulus_digest"] == attrs["stimulus_digest"]


def test_unchanged_set_forwards_nothing_and_writes_the_cold_bytes(folder_runs, tmp_path, monkeypatch):
    """Extraction twice on one stimulus set with one store: the second forwards nothing, and its
    layer files (and manifest) are byte for byte the first, cold, run's."""
    wf, *_ = folder_runs
    monkeypatch.setattr(shards, "STORE_DIR", tmp_path / "store")
    entry = MODELS["squeeze"]
    spec = {"model": "squeeze", "arch": entry["arch"], "weights": "none", "seed": 0,
            "layers": {"f12": {"node": "features.12", "reduce": "flatten"}, "f5": entry["layers"]["f5"]},
            "batch_size": 8, "device": "cpu", "precision": "float32", "channels_last": False}
    stim = wf.path("results/stimuli/stimuli.h5")
    first = extract_model(stim, tmp_path / "a", spec, 1, {"code_sha256": "x"})
    again = extract_model(stim, tmp_path / "b", spec, 1, {"code_sha256": "x"})
    assert (first["forwarded"], first["reused"]) == (17, 0) and (again["forwarded"], again["reused"]) == (0, 17)
    assert again["forward_passes"] == 0
    names = sorted(p.name for p in (tmp_path / "a").iterdir())
    assert names == sorted([shards.MANIFEST, "f12.h5", "f5.h5"]) == sorted(p.name for p in (tmp_path / "b").iterdir())
    for name in names:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name

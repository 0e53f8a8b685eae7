"""One workflow run mixing all five model sources in one analysis (RDMs, second order, figures),
then what edits rerun: a factory file (exactly its model's branch), another file (nothing), a
layer added to a timm model (one extraction job, one RDM computed, the others reused)."""

import os
import re

import h5py
import pytest

from test_sources import NET

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
pytest.importorskip("timm")
pytest.importorskip("open_clip")
transformers = pytest.importorskip("transformers")


def mixed_config() -> dict:
    return {
        "stimuli": {"source": "digits", "per_class": 2, "seed": 0},
        "models": {
            "squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"f": "features.12"}},
            "rn10t": {"source": "timm", "arch": "resnet10t", "weights": "none",
                      "layers": {"l2": {"node": "layer2", "reduce": "mean"}, "pool": "global_pool"}},
            "vit": {"source": "huggingface", "arch": "hf/tiny-vit", "layers": {"top": {"node": "layers.1", "reduce": "cls"}}},
            "clip": {"source": "open_clip", "arch": "ViT-B-32", "weights": "none",
                     "layers": {"b10": {"node": "transformer.resblocks.10", "reduce": "cls"}}},
            "mynet": {"source": "python", "arch": "nets/net.py:build",
                      "preprocess": {"size": [16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
                      "layers": {"conv": {"node": "relu", "reduce": "mean"}, "fc": "fc"}},
        },
        "extraction": {"batch_size": 8, "device": "cpu", "threads": 1, "gpu": False},
        "compare": {"method": "spearman"},
    }


BRANCHES = {("squeeze", "f"), ("rn10t", "l2"), ("rn10t", "pool"), ("vit", "top"), ("clip", "b10"),
            ("mynet", "conv"), ("mynet", "fc")}


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    from conftest import Workflow

    wf = Workflow(tmp_path_factory.mktemp("sources"))
    (wf.work / "nets").mkdir()
    (wf.work / "nets" / "net.py").write_text(NET)
    (wf.work / "nets" / "other.py").write_text("X = 1\n")
    cfg = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                 image_size=32, patch_size=8)
    torch.manual_seed(0)
    transformers.ViTModel(cfg).save_pretrained(wf.work / "hf" / "tiny-vit")
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(wf.work / "hf" / "tiny-vit")
    config = mixed_config()
    wf.write_config(config)
    wf.run()
    return wf, config


def test_all_five_sources_in_one_analysis(done):
    wf, _ = done
    labels = wf.path("results/second_order/main/matrix.tsv").read_text().splitlines()[0].split("\t")[1:]
    assert sorted(labels) == sorted(f"{m}/{l}" for m, l in BRANCHES)
    for fig in ("rdms.png", "main/heatmap.png", "main/mds.png"):
        assert wf.path(f"results/figures/{fig}").stat().st_size > 0
    sources = {}
    for model, layer in BRANCHES:
        with h5py.File(wf.path(f"results/activations/{model}/{layer}.h5")) as f:
            sources[model] = f.attrs["source"]
            assert f["activations"].shape[0] == 20
        with h5py.File(wf.path(f"results/rdms/euclidean/{model}/{layer}.h5")) as f:
            assert ("library_version" in f.attrs) == (model in ("rn10t", "vit", "clip"))
            assert ("factory_sha256" in f.attrs) == (model == "mynet")
    assert sources == {"squeeze": "torchvision", "rn10t": "timm", "vit": "huggingface", "clip": "open_clip",
                       "mynet": "python"}


def _branch_jobs(jobs, model):
    return {j for j in jobs if j[0] in ("activations", "rdm") and f"/{model}" in j[1]}


def test_editing_the_factory_reruns_exactly_its_model(done):
    wf, _ = done
    path = wf.work / "nets" / "net.py"
    original, stat = path.read_text(), path.stat()
    path.write_text(original + "\n# edited\n")
    try:
        jobs = wf.planned()
    finally:
        path.write_text(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert {j for j in jobs if j[0] in ("activations", "rdm")} == {
        ("activations", "results/activations/mynet"), ("rdm", "results/rdms/euclidean/mynet/conv.h5"),
        ("rdm", "results/rdms/euclidean/mynet/fc.h5")}
    other = wf.work / "nets" / "other.py"
    other.write_text("X = 2\n")
    assert wf.planned() == set()


def test_adding_a_timm_layer_runs_one_pass_and_computes_one_rdm(done):
    wf, config = done
    config["models"]["rn10t"]["layers"]["l3"] = {"node": "layer3", "reduce": "mean"}
    wf.write_config(config)
    jobs = wf.planned()
    assert {j for j in jobs if j[0] == "activations"} == {("activations", "results/activations/rn10t")}
    wf.run()
    extraction = wf.path("results/logs/activations/rn10t.log").read_text()
    assert "done: rn10t, 3 layers on cpu (cpu), N=20, 3 forward passes" in extraction
    logs = {layer: wf.path(f"results/logs/rdm/euclidean/rn10t/{layer}.log").read_text() for layer in ("l2", "pool", "l3")}
    assert re.search(r"computed rdm [0-9a-f]{64}", logs["l3"])
    assert all(re.search(r"reused rdm [0-9a-f]{64}", logs[layer]) for layer in ("l2", "pool"))

"""Models from every source (timm, Hugging Face, OpenCLIP, a python factory) against each library's
own model and transform, computed here directly (forward hooks or the library's hidden states, not
rsaflow's extractor); unknown architectures and nodes; missing libraries. All offline."""

import hashlib
import json
import sys

import h5py
import numpy as np
import pytest


pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
from PIL import Image  # noqa: E402

from rsaflow.errors import ConfigError  # noqa: E402
from rsaflow.extract import extract_model  # noqa: E402

BASE = {"model": "m", "seed": 3, "batch_size": 4, "device": "cpu", "precision": "float32", "channels_last": False}

#: float32 reassociation between our batches of 4 and the reference's one batch of 10 (as in
#: tests/test_extract.py): relative 1e-5, with an absolute floor of 1e-5 of the layer's largest value.
RTOL = 1e-5


def close(ours, ref):
    np.testing.assert_allclose(ours, ref, rtol=RTOL, atol=RTOL * np.abs(ref).max())


def pil(images):
    return [Image.fromarray(img.transpose(1, 2, 0)) for img in images]


def run(stimuli, tmp_path, spec):
    out = tmp_path / "m"
    extract_model(stimuli[0], out, {**BASE, **spec}, 1, {})
    result = {}
    for path in sorted(out.glob("*.h5")):
        with h5py.File(path) as f:
            result[path.stem] = (f["activations"][()], dict(f.attrs))
    return result


def hooked(model, names, call):
    """Outputs of the named modules in one forward pass, by forward hooks written here."""
    modules, out = dict(model.named_modules()), {}
    for name in names:
        modules[name].register_forward_hook(lambda m, a, o, name=name: out.__setitem__(name, o))
    with torch.no_grad():
        call()
    return out


def test_timm_two_layers_equal_timm_itself(stimuli, tmp_path):
    timm = pytest.importorskip("timm")
    layers = {"l2": {"node": "layer2", "reduce": "mean"}, "pool": {"node": "global_pool", "reduce": "flatten"}}
    got = run(stimuli, tmp_path, {"source": "timm", "arch": "resnet10t", "weights": "none", "layers": layers})
    torch.manual_seed(3)
    model = timm.create_model("resnet10t", pretrained=False).eval()
    transform = timm.data.create_transform(**timm.data.resolve_model_data_config(model), is_training=False)
    x = torch.stack([transform(im) for im in pil(stimuli[1])])
    ref = hooked(model, ["layer2", "global_pool"], lambda: model(x))
    close(got["l2"][0], ref["layer2"].mean(dim=(2, 3)).numpy())
    close(got["pool"][0], ref["global_pool"].numpy())
    attrs = got["l2"][1]
    assert attrs["source"] == "timm" and attrs["library_version"] == f"timm=={timm.__version__}"
    assert attrs["layers_by"] == "fx" and attrs["init_seed"] == 3 and json.loads(attrs["versions"])["timm"] == timm.__version__


@pytest.fixture(scope="module")
def tiny_vit(tmp_path_factory):
    """A 2-layer ViT and its image processor, written with save_pretrained (the offline path)."""
    transformers = pytest.importorskip("transformers")
    folder = tmp_path_factory.mktemp("hf") / "tiny-vit"
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                    image_size=32, patch_size=8)
    torch.manual_seed(0)
    transformers.ViTModel(config).save_pretrained(folder)
    transformers.ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


def test_huggingface_two_layers_equal_its_hidden_states(stimuli, tmp_path, tiny_vit):
    transformers = pytest.importorskip("transformers")
    layers = {"first": {"node": "layers.0", "reduce": "cls"}, "top": {"node": "layers.1", "reduce": "mean_patches"}}
    got = run(stimuli, tmp_path, {"source": "huggingface", "arch": str(tiny_vit), "weights": "pretrained",
                                  "layers": layers})
    model = transformers.AutoModel.from_pretrained(tiny_vit, local_files_only=True).eval()
    processor = transformers.AutoImageProcessor.from_pretrained(tiny_vit, local_files_only=True)
    x = processor(images=[img.transpose(1, 2, 0) for img in stimuli[1]], return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        hidden = model(pixel_values=x, output_hidden_states=True).hidden_states  # [embeddings, layer 0, layer 1]
    close(got["first"][0], hidden[1][:, 0].numpy())
    close(got["top"][0], hidden[2][:, 1:].mean(dim=1).numpy())
    attrs = got["first"][1]
    assert attrs["layers_by"] == "modules" and attrs["library_version"] == f"transformers=={transformers.__version__}"
    assert attrs["weights"] == "pretrained" and "ViTImageProcessor" in attrs["transforms_from"]


def test_open_clip_two_layers_equal_open_clip_itself(stimuli, tmp_path):
    open_clip = pytest.importorskip("open_clip")
    layers = {"b10": {"node": "transformer.resblocks.10", "reduce": "cls"},
              "post": {"node": "ln_post", "reduce": "mean_patches"}}
    got = run(stimuli, tmp_path, {"source": "open_clip", "arch": "ViT-B-32", "weights": "none",
                                                   "layers": layers})
    torch.manual_seed(3)
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    visual = model.visual.eval()
    x = torch.stack([preprocess(im) for im in pil(stimuli[1])])
    ref = hooked(visual, ["transformer.resblocks.10", "ln_post"], lambda: visual(x))
    close(got["b10"][0], ref["transformer.resblocks.10"][:, 0].numpy())
    close(got["post"][0], ref["ln_post"][:, 1:].mean(dim=1).numpy())
    assert got["b10"][1]["library_version"] == f"open_clip_torch=={open_clip.__version__}"


NET = '''
import torch
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.fc = nn.Linear(16, 5)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


class Gated(Net):
    def forward(self, x):  # data-dependent control flow: torch.fx cannot trace it
        y = self.relu(self.conv(x))
        if y.sum() > 0:
            y = y * 2
        return self.fc(torch.flatten(self.pool(y), 1))


def build():
    return Net()


def gated():
    return Gated()
'''


@pytest.fixture
def factory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "nets").mkdir()
    (tmp_path / "nets" / "net.py").write_text(NET)
    return tmp_path / "nets" / "net.py"


def _net_module(path):
    import importlib.util

    spec = importlib.util.spec_from_file_location("reference_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("func,layers_by", [("build", "fx"), ("gated", "modules")])
def test_python_factory_with_checkpoint_equals_the_module(stimuli, tmp_path, factory, func, layers_by):
    module = _net_module(factory)
    torch.manual_seed(11)
    trained = getattr(module, func)()
    torch.save(trained.state_dict(), tmp_path / "net.pt")
    pre = {"size": [16, 16], "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]}
    layers = {"conv": {"node": "relu", "reduce": "mean"}, "fc": {"node": "fc", "reduce": "flatten"}}
    got = run(stimuli, tmp_path, {"source": "python", "arch": f"nets/net.py:{func}", "weights": "net.pt",
                                  "preprocess": pre, "layers": layers})
    x = torch.from_numpy(stimuli[1]).float() / 255.0
    x = torch.nn.functional.interpolate(x, size=(16, 16), mode="bilinear", antialias=True, align_corners=False)
    x = (x - 0.5) / 0.25
    ref = hooked(trained.eval(), ["relu", "fc"], lambda: trained(x))
    close(got["conv"][0], ref["relu"].mean(dim=(2, 3)).numpy())
    close(got["fc"][0], ref["fc"].numpy())
    attrs = got["fc"][1]
    assert attrs["layers_by"] == layers_by and attrs["weights"] == "checkpoint"
    assert attrs["factory_sha256"] == hashlib.sha256(factory.read_bytes()).hexdigest()
    assert attrs["weights_sha256"] == hashlib.sha256((tmp_path / "net.pt").read_bytes()).hexdigest()


def one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message and message.startswith("config error at models.m.")
    return message


@pytest.mark.parametrize("source,arch,expect", [
    ("timm", "resnet10", "close matches: resnet10t"),
    ("open_clip", "ViT-B-31", "close matches: ViT-B-32"),
    ("torchvision", "resnet181", "close matches: resnet18"),
])
def test_unknown_architecture_one_line_with_close_matches(stimuli, tmp_path, source, arch, expect):
    pytest.importorskip({"timm": "timm", "open_clip": "open_clip", "torchvision": "torchvision"}[source])
    spec = {"source": source, "arch": arch, "weights": "none", "layers": {"a": {"node": "x", "reduce": "flatten"}}}
    with pytest.raises(ConfigError) as info:
        run(stimuli, tmp_path, spec)
    assert expect in one_line(info) and "models.m.arch" in str(info.value)


def test_unknown_nodes_one_line_with_close_matches_and_the_version(stimuli, tmp_path, tiny_vit, factory):
    import transformers

    import timm

    cases = [({"source": "timm", "arch": "resnet10t", "weights": "none"}, "layer22", "layer2", f"timm {timm.__version__}"),
             ({"source": "huggingface", "arch": str(tiny_vit)}, "encoder.layer.0", "layers.0",
              f"transformers {transformers.__version__}"),  # transformers 4 named it encoder.layer.0
             ({"source": "python", "arch": "nets/net.py:build", "weights": "none"}, "fcc", "fc", "nets/net.py:build")]
    for spec, node, expect, searched in cases:
        with pytest.raises(ConfigError) as info:
            run(stimuli, tmp_path, {"weights": "pretrained", **spec, "layers": {"a": {"node": node, "reduce": "flatten"}}})
        message = one_line(info)
        assert f"close matches: {expect}" in message and f"--source {spec['source']}" in message
        assert f"not found in {searched}" in message


def test_missing_library_names_the_extra(stimuli, tmp_path, monkeypatch):
    for module, source, extra in [("timm", "timm", "timm"), ("transformers", "huggingface", "hf"),
                                  ("open_clip", "open_clip", "clip")]:
        monkeypatch.setitem(sys.modules, module, None)  # `import module` raises ImportError
        with pytest.raises(ConfigError) as info:
            run(stimuli, tmp_path, {"source": source, "arch": "x", "weights": "none", "layers": {"a": {"node": "b", "reduce": "flatten"}}})
        assert f"pip install 'rsaflow[{extra}]'" in one_line(info)


def test_reduction_that_does_not_fit_is_refused(stimuli, tmp_path):
    pytest.importorskip("timm")
    spec = {"source": "timm", "arch": "resnet10t", "weights": "none", "layers": {"a": {"node": "layer2", "reduce": "cls"}}}
    with pytest.raises(ConfigError) as info:
        run(stimuli, tmp_path, spec)
    assert "models.m.layers.a.reduce" in one_line(info) and "needs a (N, tokens, D) output" in str(info.value)
    assert not (tmp_path / "m").exists()


def test_rsaflow_layers_for_each_source(tiny_vit, factory, capsys):
    """`rsaflow layers --source S ARCH` lists the names a config selects, with the shapes the
    extraction sees (the source's own transform decides the input size)."""
    from rsaflow import cli

    cases = [("timm", "resnet10t", "layer2.0.act2", "1x128x22x22", "nodes"),  # timm's 176 px crop: /8 -> 22
             ("huggingface", str(tiny_vit), "layers.1", "1x17x32", "modules"),  # 16 patches of 32 px + class
             ("open_clip", "ViT-B-32", "transformer.resblocks.10.add_1", "1x50x768", "nodes"),
             ("python", "nets/net.py:gated", "relu", "1x4x8x8", "modules")]  # --size 8, no transform
    for source, arch, name, shape, kind in cases:
        assert cli.main(["layers", "--source", source, arch, "--size", "8"]) == 0
        out = capsys.readouterr().out.splitlines()
        rows = dict(line.split() for line in out[1:])
        assert rows[name] == shape and f" {kind}" in out[0], (source, out[:3])
    assert cli.main(["layers", "--source", "timm", "resnet10tt"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "close matches: resnet10t" in err
    assert cli.main(["layers", "--source", "open_clip", "--list"]) == 0
    assert "ViT-B-32" in capsys.readouterr().out.split()


def test_schema_enums_come_from_the_registries():
    """The config schema's source and reduce enums are the registries' (rsaflow.sources, rsaflow.layers)."""
    import yaml

    from conftest import REPO
    from rsaflow import sources
    from rsaflow.layers import REDUCTIONS

    schema = yaml.safe_load((REPO / "workflow/schemas/config.schema.yaml").read_text())
    entry = schema["properties"]["models"]["additionalProperties"]["properties"]
    assert entry["source"]["enum"] == list(sources.SOURCES)
    layer = entry["layers"]["oneOf"][0]["additionalProperties"]["oneOf"][1]["properties"]
    assert layer["reduce"]["enum"] == list(REDUCTIONS)


def test_torchvision_slices_are_unchanged_by_sources():
    """A torchvision entry's spec and slice have exactly the keys they had before sources existed
    (so existing results keep their content keys), with or without an explicit source: torchvision."""
    from rsaflow.config import model_spec

    plain = {"weights": "none", "layers": {"a": "avgpool", "b": {"node": "layer3", "reduce": "mean"}}}
    spec = model_spec("resnet18", plain)
    assert spec == {"arch": "resnet18", "weights": "none", "seed": 0,
                    "layers": {"a": {"node": "avgpool", "reduce": "flatten"}, "b": {"node": "layer3", "reduce": "mean"}}}
    assert model_spec("resnet18", {**plain, "source": "torchvision"}) == spec
    with pytest.raises(ConfigError, match="models.resnet18.preprocess: source torchvision takes no preprocess"):
        model_spec("resnet18", {**plain, "preprocess": {"size": [8, 8]}})

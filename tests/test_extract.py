"""Extraction against a direct torchvision computation written out as in the tutorial."""

import h5py
import numpy as np
import pytest


pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torchvision.models.feature_extraction import create_feature_extractor  # noqa: E402

from rsaflow import extract, shards  # noqa: E402
from rsaflow.extract import extract_model  # noqa: E402
from rsaflow.layers import reduce_output  # noqa: E402

BASE = {"model": "m", "weights": "none", "seed": 3, "batch_size": 3, "device": "cpu",
        "precision": "float32", "channels_last": False}


def direct(arch, node, images, seed, post):
    """Untrained model seeded like ours, float images in [0, 1], the default weights' transforms."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None).eval()
    transforms = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
    x = transforms(torch.from_numpy(images).float() / 255.0)
    with torch.no_grad():
        out = create_feature_extractor(model, {node: "o"})(x)["o"]
    return post(out).numpy()


def run(stimuli, tmp_path, node, reduce, **spec):
    """One layer ``l`` through the one-pass extractor."""
    out = tmp_path / "m"
    extract_model(stimuli[0], out, {**BASE, **spec, "layers": {"l": {"node": node, "reduce": reduce}}}, 1, {})
    with h5py.File(out / "l.h5") as f:
        return f["activations"][()], dict(f.attrs)


def read_all(folder):
    out = {}
    for path in sorted(folder.glob("*.h5")):
        with h5py.File(path) as f:
            out[path.stem] = (f["activations"][()], dict(f.attrs))
    return out


SWEEP = {f"l{i}": {"node": n, "reduce": r} for i, (n, r) in enumerate([
    ("layer1.0.relu", "flatten"), ("layer1.1.relu_1", "mean"), ("layer2", "mean"), ("layer3.0.relu_1", "flatten"),
    ("layer4", "flatten"), ("avgpool", "flatten"), ("fc", "flatten"), ("layer2", "flatten")])}


def test_one_pass_equals_single_node_extraction_bit_for_bit(stimuli, tmp_path, monkeypatch):
    """Every layer of an 8-layer sweep equals extracting that layer alone (same batch size), and the
    model runs exactly ceil(N / batch_size) forward passes (counted by a hook on its first module)."""
    calls = []
    original = extract.build_model

    def hooked(*args):
        built = original(*args)
        built.model.conv1.register_forward_hook(lambda *a: calls.append(1))
        return built

    monkeypatch.setattr(extract, "build_model", hooked)
    spec = {**BASE, "arch": "resnet18", "batch_size": 4, "layers": SWEEP}
    summary = extract_model(stimuli[0], tmp_path / "all", spec, 1, {})
    assert len(calls) == summary["forward_passes"] == 3  # ceil(10 / 4)
    together = read_all(tmp_path / "all")
    assert sorted(together) == sorted(SWEEP)
    for label, layer in SWEEP.items():
        # A store of its own: else the layer's rows would be reused from the sweep's shards.
        monkeypatch.setattr(shards, "STORE_DIR", tmp_path / f"store-{label}")
        extract_model(stimuli[0], tmp_path / label, {**spec, "layers": {label: layer}}, 1, {})
        alone = read_all(tmp_path / label)[label]
        np.testing.assert_array_equal(together[label][0], alone[0])
        assert together[label][1]["data_sha256"] == alone[1]["data_sha256"]
        import hashlib

        assert alone[1]["data_sha256"] == hashlib.sha256(np.ascontiguousarray(alone[0]).tobytes()).hexdigest()
    assert together["l2"][0].shape == (10, 128) and together["l7"][0].shape == (10, 128 * 28 * 28)
    assert len(calls) == 3 + 3 * len(SWEEP)


def test_failed_extraction_leaves_no_folder(stimuli, tmp_path):
    spec = {**BASE, "arch": "vit_b_16", "layers": {"ok": {"node": "encoder.ln", "reduce": "cls"},
                                                   "bad": {"node": "heads", "reduce": "cls"}}}
    with pytest.raises(Exception, match="reduce"):
        extract_model(stimuli[0], tmp_path / "m", spec, 1, {})
    assert [p.name for p in tmp_path.iterdir() if p.name != "results"] == []  # results/: the test's store
    assert shards.all_shards() == []  # nor a shard of the layer that did work


def test_flatten_matches_direct_torchvision(stimuli, tmp_path):
    ours, attrs = run(stimuli, tmp_path, arch="resnet18", node="avgpool", reduce="flatten")
    ref = direct("resnet18", "avgpool", stimuli[1], 3, lambda o: torch.squeeze(o))
    assert ours.shape == (10, 512) and ours.dtype == np.float32
    np.testing.assert_allclose(ours, ref, rtol=1e-5, atol=1e-6)  # batch 3 vs 10: float32 reassociation only
    assert attrs["arch"] == "resnet18" and attrs["weights"] == "none" and attrs["init_seed"] == 3
    assert attrs["device"] == "cpu" and len(attrs["stimulus_digest"]) == 64


def test_vit_class_token(stimuli, tmp_path):
    ours, attrs = run(stimuli, tmp_path, arch="vit_b_16", node="encoder.ln", reduce="cls",
                      batch_size=5)
    ref = direct("vit_b_16", "encoder.ln", stimuli[1], 3, lambda o: o[:, 0, :])
    assert ours.shape == (10, 768)
    np.testing.assert_allclose(ours, ref, rtol=1e-4, atol=1e-5)


def test_channels_last_changes_only_rounding(stimuli, tmp_path):
    a, _ = run(stimuli, tmp_path, arch="resnet18", node="layer2", reduce="mean", channels_last=False)
    b, _ = run(stimuli, tmp_path, arch="resnet18", node="layer2", reduce="mean", channels_last=True)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)


def test_checkpoint_equals_the_model_it_came_from(stimuli, tmp_path):
    torch.manual_seed(3)
    ckpt = tmp_path / "r18.pt"
    torch.save({"state_dict": torchvision.models.resnet18().state_dict()}, ckpt)
    from_ckpt, attrs = run(stimuli, tmp_path, arch="resnet18", node="avgpool", reduce="flatten", weights=str(ckpt))
    untrained, _ = run(stimuli, tmp_path, arch="resnet18", node="avgpool", reduce="flatten")
    np.testing.assert_array_equal(from_ckpt, untrained)
    assert attrs["weights"] == "checkpoint" and len(attrs["weights_sha256"]) == 64


def test_reductions():
    x = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).reshape(2, 3, 4, 5)
    assert reduce_output(x, "flatten").shape == (2, 60)
    np.testing.assert_allclose(reduce_output(x, "mean").numpy(), x.numpy().mean(axis=(2, 3)))
    tokens = torch.randn(2, 7, 4)
    np.testing.assert_array_equal(reduce_output(tokens, "cls").numpy(), tokens[:, 0].numpy())
    np.testing.assert_allclose(reduce_output(tokens, "mean").numpy(), tokens.numpy().mean(axis=1), rtol=1e-6)


def test_progress_lines_in_log(stimuli, tmp_path, caplog):
    caplog.set_level("INFO")
    run(stimuli, tmp_path, arch="resnet18", node="avgpool", reduce="flatten")
    text = caplog.text
    assert "batch 4/4, 10/10 images" in text and "images/s" in text
    assert "m/l (node avgpool, flatten): N=10, M=512, data sha256 " in text
    assert "done: m, 1 layers on cpu (cpu), N=10, 4 forward passes" in text


def test_duplicate_images_are_forwarded_once_and_rows_follow_any_order(stimuli, tmp_path):
    """A set holding one image twice forwards it once; a later set in another order (with the
    duplicate) forwards nothing and its rows are the first run's rows, moved."""
    from rsaflow import h5io
    from rsaflow.stimuli import stimulus_digest

    def stim(name, order):
        images, labels, idx = stimuli[1][order], np.zeros(len(order), dtype=np.int64), np.array(order)
        path = tmp_path / f"{name}.h5"
        h5io.write_h5(path, "stimuli", {"images": images, "labels": labels, "indices": idx,
                                        "class_names": np.array(["c"], dtype=object)},
                      {"digest": stimulus_digest(images, labels, idx, ["c"]), "source": {}})
        return path

    spec = {**BASE, "arch": "squeezenet1_1", "layers": {"f": {"node": "features.12", "reduce": "mean"}}}
    first = extract_model(stim("a", [0, 1, 2, 1, 3]), tmp_path / "a", spec, 1, {})
    assert (first["forwarded"], first["reused"], first["forward_passes"]) == (4, 0, 2)  # ceil(4 / 3)
    again = extract_model(stim("b", [3, 1, 1, 0]), tmp_path / "b", spec, 1, {})
    assert (again["forwarded"], again["reused"]) == (0, 4)
    a, b = read_all(tmp_path / "a")["f"][0], read_all(tmp_path / "b")["f"][0]
    np.testing.assert_array_equal(a[1], a[3])
    np.testing.assert_array_equal(b, a[[4, 1, 1, 0]])

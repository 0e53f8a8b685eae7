"""Extraction against a direct torchvision computation written out as in the tutorial."""

import h5py
import numpy as np
import pytest

from rsaflow.jobs.stimuli import write_stimuli

pytestmark = pytest.mark.slow
torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")
from torchvision.models.feature_extraction import create_feature_extractor  # noqa: E402

from rsaflow.extract import extract_activations, reduce_output  # noqa: E402

BASE = {"model": "m", "weights": "none", "seed": 3, "layer": "l", "batch_size": 3, "device": "cpu",
        "precision": "float32", "channels_last": False}


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    path = tmp_path_factory.mktemp("stim") / "stimuli.h5"
    write_stimuli(path, {"source": "digits", "per_class": 1, "seed": 0}, [])
    with h5py.File(path) as f:
        return path, f["images"][()]


def direct(arch, node, images, seed, post):
    """Untrained model seeded like ours, float images in [0, 1], the default weights' transforms."""
    torch.manual_seed(seed)
    model = torchvision.models.get_model(arch, weights=None).eval()
    transforms = torchvision.models.get_model_weights(arch).DEFAULT.transforms()
    x = transforms(torch.from_numpy(images).float() / 255.0)
    with torch.no_grad():
        out = create_feature_extractor(model, {node: "o"})(x)["o"]
    return post(out).numpy()


def run(stimuli, tmp_path, **spec):
    out = tmp_path / "a.h5"
    extract_activations(stimuli[0], out, {**BASE, **spec}, 1, {"config": spec})
    with h5py.File(out) as f:
        return f["activations"][()], dict(f.attrs)


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
    assert "done: m/l on cpu (cpu), N=10, M=512" in text

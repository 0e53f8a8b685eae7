"""Every bad input stops with one clear message naming the key or file, and leaves no output behind."""

import h5py
import numpy as np
import pytest
import yaml

from conftest import tiny_config
from rsaflow import h5io
from rsaflow.errors import ConfigError, InputFileError, RsaflowError
from rsaflow.jobs.rdm import write_rdm
from rsaflow.jobs.second_order import write_second_order
from rsaflow.jobs.stimuli import write_stimuli

SPEC = {"model": "net", "arch": "resnet18", "weights": "none", "seed": 0, "batch_size": 4, "device": "cpu",
        "precision": "float32", "channels_last": False}
LAYER = {"node": "avgpool", "reduce": "flatten"}


def leftovers(folder):
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


# ---- config errors found at DAG-build time, before any job runs ---------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(
    "edit, expected",
    [
        # schema-level mistakes (all kinds: tests/test_schema_errors.py), each one line
        (lambda c: c.update(modles=c.pop("models")),
         "config error at modles: unknown key 'modles' is not allowed; allowed: stimuli, models, extraction, "),
        (lambda c: c["models"]["resnet18"]["layers"]["layer3"].update(reduce="median"),
         "config error at models.resnet18.layers.layer3.reduce: 'median' is not allowed; allowed: flatten, cls, mean, mean_patches, last; close matches: mean\n"),
        (lambda c: c["models"]["resnet18"]["layers"].update(again="avgpool"), "computed twice"),
        (lambda c: c["stimuli"].update(source="folder", root="/nonexistent/images"), "stimuli.root: folder /nonexistent/images does not exist"),
        (lambda c: c["models"]["squeeze"].update(arch="squeezenet1_9"),
         "config error at models.squeeze.arch: unknown torchvision classification architecture 'squeezenet1_9'; close matches: squeezenet1_1, squeezenet1_0"),
        (lambda c: c["models"]["squeeze"]["layers"].update(features="features.99"),
         "config error at models.squeeze.layers.features: node 'features.99' not found in squeezenet1_1; close matches: "),
        (lambda c: c["models"]["squeeze"].update(weights="IMAGENET"),
         "config error at models.squeeze.weights: 'IMAGENET' is neither a weights name of squeezenet1_1 (DEFAULT, IMAGENET1K_V1)"),
        (lambda c: c.update(models={"squeeze": c["models"]["squeeze"]}, compare={"bootstrap": 10}),
         "config error at compare: bootstrap and permutations compare RDMs, but the config gives 1"),
    ],
    ids=["unknown-key", "bad-reduce-in-oneOf", "duplicate-branch", "missing-folder",
         "unknown-arch", "unknown-node", "unknown-weights", "inference-one-rdm"],
)
def test_config_errors_before_any_job(workflow, cifar_root, edit, expected):
    config = tiny_config(cifar_root)
    edit(config)
    workflow.write_config(config)
    proc = workflow.run("-n", check=False)
    assert proc.returncode != 0
    assert expected in proc.stdout + proc.stderr
    assert "Failed validating" not in proc.stderr and "is not valid under any" not in proc.stderr  # no schema dump
    assert not workflow.path("results").exists()


# ---- errors found by the jobs, before any long computation ----------------------------------------


@pytest.fixture(scope="module")
def stimuli_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("stim") / "stimuli.h5"
    write_stimuli(path, {"source": "digits", "per_class": 1, "seed": 0}, [])
    return path


def extract(stimuli_file, tmp_path, **changes):
    """Extract layer ``pool`` (plus a valid second layer, so that one bad layer fails the whole job)."""
    from rsaflow.extract import extract_model

    layer = {k: changes.pop(k, v) for k, v in LAYER.items()}
    out = tmp_path / "out" / "net"
    try:
        extract_model(stimuli_file, out, {**SPEC, **changes, "layers": {"pool": layer, "ok": LAYER}}, 1, {})
    finally:
        assert not out.exists() and leftovers(out.parent) == []
    return out


@pytest.mark.slow
@pytest.mark.parametrize(
    "changes, error, expected",
    [
        ({"arch": "resnet81"}, ConfigError, "models.net.arch: unknown torchvision classification architecture 'resnet81'; close matches: resnet18"),
        ({"node": "avgpol"}, ConfigError, "models.net.layers.pool: node 'avgpol' not found in resnet18; close matches: avgpool, maxpool (list all with: rsaflow layers resnet18)"),
        ({"weights": "IMAGENET1K_V9"}, ConfigError, "models.net.weights: 'IMAGENET1K_V9' is neither a weights name of resnet18 (DEFAULT, IMAGENET1K_V1)"),
        ({"weights": "/nonexistent/ckpt.pt"}, ConfigError, "models.net.weights: checkpoint /nonexistent/ckpt.pt not found"),
        ({"reduce": "cls"}, ConfigError, "models.net.layers.pool.reduce: reduce 'cls' needs a (N, tokens, D) output, got shape (4, 512, 1, 1)"),
    ],
    ids=["unknown-arch", "unknown-node", "unknown-weights", "missing-checkpoint", "cls-on-conv"],
)
def test_extraction_errors(stimuli_file, tmp_path, changes, error, expected):
    with pytest.raises(error) as info:
        extract(stimuli_file, tmp_path, **changes)
    assert expected in str(info.value)


@pytest.mark.slow
def test_weights_not_cached_offline(stimuli_file, tmp_path, monkeypatch):
    """No silent random weights: a missing weights file is an error naming the file and the cache folder."""
    import torch

    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))

    def offline(*args, **kwargs):
        raise OSError("network unreachable (test)")

    monkeypatch.setattr(torch.hub, "download_url_to_file", offline)
    with pytest.raises(ConfigError) as info:
        extract(stimuli_file, tmp_path, weights="IMAGENET1K_V1")
    msg = str(info.value)
    assert "models.net.weights" in msg and "resnet18-f37072fd.pth is not in the cache folder" in msg
    assert str(tmp_path / "hub" / "checkpoints") in msg


@pytest.mark.slow
def test_checkpoint_with_wrong_keys(stimuli_file, tmp_path):
    import torch
    import torchvision

    ckpt = tmp_path / "alexnet.pt"
    torch.save(torchvision.models.alexnet().state_dict(), ckpt)
    with pytest.raises(InputFileError, match=r"alexnet.pt: checkpoint does not fit resnet18 \(\d+ tensors of resnet18 missing"):
        extract(stimuli_file, tmp_path, weights=str(ckpt))


@pytest.mark.slow
def test_checkpoint_that_is_not_a_state_dict(stimuli_file, tmp_path):
    ckpt = tmp_path / "junk.pt"
    ckpt.write_bytes(b"\x00garbage")
    with pytest.raises(InputFileError, match="junk.pt: not a torch checkpoint"):
        extract(stimuli_file, tmp_path, weights=str(ckpt))


@pytest.mark.slow
def test_cuda_requested_without_cuda(stimuli_file, tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    with pytest.raises(ConfigError, match="extraction.device: device 'cuda' requested but CUDA is not available"):
        extract(stimuli_file, tmp_path, device="cuda")


def test_missing_cifar10_job_writes_nothing(tmp_path):
    out = tmp_path / "stim" / "stimuli.h5"
    with pytest.raises(ConfigError, match="stimuli.root: CIFAR10 test split not found"):
        write_stimuli(out, {"source": "cifar10", "root": str(tmp_path / "none"), "per_class": 2, "seed": 42}, [])
    assert not out.exists() and leftovers(out.parent) == []


def test_per_class_too_large_job_writes_nothing(tmp_path):
    out = tmp_path / "stim" / "stimuli.h5"
    with pytest.raises(ConfigError, match=r"stimuli.per_class: per_class=500 .*images per class in digits: \{'0': 178"):
        write_stimuli(out, {"source": "digits", "per_class": 500, "seed": 42}, [])
    assert not out.exists()


# ---- degenerate and foreign data ---------------------------------------------------------------


def activations_file(path, values, model="net", layer="pool", digest="d1"):
    h5io.write_h5(path, "activations", {"activations": np.asarray(values, dtype=np.float32)},
                  {"model": model, "layer": layer, "stimulus_digest": digest})
    return path


RDM_SPEC = {"metric": "euclidean", "block": 4096}


def test_nan_activations(tmp_path):
    values = np.random.default_rng(0).random((6, 4))
    values[2, 1] = np.nan
    src = activations_file(tmp_path / "a.h5", values)
    with pytest.raises(InputFileError, match=r"a.h5: cannot compute an RDM: 1 activations are NaN or Inf in 1 stimuli"):
        write_rdm(src, tmp_path / "r.h5", RDM_SPEC, [])
    assert not (tmp_path / "r.h5").exists()


def test_constant_activations(tmp_path):
    src = activations_file(tmp_path / "a.h5", np.ones((6, 4)), model="alexnet", layer="fc7")
    with pytest.raises(InputFileError, match="model 'alexnet' layer 'fc7': all dissimilarities are equal"):
        write_rdm(src, tmp_path / "r.h5", RDM_SPEC, [])
    assert not (tmp_path / "r.h5").exists()


def test_truncated_hdf5(tmp_path):
    src = activations_file(tmp_path / "a.h5", np.random.default_rng(0).random((6, 4)))
    data = src.read_bytes()
    src.write_bytes(data[: len(data) // 2])
    with pytest.raises(InputFileError, match="a.h5: not a readable HDF5 file"):
        write_rdm(src, tmp_path / "r.h5", RDM_SPEC, [])
    assert not (tmp_path / "r.h5").exists()


def test_foreign_hdf5(tmp_path):
    with h5py.File(tmp_path / "foreign.h5", "w") as f:
        f["features"] = np.zeros((3, 3))
    with pytest.raises(InputFileError, match="foreign.h5: expected an rsaflow 'activations' file, found kind None"):
        write_rdm(tmp_path / "foreign.h5", tmp_path / "r.h5", RDM_SPEC, [])


def test_wrong_shape_hdf5(tmp_path):
    with h5py.File(tmp_path / "flat.h5", "w") as f:
        f.attrs["rsaflow_kind"] = "activations"
        f["activations"] = np.zeros(5)
    with pytest.raises(InputFileError, match="flat.h5: dataset 'activations' has 1 dimensions, expected 2"):
        write_rdm(tmp_path / "flat.h5", tmp_path / "r.h5", RDM_SPEC, [])


def test_rdms_of_different_stimuli_are_not_compared(tmp_path):
    rng = np.random.default_rng(0)
    a = activations_file(tmp_path / "a.h5", rng.random((6, 4)), model="a", digest="digest-one")
    b = activations_file(tmp_path / "b.h5", rng.random((6, 4)), model="b", digest="digest-two")
    write_rdm(a, tmp_path / "ra.h5", RDM_SPEC, [])
    write_rdm(b, tmp_path / "rb.h5", RDM_SPEC, [])
    out = tmp_path / "so.h5"
    with pytest.raises(InputFileError, match="rb.h5: stimulus digest digest-two differs from digest-one"):
        write_second_order([tmp_path / "ra.h5", tmp_path / "rb.h5"], out, tmp_path / "so.tsv", {"method": "spearman"}, [])
    assert not out.exists() and not (tmp_path / "so.tsv").exists()


def test_messages_are_one_line():
    err = ConfigError("models.x.weights", "bad")
    assert str(err) == "config error at models.x.weights: bad" and isinstance(err, RsaflowError)


@pytest.mark.slow
def test_job_error_reaches_the_user_and_the_log(workflow, cifar_root):
    """A mistake only the model's output reveals (a class token of a convolutional layer)."""
    config = tiny_config(cifar_root)
    config["models"]["squeeze"]["layers"]["features"] = {"node": "features.12", "reduce": "cls"}
    workflow.write_config(config)
    proc = workflow.run(check=False)
    assert proc.returncode != 0
    msg = "config error at models.squeeze.layers.features.reduce: reduce 'cls' needs a (N, tokens, D) output"
    assert msg in proc.stdout + proc.stderr
    assert msg in workflow.path("results/logs/activations/squeeze.log").read_text()
    assert "Traceback" not in workflow.path("results/logs/activations/squeeze.log").read_text()
    assert not workflow.path("results/activations/squeeze/features.h5").exists()
    assert yaml.safe_load(workflow.config_path.read_text())  # the config file itself is untouched

"""No stale result passes as current: every config path is checked before any job, and consumers
refuse inputs whose recorded provenance disagrees with the config."""

import copy

import numpy as np
import pytest

from conftest import Workflow, tiny_config, write_cifar10
from rsaflow import h5io
from rsaflow.errors import InputFileError
from rsaflow.jobs.rdm import write_rdm

torch = pytest.importorskip("torch")
torchvision = pytest.importorskip("torchvision")


def save_resnet18(path, seed):
    torch.manual_seed(seed)
    torch.save(torchvision.models.resnet18().state_dict(), path)
    return str(path)


def save_rdm(path, seed, n=30):
    x = np.random.default_rng(seed).normal(size=(n, 4))
    np.save(path, np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1)))
    return str(path)


@pytest.fixture(scope="module")
def done(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    wf = Workflow(root)
    config = tiny_config(write_cifar10(root / "cifar"))
    config["models"]["resnet18"] = {"weights": save_resnet18(root / "a.pt", 1), "layers": {"avgpool": "avgpool"}}
    config["external_rdms"] = {"brain": {"path": save_rdm(root / "brain.npy", 0), "order": "stimuli"}}
    wf.write_config(config)
    wf.run()
    return wf, config, root


def snapshot(wf):
    return {p: (p.stat().st_mtime_ns, p.stat().st_size) for p in wf.path("results").rglob("*") if p.is_file()}


@pytest.mark.slow
@pytest.mark.parametrize("key", ["models.resnet18.weights", "external_rdms.brain.path", "stimuli.root"])
def test_missing_path_is_one_config_error_and_changes_nothing(done, key):
    wf, config, root = done
    changed = copy.deepcopy(config)
    missing = str(root / "nowhere" / "file.x")
    if key == "models.resnet18.weights":
        changed["models"]["resnet18"]["weights"] = missing
    elif key == "external_rdms.brain.path":
        changed["external_rdms"]["brain"]["path"] = missing
    else:
        changed["stimuli"]["root"] = str(root / "nowhere")
    before = snapshot(wf)
    wf.write_config(changed)
    try:
        proc = wf.run(check=False)
    finally:
        wf.write_config(config)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0
    assert f"config error at {key}: {root / 'nowhere'}" in out, out[-3000:]
    assert "does not exist" in out and "Traceback" not in out and "MissingInputException" not in out
    assert snapshot(wf) == before


@pytest.mark.slow
def test_another_checkpoint_reruns_exactly_its_model(done):
    wf, config, root = done
    changed = copy.deepcopy(config)
    changed["models"]["resnet18"]["weights"] = save_resnet18(root / "b.pt", 2)
    jobs = wf.planned_with(changed)
    assert {j for j in jobs if j[0] in ("activations", "rdm", "external_rdm", "stimuli")} == {
        ("activations", "results/activations/resnet18"), ("rdm", "results/rdms/euclidean/resnet18/avgpool.h5")}


@pytest.mark.slow
def test_another_external_file_reruns_exactly_that_rdm(done):
    wf, config, root = done
    changed = copy.deepcopy(config)
    changed["external_rdms"]["brain"]["path"] = save_rdm(root / "brain2.npy", 5)
    jobs = wf.planned_with(changed)
    assert {j for j in jobs if j[0] in ("activations", "rdm", "external_rdm", "stimuli")} == {
        ("external_rdm", "results/external/brain.h5")}
    assert "second_order" in {rule for rule, _ in jobs}


@pytest.mark.slow
def test_another_stimulus_root_reruns_everything_from_the_stimuli(done):
    wf, config, root = done
    changed = copy.deepcopy(config)
    changed["stimuli"]["root"] = str(write_cifar10(root / "cifar2", seed=3))
    rules = {rule for rule, _ in wf.planned_with(changed)}
    assert {"stimuli", "activations", "rdm", "external_rdm", "second_order"} <= rules


@pytest.mark.slow
def test_a_rerun_with_the_config_back_reuses_and_plans_nothing(done):
    wf, _, _ = done
    assert wf.planned() == set()


def test_consumer_refuses_an_activation_file_of_another_config(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the store is results/store under the working directory
    path = tmp_path / "l.h5"
    recorded = {"model": "m", "layer": "l", "node": "avgpool", "reduce": "flatten", "weights": "/old/a.pt"}
    h5io.write_h5(path, "activations", {"activations": np.random.default_rng(0).normal(size=(5, 3)).astype("f4")},
                  {"config": recorded, "model": "m", "layer": "l", "stimulus_digest": "d"})
    expect = {**recorded, "weights": "/new/b.pt"}
    with pytest.raises(InputFileError) as info:
        write_rdm(path, tmp_path / "r.h5", {"metric": "euclidean", "block": 8}, "code", expect)
    msg = str(info.value)
    assert str(path) in msg and '"/old/a.pt"' in msg and '"/new/b.pt"' in msg and "stale" in msg
    assert not (tmp_path / "r.h5").exists()
    write_rdm(path, tmp_path / "r.h5", {"metric": "euclidean", "block": 8}, "code", recorded)  # matching: accepted
    assert (tmp_path / "r.h5").exists()

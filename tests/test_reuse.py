"""One forward pass per model, and no per-layer product computed twice (the content-addressed store).

Snakemake reruns every job downstream of a rewritten file; these tests run the workflow and read
the job logs to check which products were ``computed`` and which ``reused`` from results/store.
"""

import copy
import os
import re
import time

import h5py
import numpy as np
import pytest

from conftest import Workflow, tiny_config, write_cifar10
from rsaflow import store
from rsaflow.results import read_rdm

pytestmark = pytest.mark.slow


def test_store_fetch_put_prune(tmp_path):
    root = tmp_path / "store"
    src = tmp_path / "a.h5"
    src.write_bytes(b"payload")
    key = store.make_key("rdm", {"activations": "abc"}, {"metric": "euclidean"})
    assert key != store.make_key("rdm", {"activations": "abd"}, {"metric": "euclidean"})
    assert key == store.make_key("rdm", {"activations": "abc"}, {"metric": "euclidean"})
    assert not store.fetch("rdm", key, tmp_path / "b.h5", root)
    obj = store.put("rdm", key, src, root)
    assert obj.read_bytes() == b"payload" and obj.stat().st_nlink == 2  # hard link, no copy
    old = time.time() - 3600
    os.utime(obj, (old, old))
    assert store.fetch("rdm", key, tmp_path / "b.h5", root)
    assert (tmp_path / "b.h5").read_bytes() == b"payload"
    assert (tmp_path / "b.h5").stat().st_mtime > old + 3000  # fresh for Snakemake's mtime check
    assert store.prune(root) == []  # still linked from a.h5 and b.h5
    src.unlink()
    (tmp_path / "b.h5").unlink()
    assert store.summary(root) == {"rdm": {"objects": 1, "bytes": 7, "unreferenced": 1}}
    assert store.prune(root, dry_run=True) == [obj] and obj.exists()
    assert store.prune(root) == [obj] and not obj.exists()


def outcome(wf, rule_dir, model, layer):
    """'computed', 'reused' or None (the job did not run since the log was cleared)."""
    path = wf.path(f"results/logs/{rule_dir}/{model}/{layer}.log")
    text = path.read_text() if path.exists() else ""
    found = re.findall(r"\b(computed|reused) (?:rdm|cka) [0-9a-f]{64}", text)
    assert len(found) <= 1, text
    return found[0] if found else None


def clear_logs(wf):
    for path in wf.path("results/logs").rglob("*.log"):
        path.unlink()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("reuse")
    wf = Workflow(root)
    config = tiny_config(write_cifar10(root / "cifar", per_class=3))
    config["analyses"] = {"cka": {"method": "cka"}}
    wf.write_config(config)
    wf.run()
    return wf, config


#: The config the workflow was last run with: each test below changes the previous test's config.
CURRENT: dict = {}


def rerun(wf, config):
    clear_logs(wf)
    wf.write_config(config)
    wf.run()
    CURRENT["config"] = config


def last(config):
    return copy.deepcopy(CURRENT.get("config", config))


def test_first_run_computes_everything(run):
    wf, _ = run
    # (the module fixture ran the workflow; its logs are still there before any rerun)
    for model, layer in [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features")]:
        assert outcome(wf, "rdm/euclidean", model, layer) == "computed"
        assert outcome(wf, "kernel/cka", model, layer) == "computed"


def test_adding_a_layer_runs_one_pass_and_computes_one_rdm(run):
    wf, config = run
    config = last(config)
    config["models"]["squeeze"]["layers"]["early"] = "features.3"
    before = read_rdm(wf.path("results/rdms/euclidean/squeeze/features.h5"))["condensed"]
    rerun(wf, config)
    log = wf.path("results/logs/activations/squeeze.log").read_text()
    assert "2 layers on cpu (cpu), N=30, 4 forward passes" in log  # ceil(30 / 8), once for both layers
    assert not wf.path("results/logs/activations/resnet18.log").exists()
    assert outcome(wf, "rdm/euclidean", "squeeze", "early") == "computed"
    assert outcome(wf, "rdm/euclidean", "squeeze", "features") == "reused"
    assert outcome(wf, "kernel/cka", "squeeze", "early") == "computed"
    assert outcome(wf, "kernel/cka", "squeeze", "features") == "reused"
    assert outcome(wf, "rdm/euclidean", "resnet18", "avgpool") is None
    np.testing.assert_array_equal(read_rdm(wf.path("results/rdms/euclidean/squeeze/features.h5"))["condensed"], before)
    with h5py.File(wf.path("results/second_order/main/matrix.h5")) as f:
        assert len(f["labels"]) == 4
    assert wf.planned() == set()  # the reused files are not older than their inputs


def test_changing_a_reduction_computes_that_layer_only(run):
    wf, config = run
    config = last(config)
    config["models"]["resnet18"]["layers"]["layer3"] = {"node": "layer3", "reduce": "flatten"}
    rerun(wf, config)
    assert outcome(wf, "rdm/euclidean", "resnet18", "layer3") == "computed"
    assert outcome(wf, "rdm/euclidean", "resnet18", "avgpool") == "reused"
    assert outcome(wf, "rdm/euclidean", "squeeze", "features") is None
    with h5py.File(wf.path("results/activations/resnet18/layer3.h5")) as f:
        assert f["activations"].shape == (30, 256 * 14 * 14)


def test_changing_the_initialisation_computes_the_whole_model(run):
    wf, config = run
    config = last(config)
    config["models"]["resnet18"]["seed"] = 11
    rerun(wf, config)
    assert outcome(wf, "rdm/euclidean", "resnet18", "layer3") == "computed"
    assert outcome(wf, "rdm/euclidean", "resnet18", "avgpool") == "computed"
    assert outcome(wf, "rdm/euclidean", "squeeze", "features") is None


def test_adding_a_model_runs_only_that_model(run):
    wf, config = run
    config = last(config)
    config["models"]["mobile"] = {"arch": "mobilenet_v3_small", "weights": "none", "layers": {"pool": "avgpool"}}
    rerun(wf, config)
    assert sorted(p.name for p in wf.path("results/logs/activations").glob("*.log")) == ["mobile.log"]
    assert outcome(wf, "rdm/euclidean", "mobile", "pool") == "computed"
    assert not list(wf.path("results/logs/rdm").rglob("resnet18/*.log"))


def test_going_back_reuses_everything(run):
    """The original config again: one pass per model, every RDM and Gram from the store."""
    wf, config = run
    rerun(wf, config)
    for model, layer in [("resnet18", "avgpool"), ("resnet18", "layer3"), ("squeeze", "features")]:
        assert outcome(wf, "rdm/euclidean", model, layer) == "reused"
        assert outcome(wf, "kernel/cka", model, layer) == "reused"


def test_store_command_summarises_and_prunes(run, capsys, monkeypatch):
    from rsaflow.cli import main

    wf, _ = run
    monkeypatch.chdir(wf.work)
    monkeypatch.setattr(store, "STORE_DIR", store.Path("results") / "store")  # the default, in the workflow's dir
    assert main(["store"]) == 0
    table = capsys.readouterr().out
    assert table.startswith("kind\tobjects\tMB\tunreferenced") and "\nrdm\t" in table and "\ncka\t" in table
    assert main(["store", "--prune", "--dry-run"]) == 0
    out = capsys.readouterr().out
    # RDMs of layers the config no longer uses (an earlier seed, reduction or layer) are unreferenced
    assert "# would remove" in out
    n = int(re.search(r"would remove (\d+) objects", out).group(1))
    assert n >= 1
    assert main(["store", "--prune"]) == 0
    assert f"# removed {n} objects" in capsys.readouterr().out
    assert wf.planned() == set()  # pruning touched nothing the results use


def test_stale_lists_and_removes_results_of_removed_models(run, capsys):
    """After going back to the original config, the files of the model added earlier are stale."""
    from rsaflow.cli import main

    wf, _ = run
    args = ["--", "-s", str(wf.src / "Snakefile"), "-d", str(wf.work), "--configfile", str(wf.config_path)]
    assert main(["stale", *args]) == 0
    listed = capsys.readouterr().out.splitlines()
    names = {str(p) for p in listed if not p.startswith("#")}
    assert str(wf.path("results/rdms/euclidean/mobile/pool.h5")) in names
    assert str(wf.path("results/activations/mobile/pool.h5")) in names
    assert str(wf.path("results/kernels/cka/mobile/pool.h5")) in names
    assert not any("resnet18" in n or "squeeze/features" in n or "/store/" in n for n in names), names
    assert main(["stale", "--remove", *args]) == 0
    assert not wf.path("results/rdms/euclidean/mobile/pool.h5").exists()
    assert wf.path("results/rdms/euclidean/resnet18/avgpool.h5").exists()
    assert wf.planned() == set()

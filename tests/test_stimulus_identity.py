"""Which stimulus is which: a predictable order, images tracked by their bytes, and external RDMs
that are either matched by their stimulus ids or explicitly bound to one stimulus set."""

from __future__ import annotations

import copy
import os
from pathlib import Path
import random
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from scipy.spatial.distance import squareform
from scipy.stats import spearmanr

from conftest import Workflow, write_cifar10
from rsaflow import binding, filedigest
from rsaflow.cli import failure_cause, stale_files
from rsaflow.errors import ConfigError, RsaflowError
from rsaflow.external import MissingIdsError, carries_ids, check_ids, load_external_rdm, read_ids
from rsaflow.results import read_rdm, read_second_order
from rsaflow.schema import load_config_file
from rsaflow.stimuli import build_stimulus_set, order_table

CLASSES = ("zebra", "apple", "moth")  # created in this (unsorted) order


def write_folder(root, per_class=4, size=(16, 16), seed=0, names=("k", "b", "x", "a", "m", "c")):
    """BMP images (uncompressed: a same-size overwrite keeps the file size), files created unsorted."""
    rng = np.random.default_rng(seed)
    for cls in CLASSES:
        (root / cls).mkdir(parents=True, exist_ok=True)
        for name in names[:per_class]:
            save_image(root / cls / f"{name}.bmp", rng, size)
    return root


def save_image(path, rng, size=(16, 16)):
    Image.fromarray(rng.integers(0, 256, (*size, 3), dtype=np.uint8)).save(path)


def tutorial_selection(labels, per_class, seed):
    """The tutorial's selection written out independently: seed, shuffle, first per_class per class."""
    random.seed(seed)
    order = list(range(len(labels)))
    random.shuffle(order)
    kept = {c: [] for c in sorted(set(labels))}
    for i in order:
        if len(kept[labels[i]]) < per_class:
            kept[labels[i]].append(i)
    return [i for c in sorted(kept) for i in kept[c]]


# -- order ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("per_class", [None, 2, 3])
def test_folder_order_is_sorted_paths_within_sorted_classes(tmp_path, per_class):
    write_folder(tmp_path, per_class=4)
    s = build_stimulus_set({"source": "folder", "root": str(tmp_path), "per_class": per_class, "seed": 7})
    files = s["provenance"]["files"]
    assert files == sorted(files, key=lambda f: (f.split("/")[0], f.split("/")[1]))
    assert [f.split("/")[0] for f in files] == [c for c in sorted(CLASSES) for _ in range(per_class or 4)]
    # per_class still selects by the seeded shuffle: the kept set is the tutorial's
    every = sorted(f"{c}/{n}.bmp" for c in CLASSES for n in ("k", "b", "x", "a"))
    labels = [sorted(CLASSES).index(f.split("/")[0]) for f in every]
    chosen = {every[i] for i in tutorial_selection(labels, per_class or 4, 7)}
    assert set(files) == chosen


def test_cifar10_keeps_the_tutorials_order(tmp_path):
    root = write_cifar10(tmp_path, per_class=12)
    s = build_stimulus_set({"source": "cifar10", "root": str(root), "per_class": 5, "seed": 42})
    import pickle

    with open(root / "cifar-10-batches-py" / "test_batch", "rb") as fh:
        labels = pickle.load(fh)["labels"]
    assert s["indices"].tolist() == tutorial_selection(labels, 5, 42)


def test_order_table_lists_position_id_and_class():
    text = order_table(["b/1.png", "a/0.png"], np.array([1, 0]), ["a", "b"])
    assert text.splitlines() == ["position\tid\tclass", "0\tb/1.png\tb", "1\ta/0.png\ta"]


# -- images tracked by content ------------------------------------------------------------------------

def test_touch_keeps_the_digest_and_a_same_size_same_mtime_overwrite_changes_it(tmp_path, monkeypatch):
    write_folder(tmp_path / "img")
    files = sorted(str(p) for p in (tmp_path / "img").glob("*/*"))
    cache = tmp_path / "cache"
    first = filedigest.content_digest(files, tmp_path / "img", cache)
    reads = []
    real = filedigest.file_sha256
    monkeypatch.setattr(filedigest, "file_sha256", lambda p: reads.append(p) or real(p))
    assert filedigest.content_digest(files, tmp_path / "img", cache) == first and reads == []  # cached
    for f in files:
        os.utime(f)  # touch: new mtime, same bytes
    assert filedigest.content_digest(files, tmp_path / "img", cache) == first and len(reads) == len(files)
    target, st = files[3], os.stat(files[3])
    save_image(target, np.random.default_rng(99))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))  # `touch -r`: the old time back
    assert os.stat(target).st_size == st.st_size and os.stat(target).st_mtime_ns == st.st_mtime_ns
    assert filedigest.content_digest(files, tmp_path / "img", cache) != first
    # the digest equals one computed without any cache, from the bytes alone
    assert filedigest.content_digest(files, tmp_path / "img", None) == filedigest.content_digest(
        files, tmp_path / "img", cache)


# -- external RDMs: ids, or an explicit, bound order ----------------------------------------------------

def random_rdm(n, seed):
    x = np.random.default_rng(seed).normal(size=(n, 3))
    return np.sqrt(((x[:, None] - x[None]) ** 2).sum(-1))


def test_an_id_less_file_is_refused_unless_required_otherwise(tmp_path):
    np.save(tmp_path / "it.npy", random_rdm(5, 0))
    with pytest.raises(MissingIdsError, match=r"it\.npy: carries no stimulus ids.*order: stimuli"):
        load_external_rdm(tmp_path / "it.npy", 5, [str(i) for i in range(5)], require_ids=True)
    assert carries_ids(tmp_path / "it.npy") is False
    with pytest.raises(ConfigError, match=r"^config error at external_rdms\.IT\.path: .*it\.npy carries no stimulus"):
        check_ids({"IT": {"path": str(tmp_path / "it.npy")}})
    check_ids({"IT": {"path": str(tmp_path / "it.npy"), "order": "stimuli"}})  # stated: no error


def test_an_ids_file_reorders_exactly(tmp_path):
    n, ids = 6, [f"s{i}" for i in range(6)]
    rdm = random_rdm(n, 1)
    perm = np.random.default_rng(2).permutation(n)
    np.save(tmp_path / "r.npy", rdm[np.ix_(perm, perm)])  # the file's row k is stimulus perm[k]
    (tmp_path / "r.ids.txt").write_text("\n".join(ids[p] for p in perm) + "\n")
    got = load_external_rdm(tmp_path / "r.npy", n, ids, read_ids(tmp_path / "r.ids.txt"), require_ids=True)
    np.testing.assert_array_equal(got, (rdm + rdm.T) / 2)  # exact: a permutation only
    table = "position\tid\tclass\n" + "".join(f"{k}\t{ids[p]}\tc\n" for k, p in enumerate(perm))
    (tmp_path / "order.tsv").write_text(table)
    assert read_ids(tmp_path / "order.tsv") == [ids[p] for p in perm]


def test_a_binding_refuses_another_stimulus_set_until_confirmed(tmp_path):
    store = tmp_path / "store"
    assert binding.check_or_bind("external_rdms.IT.path", "d/it.npy", "ab" * 32, "1" * 64, store) is True
    assert binding.check_or_bind("external_rdms.IT.path", "d/it.npy", "ab" * 32, "1" * 64, store) is False
    with pytest.raises(ConfigError, match=r"external_rdms\.IT\.path: d/it\.npy .*order: stimuli.*rsaflow bind d/it\.npy"):
        binding.check_or_bind("external_rdms.IT.path", "d/it.npy", "ab" * 32, "2" * 64, store)
    binding.bind("d/it.npy", "ab" * 32, "2" * 64, store)
    assert binding.check_or_bind("external_rdms.IT.path", "d/it.npy", "ab" * 32, "2" * 64, store) is False


# -- commands and messages --------------------------------------------------------------------------------

def test_stale_never_lists_a_tracked_file(tmp_path):
    (tmp_path / "results" / "old").mkdir(parents=True)
    (tmp_path / "results" / ".gitkeep").write_text("")
    (tmp_path / "results" / "old" / "x.h5").write_text("x")
    (tmp_path / "results" / "notes.txt").write_text("mine")
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(["git", "-C", str(tmp_path), "add", "results/.gitkeep", "results/notes.txt"], check=True)
    found = {p.relative_to(tmp_path).as_posix() for p in stale_files(tmp_path, "output_file\tdate\n")}
    assert found == {"results/old/x.h5"}


def test_failure_cause_is_the_config_error_line():
    stderr = ("Using workflow specific profile profiles/default for setting default command line arguments.\n"
              "config error at stimuli.root: folder /x does not exist\n")
    assert failure_cause(stderr) == "config error at stimuli.root: folder /x does not exist"


def test_a_yaml_syntax_error_names_file_line_and_column(tmp_path):
    bad = tmp_path / "my.yaml"
    bad.write_text("stimuli:\n  source: digits\nmodels: {resnet18: {weights: none\n")
    with pytest.raises(RsaflowError) as info:
        load_config_file(bad)
    msg = str(info.value)
    assert msg.startswith(f"{bad}:4:1: YAML syntax error:") and "\n" not in msg


# -- end to end ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def run(tmp_path_factory):
    root = tmp_path_factory.mktemp("identity")
    write_folder(root / "img", per_class=4)
    config = {
        "stimuli": {"source": "folder", "root": str(root / "img"), "per_class": 3, "seed": 0},
        "models": {"resnet18": {"weights": "none", "layers": {"avgpool": "avgpool"}}},
        "extraction": {"batch_size": 16, "device": "cpu", "threads": 1, "gpu": False},
    }
    wf = Workflow(root)
    wf.write_config(config)
    wf.run("results/stimuli/order.tsv")
    return wf, config, root


def order_ids(wf):
    return [line.split("\t")[1] for line in wf.path("results/stimuli/order.tsv").read_text().splitlines()[1:]]


@pytest.mark.slow
def test_workflow_order_table_and_external_rdms_by_id_and_by_binding(run):
    wf, config, root = run
    ids = order_ids(wf)
    assert ids == sorted(ids) and len(ids) == 9  # apple/..., moth/..., zebra/...: sorted paths
    n = len(ids)
    # an id-less .npy: refused before any job, one line naming the file and the way out
    np.save(root / "it.npy", random_rdm(n, 3))
    refused = copy.deepcopy(config)
    refused["external_rdms"] = {"IT": {"path": str(root / "it.npy")}}
    wf.write_config(refused)
    proc = wf.run("-n", check=False)
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip() and not ln.startswith("Using workflow")]
    assert proc.returncode != 0 and len(lines) == 1, proc.stderr
    assert lines[0].startswith("config error at external_rdms.IT.path: ") and "it.npy" in lines[0]
    assert "order: stimuli" in lines[0] and "stimulus_ids" in lines[0]
    # with ids (a CSV whose rows are shuffled) and with the stated order: both run
    perm = np.random.default_rng(4).permutation(n)
    v4 = random_rdm(n, 5)
    rows = ["," + ",".join(ids[p] for p in perm)] + [ids[p] + "," + ",".join(repr(float(v4[p, q])) for q in perm) for p in perm]
    (root / "v4.csv").write_text("\n".join(rows) + "\n")
    ok = copy.deepcopy(config)
    ok["external_rdms"] = {"IT": {"path": str(root / "it.npy"), "order": "stimuli"}, "V4": {"path": str(root / "v4.csv")}}
    wf.write_config(ok)
    wf.run()
    so = read_second_order(wf.path("results/second_order/main/matrix.h5"))
    labels = list(so["labels"])
    model = read_rdm(wf.path("results/rdms/euclidean/resnet18/avgpool.h5"), square=True)["rdm"]
    rho = spearmanr(squareform(model, checks=False), squareform(v4, checks=False))[0]  # v4 aligned by id
    got = so["matrix"][labels.index("resnet18/avgpool"), labels.index("external/V4")]
    assert abs(got - (1 - rho)) < 1e-12  # both exact up to float rounding of one correlation
    # the stimulus set changes (an image added; same N after selection): the bound file is refused
    save_image(root / "img" / "apple" / "d.bmp", np.random.default_rng(6))
    new = build_stimulus_set({**config["stimuli"]})
    assert new["provenance"]["files"] != ids  # precondition: the selection really changed
    proc = wf.run("--keep-going", check=False)  # both external jobs run (and fail), whatever their order
    assert proc.returncode != 0
    log = wf.path("results/logs/external_rdm/IT.log").read_text()
    assert "config error at external_rdms.IT.path: " in log and "it.npy" in log and "rsaflow bind" in log
    assert not wf.path("results/external/IT.h5").exists()
    v4_log = wf.path("results/logs/external_rdm/V4.log").read_text()  # its ids name the old set: refused too
    assert "v4.csv: stimulus ids do not match the workflow's: " in v4_log
    # the user confirms the id-less file: the run goes through
    subprocess.run([sys.executable, "-m", "rsaflow.cli", "bind", str(root / "it.npy")], cwd=wf.work, check=True,
                   env={**os.environ, "PYTHONPATH": str(wf.src / "src")})
    del ok["external_rdms"]["V4"]
    wf.write_config(ok)
    wf.run()
    assert wf.path("results/external/IT.h5").exists() and order_ids(wf) == new["provenance"]["files"]
    (root / "img" / "apple" / "d.bmp").unlink()
    wf.write_config(config)
    wf.run("results/stimuli/order.tsv")


@pytest.mark.slow
def test_workflow_reruns_on_new_bytes_and_not_on_touch(run):
    wf, config, root = run
    wf.write_config(config)
    wf.run()
    assert wf.planned() == set()
    images = sorted((root / "img").glob("*/*.bmp"))
    for path in images:
        os.utime(path)  # touch every image
    assert wf.planned() == set()
    target = next(p for p in images if f"{p.parent.name}/{p.name}" in order_ids(wf))
    st = target.stat()
    save_image(target, np.random.default_rng(11))
    os.utime(target, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert target.stat().st_size == st.st_size
    rules = {rule for rule, _ in wf.planned()}
    assert {"stimuli", "activations", "rdm", "second_order"} <= rules




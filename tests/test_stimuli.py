"""Stimulus selection and sources: the tutorial's algorithm on torchvision's own CIFAR10 reader."""

import random

import numpy as np
import pytest
from PIL import Image

from rsaflow.errors import ConfigError, InputFileError
from rsaflow.stimuli import build_stimulus_set, load_cifar10, select_per_class, stimulus_digest


def tutorial_selection(dataset, per_class, seed):
    """The tutorial's procedure, written out: global random, shuffle, first per_class of each class."""
    random.seed(seed)
    indices = list(range(len(dataset)))
    random.shuffle(indices)
    by_class = {c: [] for c in range(len(dataset.classes))}
    for idx in indices:
        img, label = dataset[idx]
        if len(by_class[label]) < per_class:
            by_class[label].append((idx, np.asarray(img)))
    return [item for c in sorted(by_class) for item in by_class[c]]


def test_cifar10_selection_equals_tutorial(cifar_root, monkeypatch):
    torchvision = pytest.importorskip("torchvision")
    # torchvision checks the official md5 sums; our generated files are in the same format.
    monkeypatch.setattr(torchvision.datasets.CIFAR10, "_check_integrity", lambda self: True)
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: True)
    dataset = torchvision.datasets.CIFAR10(root=str(cifar_root), train=False, download=False)
    expected = tutorial_selection(dataset, per_class=4, seed=42)
    ours = build_stimulus_set({"source": "cifar10", "root": str(cifar_root), "per_class": 4, "seed": 42})
    assert ours["indices"].tolist() == [idx for idx, _ in expected]
    for img, (_, ref) in zip(ours["images"], expected):
        assert np.array_equal(img.transpose(1, 2, 0), ref)  # PIL image HWC vs our CHW
    assert ours["labels"].tolist() == sorted(ours["labels"].tolist())
    assert ours["class_names"] == dataset.classes


def test_selection_is_grouped_and_seeded():
    labels = np.array([i % 3 for i in range(30)])
    a = select_per_class(labels, 2, seed=1)
    b = select_per_class(labels, 2, seed=2)
    assert labels[a].tolist() == [0, 0, 1, 1, 2, 2]
    assert a.tolist() != b.tolist()
    assert select_per_class(labels, None, seed=1).size == 30


def test_per_class_too_large_names_counts(cifar_root):
    with pytest.raises(ConfigError, match=r"stimuli.per_class: .*fewer images.*'airplane': 12"):
        build_stimulus_set({"source": "cifar10", "root": str(cifar_root), "per_class": 13, "seed": 42})


def test_missing_cifar10_says_where(tmp_path):
    with pytest.raises(ConfigError, match=r"stimuli.root: CIFAR10 test split not found: expected .*cifar-10-batches-py/test_batch"):
        load_cifar10(tmp_path / "nothing")


def test_corrupt_cifar10_names_folder(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    (folder / "test_batch").write_bytes(b"not a pickle")
    (folder / "batches.meta").write_bytes(b"nope")
    with pytest.raises(InputFileError, match="cifar-10-batches-py: not a CIFAR10 python-format folder"):
        load_cifar10(tmp_path)


def test_digits_offline():
    s = build_stimulus_set({"source": "digits", "per_class": 5, "seed": 42})
    assert s["images"].shape == (50, 3, 8, 8) and s["images"].dtype == np.uint8
    assert s["images"].max() == 255 and s["class_names"] == [str(i) for i in range(10)]


def test_folder_source(tmp_path):
    rng = np.random.default_rng(0)
    for cls in ("dogs", "cats"):
        (tmp_path / cls).mkdir()
        for i in range(3):
            Image.fromarray(rng.integers(0, 255, (10, 12, 3), dtype=np.uint8)).save(tmp_path / cls / f"{i}.png")
    s = build_stimulus_set({"source": "folder", "root": str(tmp_path), "per_class": 2, "seed": 0})
    assert s["class_names"] == ["cats", "dogs"]
    assert s["images"].shape == (4, 3, 10, 12)
    assert all(f.startswith(("cats/", "dogs/")) for f in s["provenance"]["files"])
    Image.fromarray(np.zeros((5, 5, 3), dtype=np.uint8)).save(tmp_path / "cats" / "9.png")
    with pytest.raises(ConfigError, match="stimuli.size: images differ in size"):
        build_stimulus_set({"source": "folder", "root": str(tmp_path), "per_class": 2, "seed": 0})
    resized = build_stimulus_set({"source": "folder", "root": str(tmp_path), "per_class": 2, "seed": 0, "size": [6, 7]})
    assert resized["images"].shape == (4, 3, 6, 7)


def test_digest_changes_with_order():
    imgs = np.arange(2 * 3 * 2 * 2, dtype=np.uint8).reshape(2, 3, 2, 2)
    d1 = stimulus_digest(imgs, np.array([0, 1]), np.array([5, 6]), ["a", "b"])
    d2 = stimulus_digest(imgs[::-1], np.array([1, 0]), np.array([6, 5]), ["a", "b"])
    assert d1 != d2 and len(d1) == 64

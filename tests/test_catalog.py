"""torchvision's catalog (rsaflow.catalog): listed once per torchvision and torch version in the
user's cache, shared by working directories; a broken or unwritable cache costs a listing, never an error."""

from __future__ import annotations

import json
import subprocess

import pytest

from rsaflow import catalog

pytestmark = pytest.mark.skipif(catalog.torchvision_version() is None, reason="torchvision is not installed")


def test_cache_dir_follows_rsaflow_then_xdg_then_home(monkeypatch, tmp_path):
    monkeypatch.delenv("RSAFLOW_CACHE_DIR", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert catalog.cache_dir() == tmp_path / "home" / ".cache" / "rsaflow"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert catalog.cache_dir() == tmp_path / "xdg" / "rsaflow"
    monkeypatch.setenv("RSAFLOW_CACHE_DIR", str(tmp_path / "mine"))
    assert catalog.cache_dir() == tmp_path / "mine"


@pytest.fixture(scope="module")
def listed(tmp_path_factory):
    """One real listing of resnet18 (a torch subprocess) into a fresh folder."""
    folder = tmp_path_factory.mktemp("catalog")
    return folder, catalog.load_catalog(["resnet18"], folder)


def no_listing(*args, **kwargs):
    raise AssertionError(f"the catalog was listed again: {args}")


def replay(listing: dict, calls: list):
    """A stand-in for the lister's subprocess: answers from ``listing`` (a real one) and counts calls."""
    def run(cmd, *args, **kwargs):
        want = json.loads(cmd[-1])
        calls.append(want)
        out = {"archs": listing["archs"], "weights": {a: listing["weights"][a] for a in want},
               "nodes": {a: listing["nodes"][a] for a in want}}
        return subprocess.CompletedProcess(cmd, 0, json.dumps(out), "")
    return run


def test_the_listing_is_kept_under_the_library_versions_and_reused(listed, monkeypatch):
    import importlib.metadata as md

    folder, first = listed
    files = [p.name for p in folder.iterdir()]
    assert files == [f"torchvision-{md.version('torchvision')}-torch-{md.version('torch')}.json"]
    assert "resnet18" in first["archs"] and "IMAGENET1K_V1" in first["weights"]["resnet18"]
    assert "layer4.1.relu_1" in first["nodes"]["resnet18"] and first["nodes"]["resnet18"][-1] == "fc"
    monkeypatch.setattr(subprocess, "run", no_listing)
    assert catalog.load_catalog(["resnet18"], folder) == first  # another working directory: no listing
    assert catalog.load_catalog(["not_a_model"], folder) == first  # not torchvision's: nothing to list


def test_a_new_architecture_is_listed_alone_and_added(listed, tmp_path, monkeypatch):
    folder, first = listed
    own = tmp_path / "cache"
    own.mkdir()
    (own / next(folder.iterdir()).name).write_text(json.dumps(first))
    calls = []
    real = subprocess.run

    def spy(cmd, *args, **kwargs):
        calls.append(json.loads(cmd[-1]))
        return real(cmd, *args, **kwargs)

    monkeypatch.setattr(subprocess, "run", spy)
    both = catalog.load_catalog(["resnet18", "alexnet"], own)
    assert calls == [["alexnet"]]
    assert both["nodes"]["resnet18"] == first["nodes"]["resnet18"] and "classifier.6" in both["nodes"]["alexnet"]
    assert json.loads(next(own.iterdir()).read_text()) == both
    assert not [p for p in own.iterdir() if ".tmp-" in p.name]


def test_a_corrupt_cache_is_listed_again(listed, tmp_path, monkeypatch):
    folder, first = listed
    own = tmp_path / "cache"
    own.mkdir()
    (own / next(folder.iterdir()).name).write_text('{"archs": ["resn')  # cut short
    calls = []
    monkeypatch.setattr(subprocess, "run", replay(first, calls))
    assert catalog.load_catalog(["resnet18"], own) == first and calls == [["resnet18"]]
    assert json.loads(next(own.iterdir()).read_text()) == first


def test_an_unwritable_cache_warns_and_still_checks(listed, tmp_path, capsys, monkeypatch):
    _, first = listed
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    calls = []
    monkeypatch.setattr(subprocess, "run", replay(first, calls))
    assert catalog.load_catalog(["resnet18"], blocker / "rsaflow") == first and calls == [["resnet18"]]
    assert catalog.load_catalog(["resnet18"], blocker / "rsaflow") == first and len(calls) == 2  # listed each time
    assert [p.name for p in tmp_path.iterdir()] == ["file"]
    err = capsys.readouterr().err
    assert "cannot keep the model catalog in" in err and "RSAFLOW_CACHE_DIR" in err

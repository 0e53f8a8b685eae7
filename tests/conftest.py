"""Shared fixtures: generated CIFAR10-format data, tiny configs, and running the workflow in a temp dir."""

from __future__ import annotations

import os
import pickle
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "src"))

#: What a copy of the workflow needs (tests edit library files in the copy, never in the repo).
WORKFLOW_PARTS = ["Snakefile", "workflow", "scripts", "src", "envs", "profiles", "config.yaml"]


def write_cifar10(root: Path, per_class: int = 12, seed: int = 0, n_classes: int = 10) -> Path:
    """A CIFAR10 test split in torchvision's on-disk format (python pickles), random pixels.

    Labels are shuffled so that the per-class selection actually has to walk the order.
    """
    rng = np.random.default_rng(seed)
    n = per_class * n_classes
    labels = rng.permutation(np.repeat(np.arange(n_classes), per_class))
    data = rng.integers(0, 256, size=(n, 3 * 32 * 32), dtype=np.uint8)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "test_batch", "wb") as fh:
        pickle.dump({"batch_label": "testing batch 1 of 1", "labels": labels.tolist(), "data": data,
                     "filenames": [f"img{i}.png" for i in range(n)]}, fh)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"][:n_classes]
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"num_cases_per_batch": n, "label_names": names, "num_vis": 3072}, fh)
    return root


#: Files whose tests share no fixture beyond one test: ``--dist loadfile`` hands them out test by
#: test (see pytest_xdist_make_scheduler). The benchmarks' quick modes are about a fifth of the suite's work.
INDEPENDENT_FILES = {"test_benchmarks.py"}


def xdist_unit(nodeid: str) -> str:
    """The work unit of a test under ``--dist loadfile``: its file, or itself in an independent file."""
    path = nodeid.split("::", 1)[0]
    return nodeid if path.rsplit("/", 1)[-1] in INDEPENDENT_FILES else path


def pytest_collection_modifyitems(session, config, items):
    """Order for the xdist workers taking whole files (``.ci/run``: ``--dist loadfile
    --no-loadscope-reorder`` keeps this order): the SLURM cluster tests first (their run mostly
    waits on the scheduler, ~2.5 min, so it overlaps CPU-bound files instead of running alone at
    the end) and the ``long`` tests (a fresh venv: minutes of install); then the files with
    ``slow`` tests (workflow runs); then the quick files, which fill the gaps at the end. Whole
    files move (a stable sort): the order of tests within a file is kept."""
    rank: dict = {}
    for item in items:
        key = (item.get_closest_marker("slurm") is None and item.get_closest_marker("long") is None,
               item.get_closest_marker("slow") is None)
        rank[item.path] = min(rank.get(item.path, key), key)
    items.sort(key=lambda item: rank[item.path])


@pytest.hookimpl(tryfirst=True)  # before xdist's own, which would return its LoadFileScheduling
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadfile``, except that the tests of :data:`INDEPENDENT_FILES` are units of their
    own, so that all workers share them. (xdist's ``loadgroup`` would say this with marks, but
    with pytest 9 its marks are ignored: xdist 3.8 renames ``item._nodeid``, which pytest 9 no
    longer reads.) Other ``--dist`` modes are left to xdist."""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadFileScheduling

    class FileUnlessIndependent(LoadFileScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return xdist_unit(nodeid)

    return FileUnlessIndependent(config, log)


@pytest.fixture(scope="session", autouse=True)
def catalog_cache(tmp_path_factory):
    """torchvision's catalog (rsaflow.catalog.cache_dir) in one folder for the whole run, shared by
    every xdist worker and every workflow run they start (subprocesses inherit the environment):
    never the user's ~/.cache, and listed once per run rather than once per working directory."""
    base = tmp_path_factory.getbasetemp()  # an xdist worker's is popen-gw<N> in the run's folder
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "rsaflow-cache"
    os.environ["RSAFLOW_CACHE_DIR"] = str(folder)
    return folder


@pytest.fixture(autouse=True)
def private_store(tmp_path, monkeypatch):
    """Jobs called in this process keep their content store (and digest cache) in the test's temp dir,
    not results/store (.snakemake/rsaflow) under the current directory (workflow runs in subprocesses
    keep theirs in their working dir)."""
    from rsaflow import filedigest, shards, store

    monkeypatch.setattr(store, "STORE_DIR", tmp_path / "results" / "store")
    monkeypatch.setattr(filedigest, "CACHE_DIR", tmp_path / ".snakemake" / "rsaflow")
    monkeypatch.setattr(shards, "STORE_DIR", tmp_path / "results" / "store")


@pytest.fixture(scope="module")
def stimuli(tmp_path_factory):
    """A stimulus file of one digit image per class (rsaflow.jobs.stimuli): (path, its images, uint8 N x 3 x H x W)."""
    import h5py

    from rsaflow.jobs.stimuli import write_stimuli

    path = tmp_path_factory.mktemp("stim") / "stimuli.h5"
    write_stimuli(path, {"source": "digits", "per_class": 1, "seed": 0}, [])
    with h5py.File(path) as f:
        return path, f["images"][()]


@pytest.fixture
def cifar_root(tmp_path) -> Path:
    return write_cifar10(tmp_path / "cifar")


def tiny_config(cifar_root: Path) -> dict:
    """Two small untrained models, three layers, 3 generated CIFAR10 images per class."""
    return {
        "stimuli": {"source": "cifar10", "root": str(cifar_root), "per_class": 3, "seed": 42},
        "models": {
            "resnet18": {
                "weights": "none",
                "layers": {"avgpool": "avgpool", "layer3": {"node": "layer3", "reduce": "mean"}},
            },
            "squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"features": "features.12"}},
        },
        "extraction": {"batch_size": 8, "device": "cpu", "threads": 1, "gpu": False},
    }


class Workflow:
    """A copy of the workflow plus a work directory; runs Snakemake there and parses what it plans."""

    def __init__(self, root: Path):
        self.src = root / "wf"
        self.work = root / "work"
        self.work.mkdir(parents=True, exist_ok=True)
        for part in WORKFLOW_PARTS:
            path = REPO / part
            if path.is_dir():
                shutil.copytree(path, self.src / part, ignore=shutil.ignore_patterns("__pycache__"))
            elif path.exists():
                self.src.mkdir(parents=True, exist_ok=True)
                shutil.copy2(path, self.src / part)
        self.config_path = self.work / "config.yaml"

    def write_config(self, config: dict) -> None:
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))

    def run(self, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "snakemake", "-s", str(self.src / "Snakefile"), "-d", str(self.work),
               "--configfile", str(self.config_path), "--cores", "2", *args]
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
        if check and proc.returncode != 0:
            raise AssertionError(f"snakemake failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}")
        return proc

    def planned(self, *args: str) -> set[tuple[str, str]]:
        """(rule, output) pairs a dry run (with ``args``) would execute; ``all`` is left out. A job
        with several outputs gives one pair per output; the per-model rules ``rdm__<model>`` count as ``rdm``."""
        proc = self.run("-n", *args)
        jobs, rule = set(), None
        for line in (proc.stdout + proc.stderr).splitlines():
            m = re.match(r"^\s*(?:local)?rule ([\w.-]+):", line)
            if m:
                # rdm.jobs: model runs a model's RDMs as one job of rule rdm__<model>: counted as rdm
                rule = m.group(1).split("__", 1)[0]
                continue
            m = re.match(r"^\s+output: (.*)$", line)
            if m and rule and rule != "all":
                for out in m.group(1).split(", "):
                    jobs.add((rule, out.strip()))
                rule = None
        return jobs

    def planned_with(self, config: dict) -> set[tuple[str, str]]:
        """What a dry run would execute under ``config``; the current config file is restored after."""
        original = self.config_path.read_text()
        self.write_config(config)
        try:
            return self.planned()
        finally:
            self.config_path.write_text(original)

    def dry_run_with(self, config: dict) -> subprocess.CompletedProcess:
        """``snakemake -n`` under ``config`` (not checked: for config errors); the current config file
        is restored after."""
        original = self.config_path.read_text()
        self.write_config(config)
        try:
            return self.run("-n", check=False)
        finally:
            self.config_path.write_text(original)

    def edited(self, module: str) -> set[tuple[str, str]]:
        """What a dry run would execute after appending a comment to library ``module`` (relative to
        src/rsaflow) in the workflow copy; the file is restored with its mtime after."""
        path = self.src / "src" / "rsaflow" / module
        original, stat = path.read_text(), path.stat()
        path.write_text(original + "\n# edited\n")
        try:
            return self.planned()
        finally:
            path.write_text(original)
            os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))

    def path(self, rel: str) -> Path:
        return self.work / rel


@pytest.fixture
def workflow(tmp_path) -> Workflow:
    return Workflow(tmp_path)

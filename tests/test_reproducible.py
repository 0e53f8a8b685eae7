"""A killed extraction leaves nothing that counts as done; reruns give byte-identical files."""

import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

from conftest import Workflow, write_cifar10

pytestmark = pytest.mark.slow


def one_model_config(cifar_root, per_class):
    return {
        "stimuli": {"source": "cifar10", "root": str(cifar_root), "per_class": per_class, "seed": 42},
        "models": {"resnet18": {"weights": "none", "layers": {"pool": "avgpool"}},
                   "squeeze": {"arch": "squeezenet1_1", "weights": "none", "layers": {"pool": "features.12"}}},
        "extraction": {"batch_size": 2, "device": "cpu", "threads": 1, "gpu": False},
    }


def h5_bytes(wf):
    return {p.relative_to(wf.work).as_posix(): p.read_bytes() for p in sorted(wf.path("results").rglob("*.h5"))}


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    """One clean run (6 per class) and its HDF5 files' bytes, taken before any test touches it: the
    killed run is compared with these bytes, and the forced rerun recomputes this run in place."""
    root = tmp_path_factory.mktemp("reproducible")
    config = one_model_config(write_cifar10(root / "cifar", per_class=6), per_class=6)
    wf = Workflow(root / "clean")
    wf.write_config(config)
    wf.run("--cores", "1")
    return wf, config, h5_bytes(wf)


def test_sigkill_mid_extraction_then_rerun_equals_clean_run(clean, tmp_path):
    _, config, clean_bytes = clean
    killed = Workflow(tmp_path / "killed")
    killed.write_config(config)
    cmd = [sys.executable, "-m", "snakemake", "-s", str(killed.src / "Snakefile"), "-d", str(killed.work),
           "--configfile", str(killed.config_path), "--cores", "1"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    logs = killed.path("results/logs/activations")
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:  # wait until an extraction has written some batches
            if any("batch 5/" in p.read_text() for p in logs.rglob("*.log")):
                break
            assert proc.poll() is None, "the run ended before it could be killed"
            time.sleep(0.05)
        else:
            pytest.fail("no extraction progress within 300 s")
        os.killpg(proc.pid, signal.SIGKILL)
    finally:
        proc.wait()

    partial = [p for d in ("results/activations", "results/store/shards") for p in killed.path(d).rglob("*")
               if p.is_file()]

    def temporary(p):  # the job's temporary folder (.<model>.tmp-<pid>/) or a shard's temp file (.<key>.h5.tmp-<pid>)
        return any(part.startswith(".") and ".tmp-" in part for part in (p.name, p.parent.name))

    # the batches written so far (the new images' shards stream them), never at a final path
    assert partial and all(temporary(p) for p in partial), partial
    # Snakemake's lock of the killed run stays behind, as after any crash: unlock, then rerun.
    killed.run("--unlock")
    killed.run("--cores", "1")
    assert not [p for p in killed.path("results").rglob(".*.tmp-*")]  # stale temp files removed
    assert h5_bytes(killed) == clean_bytes


def test_forced_rerun_is_byte_identical(clean):
    wf, _, first = clean
    # stimuli, 2 activations (and their 2 shards), 2 RDMs (and their 2 store objects), second order (matrix
    # and pairs, and the pairs' store object), rsatoolbox export
    assert len(first) == 13
    time.sleep(1.1)  # a timestamp in the files would now differ
    shutil.rmtree(wf.path("results/store"))  # else the RDM jobs would reuse, not recompute
    wf.run("--forceall", "--cores", "1")  # as the clean run: the same threads per job
    assert h5_bytes(wf) == first

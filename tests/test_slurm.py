"""The real workflow through a one-node SLURM cluster on localhost, against a local run.

Needs root and Debian's SLURM packages (installed by .ci/install_slurm.sh); skipped otherwise.
The cluster (tests/slurm_cluster.py) is started and stopped by the test itself.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from conftest import Workflow, tiny_config, write_cifar10
from slurm_cluster import job_details, jobs_seen, pids_alive, slurm_cluster, slurm_unavailable_reason

pytestmark = [pytest.mark.slow, pytest.mark.slurm]

#: The local cluster has no slurmdbd (no sacct): poll with squeue (MinJobAge is set high enough). The
#: plugin waits the init seconds before a poll; each poll that finds no job finished adds 10 s to the
#: next wait, and one that does resets it: with 3, polls at 3, 16, 39 s after a submission (with 8, at
#: 8, 26, 54 s), so a job of 9 s is seen after 16 s instead of 26.
LOCAL_STATUS_FLAGS = ["--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "3"]


def _skip_if_unavailable():
    reason = slurm_unavailable_reason()
    if reason:
        pytest.skip(reason)
    pytest.importorskip("snakemake_executor_plugin_slurm")


def slurm_config(cifar_root):
    config = tiny_config(cifar_root)
    del config["models"]["resnet18"]["layers"]["layer3"]
    config["extraction"]["gpu"] = True  # the extraction jobs ask SLURM for a GPU
    return config


def h5_datasets(wf):
    import h5py

    out = {}
    for path in sorted(wf.path("results").rglob("*.h5")):
        with h5py.File(path) as f:
            f.visititems(lambda name, obj: out.setdefault(f"{path.relative_to(wf.work)}:{name}", obj[()])
                         if isinstance(obj, h5py.Dataset) else None)
    return out


def test_dry_run_shows_gpu_only_on_extraction(tmp_path):
    pytest.importorskip("snakemake_executor_plugin_slurm")
    wf = Workflow(tmp_path)
    wf.write_config(slurm_config(write_cifar10(tmp_path / "cifar")))
    proc = wf.run("-n", "--workflow-profile", str(wf.src / "profiles" / "slurm"))
    text = proc.stdout + proc.stderr
    blocks = re.split(r"\n(?=\s*(?:local)?rule \w+:)", text)
    seen = {}
    for block in blocks:
        m = re.match(r"\s*((?:local)?rule) (\w+):", block)
        if m and m.group(2) != "all":
            res = re.search(r"resources: (.*)", block)
            seen.setdefault(m.group(2), (m.group(1), res.group(1) if res else ""))
    assert "gpu=1" in seen["activations"][1]
    for rule, (kind, resources) in seen.items():
        if rule != "activations":
            assert not re.search(r"\bgpu=[1-9]", resources), (rule, resources)  # gpu=0 (NumPy kernels) asks for none


def test_workflow_through_slurm_equals_local_run(tmp_path):
    _skip_if_unavailable()
    cifar = write_cifar10(tmp_path / "cifar")
    config = slurm_config(cifar)

    local = Workflow(tmp_path / "local")
    local.write_config(config)
    local.run()

    wf = Workflow(tmp_path / "slurm")
    wf.write_config(config)
    with slurm_cluster(tmp_path / "cluster", fake_gpu=True, node_memory_mb=65536) as cluster:
        env = {k: v for k, v in cluster.env.items() if not k.startswith("RSAFLOW_SLURM_") and k != "PYTHONPATH"}
        cmd = ["timeout", "-k", "10", "600", sys.executable, "-m", "snakemake", "-s", str(wf.src / "Snakefile"),
               "-d", str(wf.work), "--configfile", str(wf.config_path),
               "--workflow-profile", str(wf.src / "profiles" / "slurm"), *LOCAL_STATUS_FLAGS]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True)
        assert proc.returncode == 0, f"{proc.stderr[-6000:]}\n--- slurmctld ---\n{cluster.ctld_log.read_text()[-3000:]}"
        submitted = set(re.findall(r"submitted with SLURM jobid (\d+)", proc.stderr))
        seen = set(jobs_seen(cluster))
        # stimuli, 2 extractions, the grouped RDM jobs, second order: all went through the controller
        assert submitted <= seen, (submitted, seen)
        # stimuli, 2 extractions, 2 RDMs, second order; figures and the config dump are local rules
        assert len(submitted) == 6, proc.stderr[-3000:]
        gpu_jobs = [j for j in submitted if "gpu" in job_details(cluster, j).get("TresPerJob", "")]
        assert len(gpu_jobs) == 2  # one per extraction job, none for the others
        log = wf.path("results/logs/activations/resnet18.log").read_text()
        assert "declared gpu=1 but no GPU is visible" in log  # the fake GPU has no CUDA device behind it
        pids = list(cluster.pids.values())
    assert pids and not pids_alive(pids), "SLURM daemons survived teardown"

    ours, ref = h5_datasets(wf), h5_datasets(local)
    assert ours.keys() == ref.keys()
    for key in ref:
        assert (ours[key] == ref[key]).all(), key

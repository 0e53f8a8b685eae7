"""rsaflow as a Snakemake module of another workflow: its own config, a path prefix, prefixed rule names."""

import os
import subprocess
import sys

import h5py
import numpy as np
import pytest
import yaml
from scipy.spatial.distance import pdist, squareform

from conftest import Workflow, write_cifar10

pytestmark = pytest.mark.slow

#: An outer workflow as a user would write it: rsaflow's rules under rsa/, one rule of its own that
#: consumes the second-order matrix, and its own default target.
OUTER = """\
configfile: "outer.yaml"


module rsaflow:
    snakefile:
        "{snakefile}"
    config:
        config["rsaflow"]
    prefix:
        "rsa"{extra}


use rule * from rsaflow as rsa_*


rule summary:
    input:
        "rsa/results/second_order/main/matrix.tsv",
    output:
        "summary.tsv",
    shell:
        "cp {{input}} {{output}}"


rule all:
    default_target: True
    input:
        rules.rsa_all.input,
        "summary.tsv",
"""


def snakemake(work, *args):
    """Snakemake in the outer workflow's folder, as its user runs it (its Snakefile names its own config)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=work,
                          capture_output=True, text=True, timeout=900, env=env)
    assert proc.returncode == 0, f"snakemake failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-6000:]}"
    return proc.stdout + proc.stderr


def outer_workflow(root, rsaflow, extra=""):
    """A copy of rsaflow in root/wf and an outer workflow in root/work using it with ``rsaflow`` as config."""
    wf = Workflow(root)
    (wf.work / "outer.yaml").write_text(yaml.safe_dump({"rsaflow": rsaflow, "unrelated": 1}, sort_keys=False))
    (wf.work / "Snakefile").write_text(OUTER.format(snakefile=wf.src / "Snakefile", extra=extra))
    return wf.work


def tiny(work):
    """One untrained model, one layer, 2 generated CIFAR10 images per class under work/cifar."""
    write_cifar10(work / "cifar", per_class=4)
    return {
        # Relative: to the working directory, as without a module (config paths take no prefix).
        "stimuli": {"source": "cifar10", "root": "cifar", "per_class": 2, "seed": 1},
        "models": {"resnet18": {"weights": "none", "layers": {"avgpool": "avgpool"}}},
        "extraction": {"threads": 1, "device": "cpu", "gpu": False},
    }


@pytest.fixture(scope="module")
def outer(tmp_path_factory):
    root = tmp_path_factory.mktemp("module")
    work = outer_workflow(root, tiny(root / "work"))
    return work, snakemake(work)


def test_prefixed_outputs_and_rdm(outer):
    work, log = outer
    assert "rule rsa_activations:" in log and "rule rsa_second_order:" in log
    for rel in ("second_order/main/matrix.tsv", "second_order/main/matrix.h5", "figures/stimuli.png",
                "figures/rdms.png", "figures/main/heatmap.png", "figures/main/mds.png", "config.yaml",
                "export/rdms_rsatoolbox.h5", "logs/activations/resnet18.log"):
        assert (work / "rsa/results" / rel).stat().st_size > 0, rel
    # Nothing of rsaflow's outside its prefix but the shared content-addressed store.
    assert {p.name for p in (work / "results").iterdir()} <= {"store"}
    assert (work / "summary.tsv").read_text() == (work / "rsa/results/second_order/main/matrix.tsv").read_text()
    # The module's own config, its schema defaults filled in (and not the outer config, nor config.yaml's).
    effective = yaml.safe_load((work / "rsa/results/config.yaml").read_text())
    assert list(effective["models"]) == ["resnet18"] and "unrelated" not in effective
    assert effective["rdm"]["metric"] == "euclidean"
    with h5py.File(work / "rsa/results/activations/resnet18/avgpool.h5") as f:
        acts = f["activations"][()].astype(np.float64)
    from rsaflow.results import read_rdm

    rdm = read_rdm(work / "rsa/results/rdms/euclidean/resnet18/avgpool.h5", square=True)["rdm"]
    assert acts.shape == (20, 512)
    ref = squareform(pdist(acts)) / np.sqrt(acts.shape[1])
    assert np.max(np.abs(rdm - ref)) <= 1e-10 * ref.max()


def test_second_dry_run_plans_nothing(outer):
    work, _ = outer
    assert "Nothing to be done" in snakemake(work, "-n")


def test_report_of_the_outer_workflow(outer):
    # Captions and the report text resolve from rsaflow's own folder, figures under the prefix.
    work, _ = outer
    snakemake(work, "--report", "report.html")
    html = (work / "report.html").read_text(errors="replace")
    for fig in ("stimuli", "rdms", "stimulus_mds", "main/heatmap", "main/mds"):
        assert f"rsa/results/figures/{fig}.png" in html
    for text in ("representational similarity analysis", "Second-order dissimilarity matrix", "metric MDS"):
        assert text in html


@pytest.mark.parametrize("skip", [False, True])
def test_skip_validation_of_the_module_statement(tmp_path, skip):
    config = tiny(tmp_path / "work")
    config["notes"] = "not a key of rsaflow's schema"
    work = outer_workflow(tmp_path, config, "\n    skip_validation: True" if skip else "")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "1", "-n"], cwd=work,
                          capture_output=True, text=True, timeout=600, env=env)
    log = proc.stdout + proc.stderr
    if skip:
        assert proc.returncode == 0 and "rule rsa_second_order:" in log, log
    else:
        assert proc.returncode != 0 and "config error at notes: unknown key 'notes' is not allowed" in log, log

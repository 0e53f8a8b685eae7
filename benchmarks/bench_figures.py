"""Figures at scale: seconds and peak RSS of every figure job on generated analyses.

Cases (the targets of issue 11 item 7: every figure job <= 60 s on 2 cores):

- ``files``: N=3,000 stimuli, K=41 RDMs (one network layer + 40 external RDMs), written as real
  workflow files (``write_rdm_file``, the stimuli and second-order layouts) and drawn through the
  job functions of :mod:`rsaflow.jobs.figures`, i.e. with the workflow's readers.
- ``arrays``: N=1,000, K=1,000 RDMs (40 models x 24 layers + 40 externals). Writing 1,000 RDM files
  (24 GB today) is not reasonable on a shared disk, so the RDM figures get records whose ``load``
  generates the RDM (what ``read_rdm`` returns), and the second-order figures read a real
  second-order file.

Each figure runs in a fresh child process (``multiprocessing``, spawn), so its peak RSS (VmHWM from
/proc) is its own; the generation of the inputs is not timed. Reference for the old code: the
iterative sklearn MDS of one N=3,000 RDM (the old first-order MDS ran one per RDM) with
``--reference``.

Also renders the figures at small K for looking at them: ``--look DIR`` writes K = 4, 25 and 60.

    python benchmarks/bench_figures.py [--quick] [--threads 2] [--look /tmp/figs] [--reference]
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import tempfile
import time
from pathlib import Path

import sys

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))  # this checkout's rsaflow first

import _common  # noqa: E402
import numpy as np  # noqa: E402

LAYERS = ["features.0", "features.2", "features.5", "features.7", "features.9", "features.12", "avgpool",
          "classifier.1", "classifier.2", "classifier.4", "classifier.5", "classifier.6"]
BRAIN = ["V1", "V2", "V4", "IT", "hIT", "EVC", "LOC", "FFA"]


def design(n_models: int, n_layers: int, n_external: int) -> list[dict]:
    """Records (label, model, depth) of a sweep: models x layers (depth = node index) + externals."""
    names = ["alexnet", "resnet18", "vgg16", "squeezenet", "convnext", "vit_b_16", "mobilenet", "densenet"]
    records = []
    for m in range(n_models):
        model = names[m] if m < len(names) else f"model{m:03d}"
        for d in range(n_layers):
            layer = LAYERS[d] if n_layers <= len(LAYERS) else f"block{d}.relu"
            records.append({"label": f"{model}/{layer}", "model": model, "depth": 3 * d + 1, "layer": layer})
    for e in range(n_external):
        name = BRAIN[e] if n_external <= len(BRAIN) else f"roi{e:03d}"
        records.append({"label": f"external/{name}", "model": "external", "depth": -1, "layer": name})
    for i, r in enumerate(records):
        r["seed"] = i
    return records


def stimulus_labels(n: int, n_classes: int = 10) -> np.ndarray:
    """Class labels in stored order (class by class, as the stimuli job writes them)."""
    return np.sort(np.arange(n) % n_classes)


def synthetic_rdm(record: dict, labels: np.ndarray) -> np.ndarray:
    """Euclidean RDM of generated patterns whose class structure grows with depth."""
    from scipy.spatial.distance import pdist, squareform

    rng = np.random.default_rng(record["seed"])
    strength = 0.3 + 0.1 * max(record["depth"], 8) if record["model"] != "external" else 1.5
    means = np.random.default_rng(7).normal(size=(labels.max() + 1, 16))
    x = strength * means[labels] + rng.normal(size=(labels.size, 16))
    return squareform(pdist(x)) / 4.0


def synthetic_second_order(records: list[dict], seed: int = 0) -> dict:
    """A second-order result (rows sorted by label, as written) from latent random walks per model."""
    rng = np.random.default_rng(seed)
    rows = sorted(records, key=lambda r: r["label"])
    start = {}
    pos = []
    for r in rows:
        base = start.setdefault(r["model"], rng.normal(size=6))
        pos.append(base + 0.15 * r["depth"] * np.ones(6) / 6 + 0.2 * rng.normal(size=6) if r["model"] != "external"
                   else rng.normal(size=6) * 0.8 + 1.0)
    pos = np.array(pos)
    d = np.sqrt(((pos[:, None] - pos[None]) ** 2).sum(-1))
    matrix = d / d.max() * 1.1
    k = len(rows)
    lo, hi = np.clip(matrix - 0.05, 0, None), matrix + 0.05
    p = np.clip(matrix / 2, 0, 1)
    return {"matrix": matrix, "labels": [r["label"] for r in rows], "models": [r["model"] for r in rows],
            "depth": np.array([r["depth"] for r in rows]), "method": "spearman",
            "ci_lower": lo, "ci_upper": hi, "p_values": p, "boot_std": np.full((k, k), 0.02)}


LOOK = {4: (2, 1, 2), 25: (3, 7, 4), 60: (5, 11, 5)}


def look(folder: Path, n: int = 200) -> None:
    """Render every figure at K = 4, 25 and 60 (generated data) into ``folder`` for inspection."""
    from rsaflow import figures

    folder.mkdir(parents=True, exist_ok=True)
    labels = stimulus_labels(n)
    names = [f"class{c}" for c in range(10)]
    images = np.random.default_rng(0).integers(0, 256, size=(n, 3, 32, 32), dtype=np.uint8)
    figures.stimulus_grid(images, labels, names, folder / "stimuli.png")
    for k, shape in LOOK.items():
        records = design(*shape)
        assert len(records) == k, (k, len(records))
        load = lambda r: synthetic_rdm(r, labels)  # noqa: E731
        figures.rdm_panel(records, labels, folder / f"rdms_k{k}.png", load=load)
        figures.stimulus_mds_panel(records, labels, names, folder / f"stimulus_mds_k{k}.png", load=load)
        result = synthetic_second_order(records)
        figures.second_order_heatmap(result, folder / f"heatmap_k{k}.png")
        figures.mds_plot(result, 0, folder / f"mds_k{k}.png")
    print(f"figures written to {folder}")

"""What torchvision offers, for config checks at DAG-build time: architectures, weights, graph nodes.

Listing them needs torch (2 s and ~700 MB to import), which the Snakemake process should not
carry; so they are computed once per torchvision version in a subprocess and cached as JSON.
This module itself never imports torch. When torch is not installed where Snakemake runs (e.g.
``--sdm conda`` with torch only in the job environment) the checks are skipped here and happen
at the start of each extraction job instead.
"""

from __future__ import annotations

import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

from rsaflow.errors import RsaflowError
from rsaflow.modelspec import check_arch, check_weights, select_node

_LISTER = r"""
import json, sys
import torch, torchvision
from torchvision.models import get_model, get_model_weights, list_models
from torchvision.models.feature_extraction import get_graph_node_names
want = json.loads(sys.argv[1])
out = {"archs": sorted(list_models(module=torchvision.models)), "weights": {}, "nodes": {}}
for arch in want:
    if arch not in out["archs"]:
        continue
    out["weights"][arch] = sorted(get_model_weights(arch).__members__)
    with torch.device("meta"):  # no parameter memory or initialisation: tracing needs neither
        model = get_model(arch, weights=None).eval()
    out["nodes"][arch] = get_graph_node_names(model)[1]
print(json.dumps(out))
"""


def torchvision_version() -> str | None:
    try:
        return importlib.metadata.version("torchvision")
    except importlib.metadata.PackageNotFoundError:
        return None


def load_catalog(archs: list[str], cache_dir: Path) -> dict | None:
    """Architectures, weights names and graph nodes of ``archs``; cached per torchvision version.

    Returns None when torchvision is not installed for this Python.
    """
    version = torchvision_version()
    if version is None:
        return None
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / f"torchvision-{version}.json"
    catalog = json.loads(path.read_text()) if path.exists() else {"archs": None, "weights": {}, "nodes": {}}
    missing = [a for a in archs if a not in catalog["nodes"] and (catalog["archs"] is None or a in catalog["archs"])]
    if missing or catalog["archs"] is None:
        proc = subprocess.run([sys.executable, "-c", _LISTER, json.dumps(sorted(set(missing)))],
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise RsaflowError(f"listing torchvision's models failed: {proc.stderr.strip().splitlines()[-1:]}")
        new = json.loads(proc.stdout)
        catalog["archs"] = new["archs"]
        catalog["weights"].update(new["weights"])
        catalog["nodes"].update(new["nodes"])
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(catalog))
        tmp.replace(path)
    return catalog


def check_archs(archs: dict, catalog: dict) -> None:
    """:func:`check_arch` for each ``{model key: arch}``."""
    for key, arch in archs.items():
        check_arch(arch, catalog["archs"], f"models.{key}.arch")


def check_models(models: dict, catalog: dict) -> None:
    """ConfigError for the first unknown architecture, weights name or graph node in ``models``.

    ``models``: normalised model specs (rsaflow.config.normalise()["models"]).
    """
    check_archs({key: spec["arch"] for key, spec in models.items()}, catalog)
    for key, spec in models.items():
        arch = spec["arch"]
        check_weights(spec["weights"], arch, catalog["weights"][arch], f"models.{key}.weights")
        for label, layer in spec["layers"].items():
            select_node(layer["node"], catalog["nodes"][arch], arch, f"models.{key}.layers.{label}")

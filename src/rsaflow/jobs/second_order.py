"""Step ``second_order``: compare all RDMs of one analysis; write the K x K matrix as HDF5 and TSV.

Optional inference on the RDMs (``bootstrap`` resamples of stimuli, ``permutations`` of stimulus
labels), written beside the matrix: ``ci_lower``, ``ci_upper``, ``boot_std``, ``p_values``.
"""

from __future__ import annotations

import logging
import os

import numpy as np

from rsaflow import h5io
from rsaflow.compare import aggregate
from rsaflow.errors import InputFileError
from rsaflow.provenance import base_attrs
from rsaflow.rdm import upper_triangle

log = logging.getLogger(__name__)


def read_rdm(path, with_matrix: bool = True, method: str | None = None) -> dict:
    """An RDM (or, for cka, a Gram) file's label ``model/layer``, digest, depth, and the vector for ``method``.

    For ``kendall_tau_a`` the vector is the raw upper triangle; for ``cka`` the file must be a
    per-layer CKA file (``gram_unit``); otherwise the stored ``unit/<method>``.
    """
    kind = "cka" if method == "cka" else "rdm"
    with h5io.open_artifact(path, kind) as f:
        out = {
            "label": f"{f.attrs['model']}/{f.attrs['layer']}",
            "model": str(f.attrs["model"]),
            "digest": f.attrs["stimulus_digest"],
            "depth": int(f.attrs.get("node_index", -1)),
            "path": str(path),
        }
        if with_matrix and kind == "rdm":
            out["rdm"] = f["rdm"][()]
        if method == "cka":
            out["vector"] = f["gram_unit"][()]
        elif method == "kendall_tau_a":
            out["vector"] = upper_triangle(f["rdm"][()])
        elif method is not None:
            if f"unit/{method}" not in f:
                raise InputFileError(path, f"no stored vector for method {method!r}; rerun its rdm job")
            out["vector"] = f[f"unit/{method}"][()]
    return out


def check_same_stimuli(records: list[dict]) -> str:
    """Refuse to compare RDMs computed on different stimulus sets; return the shared digest."""
    first = records[0]
    for r in records[1:]:
        if r["digest"] != first["digest"]:
            raise InputFileError(
                r["path"],
                f"stimulus digest {r['digest']} differs from {first['digest']} of {first['path']}: "
                "these RDMs were computed on different stimulus sets (rerun the workflow to rebuild them)",
            )
    return first["digest"]


def _write_tsv(path, labels: list[str], matrix: np.ndarray) -> None:
    lines = ["label\t" + "\t".join(labels)]
    lines += [labels[i] + "\t" + "\t".join(repr(float(v)) for v in matrix[i]) for i in range(len(labels))]
    tmp = f"{path}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def write_second_order(rdm_paths, out_h5, out_tsv, spec: dict, code_files) -> tuple[np.ndarray, list[str]]:
    """1 - similarity (``spec['method']``) between every pair of RDMs, rows sorted by label."""
    method = spec["method"]
    inference = spec.get("bootstrap", 0) or spec.get("permutations", 0)
    records = sorted((read_rdm(p, with_matrix=bool(inference), method=method) for p in rdm_paths),
                     key=lambda r: r["label"])
    labels = [r["label"] for r in records]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate RDM labels: {labels}")
    sizes = {r["vector"].size for r in records}
    if len(sizes) > 1:
        raise InputFileError(records[0]["path"], f"RDMs differ in size: stored vectors of lengths {sorted(sizes)}")
    digest = check_same_stimuli(records)
    matrix = aggregate(np.stack([r["vector"] for r in records]), method)
    log.info("second order (%s) of %d RDMs", method, len(labels))
    datasets = {
        "matrix": matrix,
        "labels": np.array(labels, dtype=object),
        "depth": np.array([r["depth"] for r in records], dtype=np.int64),
        "models": np.array([r["model"] for r in records], dtype=object),
    }
    if inference:
        from rsaflow.inference import bootstrap_second_order, permutation_test

        rdms = np.stack([r["rdm"] for r in records])
        if spec.get("bootstrap", 0):
            log.info("bootstrap: %d resamples of the stimuli", spec["bootstrap"])
            boot = bootstrap_second_order(rdms, method, spec["bootstrap"], spec["seed"], spec.get("ci", 0.95))
            datasets.update(ci_lower=boot.lower, ci_upper=boot.upper, boot_std=boot.std)
            log.info("bootstrap: %d of %d resamples valid", boot.n_valid, spec["bootstrap"])
        if spec.get("permutations", 0):
            log.info("permutation test: %d relabellings", spec["permutations"])
            datasets["p_values"] = permutation_test(rdms, method, spec["permutations"], spec["seed"]).p_values
    h5io.write_h5(
        out_h5,
        "second_order",
        datasets,
        {**base_attrs(spec, code_files), "method": method, "stimulus_digest": digest},
    )
    _write_tsv(out_tsv, labels, matrix)
    return matrix, labels


def read_second_order(path) -> dict:
    """Matrix, labels, models, depths, method and any inference arrays of a second-order file."""
    with h5io.open_artifact(path, "second_order") as f:
        out = {name: f[name][()] for name in f}
        out["labels"] = [x.decode() if isinstance(x, bytes) else x for x in out["labels"]]
        out["models"] = [x.decode() if isinstance(x, bytes) else x for x in out["models"]]
        out["method"] = f.attrs["method"]
    return out

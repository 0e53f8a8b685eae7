"""Step ``second_order``: compare all RDMs; write the K x K matrix as HDF5 and TSV."""

from __future__ import annotations

import logging
import os

import numpy as np

from rsaflow import h5io
from rsaflow.compare import second_order_from_vectors
from rsaflow.errors import InputFileError
from rsaflow.provenance import base_attrs

log = logging.getLogger(__name__)


def read_rdm(path, with_matrix: bool = True, method: str | None = None) -> dict:
    """An RDM file's label (``model/layer``), stimulus digest, and its matrix and/or unit vector."""
    with h5io.open_artifact(path, "rdm") as f:
        out = {
            "label": f"{f.attrs['model']}/{f.attrs['layer']}",
            "digest": f.attrs["stimulus_digest"],
            "path": str(path),
        }
        if with_matrix:
            out["rdm"] = f["rdm"][()]
        if method is not None:
            if f"unit/{method}" not in f:
                raise InputFileError(path, f"no unit vector for method {method!r}; rerun its rdm job")
            out["unit"] = f[f"unit/{method}"][()]
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


def write_second_order(rdm_paths, out_h5, out_tsv, spec: dict, code_files) -> tuple[np.ndarray, list[str]]:
    """1 - correlation (``spec['method']``) between every pair of RDMs, rows sorted by label."""
    records = sorted((read_rdm(p, with_matrix=False, method=spec["method"]) for p in rdm_paths), key=lambda r: r["label"])
    labels = [r["label"] for r in records]
    if len(set(labels)) != len(labels):
        raise ValueError(f"duplicate RDM labels: {labels}")
    sizes = {r["unit"].size for r in records}
    if len(sizes) > 1:
        raise InputFileError(records[0]["path"], f"RDMs differ in size: upper triangles of lengths {sorted(sizes)}")
    digest = check_same_stimuli(records)
    matrix = second_order_from_vectors(np.stack([r["unit"] for r in records]))
    log.info("second order (%s) of %d RDMs", spec["method"], len(labels))
    h5io.write_h5(
        out_h5,
        "second_order",
        {"matrix": matrix, "labels": np.array(labels, dtype=object)},
        {**base_attrs(spec, code_files), "method": spec["method"], "stimulus_digest": digest},
    )
    lines = ["label\t" + "\t".join(labels)]
    lines += [labels[i] + "\t" + "\t".join(repr(float(v)) for v in matrix[i]) for i in range(len(labels))]
    tmp = f"{out_tsv}.tmp"
    with open(tmp, "w") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(tmp, out_tsv)
    return matrix, labels


def read_second_order(path) -> tuple[np.ndarray, list[str], str]:
    with h5io.open_artifact(path, "second_order") as f:
        labels = [x.decode() if isinstance(x, bytes) else x for x in f["labels"][()]]
        return f["matrix"][()], labels, f.attrs["method"]

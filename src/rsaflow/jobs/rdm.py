"""Step ``rdm``: one RDM per (model, layer), plus the vectors the comparison step reuses.

Also the per-layer steps that feed comparisons: ``cka`` (centred Gram matrices of activations) and
``external`` (RDMs from files, e.g. brain data, checked against the stimulus set).
"""

from __future__ import annotations

import logging
import time

import numpy as np

from rsaflow import h5io
from rsaflow.compare import VECTOR_METHODS, DegenerateRDMError, centered_gram_unit, per_rdm_vector
from rsaflow.errors import InputFileError
from rsaflow.external import load_external_rdm
from rsaflow.provenance import base_attrs, file_sha256
from rsaflow.rdm import rdm_from_h5, upper_triangle

log = logging.getLogger(__name__)

#: Attributes of the activation file carried over into the RDM file.
CARRIED = ("model", "layer", "arch", "weights", "node", "node_index", "reduce", "stimulus_digest", "code_sha256")


def _carried(f) -> dict:
    return {f"activations_{k}" if k == "code_sha256" else k: f.attrs[k] for k in CARRIED if k in f.attrs}


def write_rdm_file(out_path, rdm: np.ndarray, attrs: dict, source) -> None:
    """Write an RDM with ``unit/<method>`` for every vector comparison method (see rsaflow.compare).

    A second-order entry is then one dot product of two stored vectors, so adding an RDM to an
    analysis costs one RDM's vectors, not K comparisons.
    """
    upper = upper_triangle(rdm)
    vectors = {}
    for method in VECTOR_METHODS:
        try:
            vectors[f"unit/{method}"] = per_rdm_vector(upper, method)
        except DegenerateRDMError as exc:
            raise InputFileError(
                source,
                f"model {attrs.get('model')!r} layer {attrs.get('layer')!r}: {exc} "
                "(constant activations? check the node and the weights)",
            ) from None
    h5io.write_h5(out_path, "rdm", {"rdm": rdm, **vectors}, attrs)


def write_rdm(activations_path, out_path, spec: dict, code_files) -> np.ndarray:
    """Compute the RDM (``spec['metric']``) of an activation file and write it with its vectors."""
    start = time.perf_counter()
    with h5io.open_artifact(activations_path, "activations") as f:
        carried = _carried(f)
        n, m = f["activations"].shape
        log.info("%s: N=%d stimuli, M=%d units, metric %s", activations_path, n, m, spec["metric"])
        try:
            rdm, n_near = rdm_from_h5(f["activations"], spec["metric"], spec["block"])
        except ValueError as exc:
            raise InputFileError(activations_path, f"cannot compute an RDM: {exc}") from None
    log.info("RDM done in %.2f s (%d near-duplicate pairs recomputed directly)", time.perf_counter() - start, n_near)
    attrs = {**base_attrs(spec, code_files), **carried, "metric": spec["metric"], "n_units": m}
    write_rdm_file(out_path, rdm, attrs, activations_path)
    return rdm


def write_cka(activations_path, out_path, spec: dict, code_files) -> None:
    """Store the unit-norm centred Gram matrix of a layer's activations (for linear CKA)."""
    with h5io.open_artifact(activations_path, "activations") as f:
        carried = _carried(f)
        try:
            vector = centered_gram_unit(f["activations"], spec["block"])
        except (ValueError, DegenerateRDMError) as exc:
            raise InputFileError(activations_path, f"model {carried.get('model')!r} layer {carried.get('layer')!r}: {exc}") from None
    h5io.write_h5(out_path, "cka", {"gram_unit": vector}, {**base_attrs(spec, code_files), **carried})


def write_external(rdm_path, stimuli_path, out_path, name: str, spec: dict, code_files) -> None:
    """Check an external RDM against the stimulus set and store it as an rsaflow RDM ``external/<name>``."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        n = f["images"].shape[0]
        digest = f.attrs["digest"]
        source = h5io.read_attrs(f).get("source", {})
        ids = source.get("files") or [str(i) for i in f["indices"][()]]
    rdm = load_external_rdm(rdm_path, n, ids)
    attrs = {
        **base_attrs(spec, code_files),
        "model": "external",
        "layer": name,
        "node_index": -1,
        "stimulus_digest": digest,
        "metric": "external",
        "external_path": str(rdm_path),
        "external_sha256": file_sha256(rdm_path),
    }
    write_rdm_file(out_path, rdm, attrs, rdm_path)

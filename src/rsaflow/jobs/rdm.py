"""Step ``rdm``: one RDM per (model, layer), plus the unit vectors the comparison step reuses."""

from __future__ import annotations

import logging
import time

import numpy as np

from rsaflow import h5io
from rsaflow.compare import METHODS, DegenerateRDMError, unit_vector
from rsaflow.errors import InputFileError
from rsaflow.provenance import base_attrs
from rsaflow.rdm import rdm_from_h5, upper_triangle

log = logging.getLogger(__name__)

#: Attributes of the activation file carried over into the RDM file.
CARRIED = ("model", "layer", "arch", "weights", "node", "reduce", "stimulus_digest", "code_sha256")


def write_rdm(activations_path, out_path, spec: dict, code_files) -> np.ndarray:
    """Compute the RDM of an activation file and write it with one unit vector per comparison method.

    Datasets: ``rdm`` (N, N) float64; ``unit/<method>`` the centred, unit-norm (ranked, for
    spearman) upper triangle, so that a second-order entry is 1 - u_a . u_b.
    """
    start = time.perf_counter()
    with h5io.open_artifact(activations_path, "activations") as f:
        carried = {k: f.attrs[k] for k in CARRIED if k in f.attrs}
        n, m = f["activations"].shape
        log.info("%s: N=%d stimuli, M=%d units, metric %s", activations_path, n, m, spec["metric"])
        try:
            rdm, n_near = rdm_from_h5(f["activations"], spec["metric"], spec["block"])
        except ValueError as exc:
            raise InputFileError(activations_path, f"cannot compute an RDM: {exc}") from None
    log.info("RDM done in %.2f s (%d near-duplicate pairs recomputed directly)", time.perf_counter() - start, n_near)
    upper = upper_triangle(rdm)
    units = {}
    for method in METHODS:
        try:
            units[f"unit/{method}"] = unit_vector(upper, method)
        except DegenerateRDMError as exc:
            raise InputFileError(
                activations_path,
                f"model {carried.get('model')!r} layer {carried.get('layer')!r}: {exc} "
                "(constant activations? check the node and the weights)",
            ) from None
    h5io.write_h5(
        out_path,
        "rdm",
        {"rdm": rdm, **units},
        {
            **base_attrs(spec, code_files),
            **{f"activations_{k}" if k == "code_sha256" else k: v for k, v in carried.items()},
            "metric": spec["metric"],
            "n_units": m,
        },
    )
    return rdm

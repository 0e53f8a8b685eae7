"""Rule ``rdm``: one RDM per (model, layer), computed, or reused from the store by content."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from rsaflow import h5io, rdmfile, store
from rsaflow.errors import InputFileError
from rsaflow.jobs.per_layer import product_log, read_layer, write_rdm_file
from rsaflow.provenance import base_attrs
from rsaflow.rdm import rdm_from_h5

log = logging.getLogger(__name__)


def write_rdm(activations_path, out_path, spec: dict, code, expect: dict | None = None) -> bool:
    """The RDM (``spec['metric']``) of an activation file with its vectors, computed or reused.

    The product's store key covers the activations' data digest and every attribute the file
    carries (rsaflow.store), so a reused file is the file computing would write. Returns True if
    it computed.
    """
    carried, digest, (n, m) = read_layer(activations_path, expect)
    attrs = {**base_attrs(spec, code), **carried, "metric": spec["metric"], "n_units": m}
    key = store.make_key("rdm", {"activations": digest}, attrs)

    def compute():
        start = time.perf_counter()
        log.info("%s: N=%d stimuli, M=%d units, metric %s", activations_path, n, m, spec["metric"])
        with h5io.open_artifact(activations_path, "activations") as f:
            try:
                rdm, n_near = rdm_from_h5(f["activations"], spec["metric"], spec["block"])
            except ValueError as exc:
                raise InputFileError(activations_path, f"cannot compute an RDM: {exc}") from None
        log.info("RDM done in %.2f s (%d near-duplicate pairs recomputed directly)", time.perf_counter() - start,
                 n_near)
        # The upper triangle (S), then the square (2 S) freed before the ranking (rsaflow.rdmfile.write,
        # about 2 S): the peak stays at the square plus its triangle, 1.5 x N^2 x 8 B.
        condensed = rdmfile.upper_triangle(rdm)
        del rdm
        write_rdm_file(out_path, condensed, {**attrs, "content_key": key}, activations_path)

    return store.produce("rdm", key, out_path, compute)


def write_rdms(activations_dir, out_paths: list, log_paths: list, spec: dict, code, expect: dict) -> int:
    """Rule ``rdm``: the RDMs of a model's layers (rdm.jobs: model) or of one layer (rdm.jobs:
    layer), each by :func:`write_rdm` from ``<activations_dir>/<layer>.h5`` (the layer: the
    output's file name), computed or reused from the store by its own key. ``log_paths``: one
    per output, where that layer's records also go; ``expect``: {layer: its config slice}.
    Returns how many were computed."""
    computed = 0
    for out, log_path in zip(out_paths, log_paths, strict=True):
        layer = Path(out).name[: -len(".h5")]
        with product_log(log_path):
            computed += write_rdm(f"{activations_dir}/{layer}.h5", out, spec, code, expect[layer])
    log.info("%s: %d RDMs, %d computed, %d reused", activations_dir, len(out_paths), computed,
             len(out_paths) - computed)
    return computed

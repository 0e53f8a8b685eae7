"""Rule ``rdm``: one RDM per (model, layer), computed, or reused from the store by content."""

from __future__ import annotations

import logging
import time

from rsaflow import h5io, kernels, rdmfile, store
from rsaflow.errors import InputFileError
from rsaflow.jobs.per_layer import read_layer, write_rdm_file
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
    kern = kernels.select(spec, "rdm")  # rdm.backend (NumPy: no attribute, keys as before)
    attrs = {**base_attrs(spec, code), **carried, "metric": spec["metric"], "n_units": m, **kern.attrs}
    key = store.make_key("rdm", {"activations": digest}, attrs)

    def compute():
        start = time.perf_counter()
        log.info("%s: N=%d stimuli, M=%d units, metric %s", activations_path, n, m, spec["metric"])
        with h5io.open_artifact(activations_path, "activations") as f:
            try:
                rdm, n_near = rdm_from_h5(f["activations"], spec["metric"], spec["block"], kern)
            except ValueError as exc:
                raise InputFileError(activations_path, f"cannot compute an RDM: {exc}") from None
        log.info("RDM done in %.2f s (%d near-duplicate pairs recomputed directly)", time.perf_counter() - start,
                 n_near)
        # The upper triangle (S), then the square (2 S) freed before the ranking (rsaflow.rdmfile.write,
        # about 2 S): the peak stays at the square plus its triangle, 1.5 x N^2 x 8 B.
        condensed = rdmfile.upper_triangle(rdm)
        del rdm
        write_rdm_file(out_path, condensed, {**attrs, "content_key": key}, activations_path, kern.ranks_and_ties)

    return store.produce("rdm", key, out_path, compute)

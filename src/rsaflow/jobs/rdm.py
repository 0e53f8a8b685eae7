"""Rule ``rdm``: one RDM per (model, layer), computed, or reused from the store by content."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import h5py
import numpy as np

from rsaflow import h5io, kernels, rdm_grow, rdmfile, store
from rsaflow.errors import InputFileError
from rsaflow.jobs.per_layer import product_log, read_layer, write_rdm_file
from rsaflow.provenance import base_attrs
from rsaflow.methods import METRICS as METRIC_INFO
from rsaflow.rdm import rdm_from_h5

log = logging.getLogger(__name__)


#: Attributes of an RDM product that depend on its stimulus set; the rest is its family
#: (rsaflow.store.family_objects: where an RDM of a grown set looks for stored rows).
SET_ATTRS = ("stimulus_digest", "activations_sha256")


def family_key(attrs: dict) -> str:
    return store.make_key("rdm-family", {}, {k: v for k, v in attrs.items() if k not in SET_ATTRS})


def _stored_rows(family: str, digests: np.ndarray):
    """The stored RDM of ``family`` sharing most rows with ``digests``: (path, its digests, old
    position per row or -1), or None when none holds at least rsaflow.rdm_grow.MIN_SHARE of them."""
    best = None
    for obj in store.family_objects("rdm", family):
        try:
            with h5py.File(obj, "r") as f:
                if "row_sha256" not in f:
                    continue
                old = f["row_sha256"][()]
        except OSError:
            continue
        pos = rdm_grow.match_rows(digests, old)
        if best is None or (pos >= 0).sum() > (best[2] >= 0).sum():
            best = (obj, old, pos)
    if best is None or (best[2] >= 0).sum() < max(2, rdm_grow.MIN_SHARE * digests.shape[0]):
        return None
    return best


def write_rdm(activations_path, out_path, spec: dict, code, expect: dict | None = None, threads: int = 1) -> bool:
    """The RDM (``spec['metric']``) of an activation file with its vectors, computed or reused.

    The product's store key covers the activations' data digest and every attribute the file
    carries (rsaflow.store), so a reused file is the file computing would write. When the key is
    not stored but a stored RDM of the same family (the key without the stimulus set) holds at
    least half of the rows, by the sha256 of each activation row (dataset ``row_sha256`` of every
    RDM file), and the metric is row-local (rsaflow.methods.Metric.row_local), only the other rows
    are computed (rsaflow.rdm_grow; the log says how many rows were reused). ``threads``: the rule's,
    for the ranking's sorts (BLAS has them from rsaflow.jobs.common.setup). Returns True if it computed.
    """
    carried, digest, (n, m) = read_layer(activations_path, expect)
    kern = kernels.select(spec, "rdm")  # rdm.backend (NumPy: no attribute, keys as before)
    attrs = {**base_attrs(spec, code), **carried, "metric": spec["metric"], "n_units": m, **kern.attrs}
    key = store.make_key("rdm", {"activations": digest}, attrs)
    family = family_key(attrs)

    def compute():
        start = time.perf_counter()
        log.info("%s: N=%d stimuli, M=%d units, metric %s", activations_path, n, m, spec["metric"])
        with h5io.open_artifact(activations_path, "activations") as f:
            digests = rdm_grow.row_digests(f["activations"])
            # grown on the NumPy backend only (a torch RDM's rows are not NumPy's to the last bit)
            grows = METRIC_INFO[spec["metric"]].row_local and not kern.attrs
            stored = _stored_rows(family, digests) if grows else None
            try:
                if stored is None:
                    rdm, n_near = rdm_from_h5(f["activations"], spec["metric"], spec["block"], kern)
                else:
                    obj, old, pos = stored
                    with h5py.File(obj, "r") as g:
                        rdm, n_near, reused = rdm_grow.grow_rdm(f["activations"], spec["metric"], spec["block"],
                                                                digests, g["condensed"], old, pos)
                    log.info("grown from stored RDM %s (N=%d): reused %d of %d rows, computed %d rows", obj.stem,
                             old.shape[0], reused, n, n - reused)
            except ValueError as exc:
                raise InputFileError(activations_path, f"cannot compute an RDM: {exc}") from None
        log.info("RDM done in %.2f s (%d near-duplicate pairs recomputed directly)", time.perf_counter() - start,
                 n_near)
        # The upper triangle (S) moved into the first half of the square's memory, the ranks (S) in
        # the second half (rsaflow.rdmfile.upper_triangle_in_place): the peak is the square, N^2 x 8 B,
        # and no array of the triangle's size is allocated (fresh memory costs page faults).
        condensed, spare = rdmfile.upper_triangle_in_place(rdm)
        del rdm
        write_rdm_file(out_path, condensed, {**attrs, "content_key": key}, activations_path, kern.ranks_and_ties,
                       extra={"row_sha256": digests}, ranks_out=spare, threads=threads)

    computed = store.produce("rdm", key, out_path, compute)
    store.index_family("rdm", family, key)
    return computed


def write_rdms(activations_dir, out_paths: list, log_paths: list, spec: dict, code, expect: dict,
               threads: int = 1) -> int:
    """Rule ``rdm``: the RDMs of a model's layers (rdm.jobs: model) or of one layer (rdm.jobs:
    layer), each by :func:`write_rdm` from ``<activations_dir>/<layer>.h5`` (the layer: the
    output's file name), computed or reused from the store by its own key. ``log_paths``: one
    per output, where that layer's records also go; ``expect``: {layer: its config slice}; ``threads``:
    the rule's.
    Returns how many were computed."""
    computed = 0
    for out, log_path in zip(out_paths, log_paths, strict=True):
        layer = Path(out).name[: -len(".h5")]
        with product_log(log_path):
            computed += write_rdm(f"{activations_dir}/{layer}.h5", out, spec, code, expect[layer], threads)
    log.info("%s: %d RDMs, %d computed, %d reused", activations_dir, len(out_paths), computed,
             len(out_paths) - computed)
    return computed

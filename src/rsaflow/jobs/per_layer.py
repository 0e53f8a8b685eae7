"""What the per-layer rules (``rdm``, ``kernel``, ``external_rdm``) share: reading a layer's
activation file, checked against the current config (:func:`read_layer`), and writing an RDM file
(:func:`write_rdm_file`). Editing the RDM math (rsaflow.rdm) or one of those rules' modules reruns
only that rule.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading

from pathlib import Path

import numpy as np

from rsaflow import h5io, rdmfile
from rsaflow.compare import DegenerateRDMError
from rsaflow.errors import InputFileError

#: Attributes of the activation file carried over into the RDM file (and so into its content key:
#: a model library's version and a factory file's sha256, which torchvision files do not have).
CARRIED = ("model", "layer", "arch", "weights", "node", "node_index", "reduce", "stimulus_digest", "code_sha256",
           "data_sha256", "library_version", "factory_sha256")


def _carried(f) -> dict:
    renamed = {"code_sha256": "activations_code_sha256", "data_sha256": "activations_sha256"}
    return {renamed.get(k, k): f.attrs[k] for k in CARRIED if k in f.attrs}


def _activation_digest(f) -> str:
    """The activations' data sha256 as recorded by the extraction (computed here for older files)."""
    if "data_sha256" in f.attrs:
        return str(f.attrs["data_sha256"])
    return h5io.dataset_sha256(f["activations"])


def check_expected(f, path, expect: dict | None) -> None:
    """Refuse an activation file whose recorded config slice is not the current config's."""
    if expect is None:
        return
    recorded = h5io.read_attrs(f).get("config")
    if recorded != expect:
        diff = sorted(k for k in set(expect) | set(recorded or {}) if (recorded or {}).get(k) != expect.get(k))
        raise InputFileError(path, f"recorded config {_pick(recorded, diff)} differs from the current config "
                                   f"{_pick(expect, diff)}: a stale file; rerun its model's extraction "
                                   "(snakemake --forcerun activations)")


def _pick(d, keys) -> str:
    return json.dumps({k: (d or {}).get(k) for k in keys}, sort_keys=True)


def write_rdm_file(out_path, rdm: np.ndarray, attrs: dict, source, ranker=None, extra: dict | None = None,
                   ranks_out: np.ndarray | None = None, threads: int = 1) -> None:
    """Write an RDM file (rsaflow.rdmfile: condensed values and their ranks, at most 2 S bytes).

    ``rdm``: the square N x N RDM (its upper triangle is taken, rsaflow.rdmfile.upper_triangle) or
    that upper triangle already (1-D, squareform order). A caller that can drop the square passes
    the triangle, so that the ranking runs without it (rsaflow.jobs.rdm). Every comparison
    method's vector is derived from the file on the fly, so adding an RDM to an analysis costs one
    RDM file, not K comparisons. Refuses an RDM that some method cannot compare (constant
    dissimilarities), naming ``source``. ``ranker``: rsaflow.rdmfile.write's (a backend's ranking);
    ``extra``: further datasets (an RDM's ``row_sha256``); ``ranks_out``: memory for the ranks
    (rsaflow.rdmfile.upper_triangle_in_place); ``threads``: the ranking's.
    """
    try:
        rdmfile.write(out_path, rdm if np.ndim(rdm) == 1 else rdmfile.upper_triangle(rdm), attrs, extra=extra,
                      ranker=ranker, ranks_out=ranks_out, threads=threads)
    except DegenerateRDMError as exc:
        raise InputFileError(
            source,
            f"model {attrs.get('model')!r} layer {attrs.get('layer')!r}: {exc} "
            "(constant activations? check the node and the weights)",
        ) from None


def read_layer(activations_path, expect: dict | None) -> tuple[dict, str, tuple]:
    """The carried attributes, the data digest and the shape of an activation file (checked against ``expect``)."""
    with h5io.open_artifact(activations_path, "activations") as f:
        check_expected(f, activations_path, expect)
        return _carried(f), _activation_digest(f), f["activations"].shape


@contextlib.contextmanager
def product_log(path):
    """While the block runs, log records also go to ``path`` (opened for writing), formatted as
    the job's own log: a job that makes several products (one per layer, one per external RDM)
    keeps one log per product beside its own (records of the calling thread only, so products made
    in parallel threads keep their own). ``path`` None or already a handler's file: nothing added."""
    root = logging.getLogger()
    existing = {getattr(h, "baseFilename", None) for h in root.handlers}
    if path is None or str(Path(path).resolve()) in existing:
        yield
        return
    handler = logging.FileHandler(path, mode="w")
    handler.setFormatter(root.handlers[0].formatter if root.handlers else None)
    thread = threading.get_ident()
    handler.addFilter(lambda record: record.thread == thread)  # this product's thread only
    root.addHandler(handler)
    try:
        yield
    finally:
        root.removeHandler(handler)
        handler.close()

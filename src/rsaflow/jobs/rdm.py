"""Rule ``rdm``: one RDM per (model, layer), plus the vectors the comparison step reuses.

Also, for now, what the rules ``cka_gram`` and ``external_rdm`` share with it: reading a layer's
activation file (:func:`read_layer`) and writing an RDM file (:func:`write_rdm_file`).
"""

from __future__ import annotations

import json
import logging
import time

import numpy as np

from rsaflow import h5io, rdmfile, store
from rsaflow.compare import DegenerateRDMError
from rsaflow.errors import InputFileError
from rsaflow.provenance import base_attrs
from rsaflow.rdm import rdm_from_h5, upper_triangle

log = logging.getLogger(__name__)

#: Attributes of the activation file carried over into the RDM file.
CARRIED = ("model", "layer", "arch", "weights", "node", "node_index", "reduce", "stimulus_digest", "code_sha256",
           "data_sha256")


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


def write_rdm_file(out_path, rdm: np.ndarray, attrs: dict, source) -> None:
    """Write an RDM file (rsaflow.rdmfile: condensed values and their ranks, at most 2 S bytes).

    Every comparison method's vector is derived from it on the fly, so adding an RDM to an
    analysis costs one RDM file, not K comparisons. Refuses an RDM that some method cannot
    compare (constant dissimilarities), naming ``source``.
    """
    try:
        rdmfile.write(out_path, upper_triangle(rdm), attrs)
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
        write_rdm_file(out_path, rdm, {**attrs, "content_key": key}, activations_path)

    return store.produce("rdm", key, out_path, compute)

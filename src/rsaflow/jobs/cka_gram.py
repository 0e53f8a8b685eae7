"""Rule ``cka_gram``: a layer's unit-norm centred Gram matrix, for linear CKA (computed or reused by content)."""

from __future__ import annotations

from rsaflow import h5io, store
from rsaflow.compare import DegenerateRDMError, centered_gram_unit
from rsaflow.errors import InputFileError
from rsaflow.jobs.per_layer import read_layer
from rsaflow.provenance import base_attrs


def write_cka(activations_path, out_path, spec: dict, code, expect: dict | None = None) -> bool:
    """Store the unit-norm centred Gram matrix of a layer's activations (for linear CKA), or reuse it."""
    carried, digest, _ = read_layer(activations_path, expect)
    attrs = {**base_attrs(spec, code), **carried}
    key = store.make_key("cka", {"activations": digest}, attrs)

    def compute():
        with h5io.open_artifact(activations_path, "activations") as f:
            try:
                vector = centered_gram_unit(f["activations"], spec["block"])
            except (ValueError, DegenerateRDMError) as exc:
                raise InputFileError(activations_path, f"model {carried.get('model')!r} layer "
                                                       f"{carried.get('layer')!r}: {exc}") from None
        h5io.write_h5(out_path, "cka", {"gram_unit": vector}, {**attrs, "content_key": key})

    return store.produce("cka", key, out_path, compute)

"""Rule ``kernel``: a layer's per-layer artifact for the activation measures (computed or reused by content).

One file per (artifact spec, model, layer), ``results/kernels/<name>/<model>/<layer>.h5`` with
<name> = rsaflow.methods.artifact_name of the spec, so adding a layer costs one file per spec and
an analysis's second order reads K of them. From the column-centred Gram Kc = (HX)(HX)^T of the
activations X (N x M; columns read ``block`` at a time, rsaflow.measures.centered_gram_unit; every
measure here is invariant to centring and to scaling the Gram):

- ``cka`` artifacts (cka, cka_debiased, cka_rbf, cka_rbf_debiased): ``gram_unit``,
  rsaflow.measures.cka_vector (kernel, debiased, sigma_frac), N^2 float64; a pair is a dot
  product, streamed by the second order in chunks;
- ``shape`` artifacts (shape with alpha, bures = alpha 1): ``factor_w`` (r) and ``factor_u``
  (N x r), rsaflow.measures.shape_factor, r <= N - 1 the rank; a pair is one r x r SVD.

Memory: about 6 N^2 x 8 bytes (the Gram, its centred/RBF copies, or the eigendecomposition) plus
N x ``block`` x 8; time O(N^2 M) for the Gram plus O(N^3) for a shape factor. Disk: N^2 x 8 bytes.
"""

from __future__ import annotations

from rsaflow import h5io, measures, store
from rsaflow.compare import DegenerateRDMError
from rsaflow.errors import InputFileError
from rsaflow.jobs.per_layer import read_layer
from rsaflow.measures import centered_gram_unit
from rsaflow.provenance import base_attrs


def layer_datasets(activations, spec: dict) -> dict:
    """The datasets of a per-layer artifact (see the module docstring) from activations (N x M,
    an h5py dataset works: read ``spec['block']`` columns at a time)."""
    n = activations.shape[0]
    gram = centered_gram_unit(activations, spec["block"]).reshape(n, n)
    if spec["kind"] == "shape":
        w, u = measures.shape_factor(gram, spec["alpha"])
        return {"factor_w": w, "factor_u": u}
    if spec["kernel"] == "linear" and not spec["debiased"]:
        return {"gram_unit": gram.ravel()}  # already the unit centred Gram (cka_vector up to rounding)
    return {"gram_unit": measures.cka_vector(gram, spec["kernel"], spec["debiased"], spec.get("sigma_frac", 0.8))}


def write_kernel(activations_path, out_path, spec: dict, code, expect: dict | None = None) -> bool:
    """Store a layer's per-layer artifact of ``spec`` (rsaflow.methods.artifact_spec plus ``block``),
    or reuse it from the content store (key: the activations' digest, the spec, the code)."""
    carried, digest, _ = read_layer(activations_path, expect)
    attrs = {**base_attrs(spec, code), **carried}
    kind = spec["kind"]
    key = store.make_key(kind, {"activations": digest}, attrs)

    def compute():
        with h5io.open_artifact(activations_path, "activations") as f:
            try:
                datasets = layer_datasets(f["activations"], spec)
            except (ValueError, DegenerateRDMError) as exc:
                raise InputFileError(activations_path, f"model {carried.get('model')!r} layer "
                                                       f"{carried.get('layer')!r}: {exc}") from None
        h5io.write_h5(out_path, kind, datasets, {**attrs, "content_key": key})

    return store.produce(kind, key, out_path, compute)


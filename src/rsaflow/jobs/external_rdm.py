"""Rule ``external_rdm``: an RDM from a file (e.g. brain data), checked against the stimulus set."""

from __future__ import annotations

from rsaflow import h5io, store
from rsaflow.external import load_external_rdm
from rsaflow.jobs.per_layer import write_rdm_file
from rsaflow.provenance import base_attrs, file_sha256
from rsaflow.results import stimulus_ids


def write_external(rdm_path, stimuli_path, out_path, name: str, spec: dict, code) -> bool:
    """Check an external RDM against the stimulus set and store it as an rsaflow RDM ``external/<name>``."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        n = f["images"].shape[0]
        digest = f.attrs["digest"]
    ids = stimulus_ids(stimuli_path)
    attrs = {
        **base_attrs(spec, code),
        "model": "external",
        "layer": name,
        "node_index": -1,
        "stimulus_digest": digest,
        "metric": "external",
        "external_path": str(rdm_path),
        "external_sha256": file_sha256(rdm_path),
    }
    key = store.make_key("external", {"file": attrs["external_sha256"], "stimuli_ids": ids}, attrs)

    def compute():
        rdm = load_external_rdm(rdm_path, n, ids)
        write_rdm_file(out_path, rdm, {**attrs, "content_key": key}, rdm_path)

    return store.produce("external", key, out_path, compute)

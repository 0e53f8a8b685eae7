"""Rule ``external_rdm``: an RDM from a file (e.g. brain data), checked against the stimulus set.

A group (several subjects' RDMs of one region; rsaflow.external.load_external_group) is written
as the RDM file of its mean RDM (rsaflow.external.group_mean: the arithmetic mean of the subjects'
dissimilarities), which joins the comparison, plus dataset ``subjects`` (S, P) float64: each
subject's upper triangle in squareform order, for the noise ceilings of the second order
(attribute ``n_subjects``). Peak memory about 8 S N^2 + 4 x 8 P bytes.
"""

from __future__ import annotations

import hashlib
import json
import os

import numpy as np

from rsaflow import h5io, rdmfile, store
from rsaflow.compare import DegenerateRDMError
from rsaflow.errors import InputFileError
from rsaflow.external import group_mean, is_group_file, load_external_group, load_external_rdm
from rsaflow.jobs.per_layer import write_rdm_file
from rsaflow.provenance import base_attrs, file_sha256
from rsaflow.results import stimulus_ids


def _sources(rdm_paths, spec: dict) -> tuple[list[str], bool]:
    """The files as a list, and whether they form a group (``paths:``, or one group file)."""
    files = [str(rdm_paths)] if isinstance(rdm_paths, (str, os.PathLike)) else [str(p) for p in rdm_paths]
    return files, "paths" in spec or is_group_file(files[0])


def _write_group(out_path, subjects: np.ndarray, attrs: dict, source) -> None:
    iu = np.triu_indices(subjects.shape[1], k=1)
    uppers = np.ascontiguousarray(subjects[:, iu[0], iu[1]])
    try:
        rdmfile.write(out_path, group_mean(subjects)[iu], {**attrs, "n_subjects": uppers.shape[0]},
                      extra={"subjects": uppers})
    except DegenerateRDMError as exc:
        raise InputFileError(source, f"the group's mean RDM: {exc}") from None


def write_external(rdm_paths, stimuli_path, out_path, name: str, spec: dict, code) -> bool:
    """Check an external RDM (or group) against the stimulus set and store it as an rsaflow RDM
    ``external/<name>`` (a group: its mean RDM and dataset ``subjects``)."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        n = f["images"].shape[0]
        digest = f.attrs["digest"]
    ids = stimulus_ids(stimuli_path)
    files, group = _sources(rdm_paths, spec)
    shas = [file_sha256(p) for p in files]
    attrs = {
        **base_attrs(spec, code),
        "model": "external",
        "layer": name,
        "node_index": -1,
        "stimulus_digest": digest,
        "metric": "external",
        "external_path": files[0] if len(files) == 1 else json.dumps(files),
        "external_sha256": shas[0] if len(shas) == 1 else hashlib.sha256("\n".join(shas).encode()).hexdigest(),
    }
    key = store.make_key("external", {"file": attrs["external_sha256"], "stimuli_ids": ids, "group": group}, attrs)

    def compute():
        if group:
            _write_group(out_path, load_external_group(files if "paths" in spec else files[0], n, ids),
                         {**attrs, "content_key": key}, files[0])
        else:
            write_rdm_file(out_path, load_external_rdm(files[0], n, ids), {**attrs, "content_key": key}, files[0])

    return store.produce("external", key, out_path, compute)

"""Step ``export_rsatoolbox``: all RDMs in rsatoolbox's HDF5 layout."""

from __future__ import annotations

import numpy as np

from rsaflow.export import write_rsatoolbox_h5
from rsaflow.jobs.inputs import rdms_on_stimuli


def export_rsatoolbox(rdm_paths, stimuli_path, out_path, measure: str) -> None:
    """All RDMs of the main analysis in rsatoolbox's HDF5 layout (see rsaflow.export)."""
    records, stimuli = rdms_on_stimuli(rdm_paths, stimuli_path)
    names = [r["label"] for r in records]
    stim = [f"{stimuli['class_names'][int(c)]}_{i}" for i, c in enumerate(stimuli["labels"])]
    write_rsatoolbox_h5(out_path, np.stack([r["rdm"] for r in records]), names, stim, measure,
                        descriptors={"stimulus_digest": stimuli["digest"]})

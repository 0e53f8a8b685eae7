"""Step ``export_rsatoolbox``: all RDMs in rsatoolbox's HDF5 layout."""

from __future__ import annotations

import numpy as np

from rsaflow.errors import InputFileError
from rsaflow.export import measure_name, write_rsatoolbox_h5
from rsaflow.results import rdms_on_stimuli, stimulus_ids


def _metric(record: dict, config_metric: str) -> str:
    """The metric stored with an RDM (``external`` for an external RDM); must be the config's for a model RDM."""
    metric = record["metric"] or ("external" if record["model"] == "external" else config_metric)
    if metric not in ("external", config_metric):
        raise InputFileError(record["path"], f"RDM computed with metric {metric!r}, but rdm.metric is "
                                             f"{config_metric!r}: rerun its rdm job")
    return metric


def export_rsatoolbox(rdm_paths, stimuli_path, out_path, measure: str) -> None:
    """All RDMs of the main analysis in rsatoolbox's HDF5 layout (see rsaflow.export).

    ``measure``: the config's ``rdm.metric``. Each RDM is labelled with its own measure name
    (:data:`rsaflow.export.MEASURE_NAMES`; external RDMs as given); stimuli by
    :func:`stimulus_ids`.
    """
    records, stimuli = rdms_on_stimuli(rdm_paths, stimuli_path)
    names = [r["label"] for r in records]
    measures = [measure_name(_metric(r, measure)) for r in records]
    write_rsatoolbox_h5(out_path, np.stack([r["rdm"] for r in records]), names, stimulus_ids(stimuli_path), measures,
                        descriptors={"stimulus_digest": stimuli["digest"], "rsaflow_rdm_metric": measure})

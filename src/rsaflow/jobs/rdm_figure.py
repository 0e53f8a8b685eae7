"""Rule ``rdm_figure``: every RDM as a percentile heatmap (:func:`rsaflow.plots.stimuli.rdm_panel`)."""

from __future__ import annotations

from rsaflow.jobs.figure_inputs import load_percentiles, rdm_records, stimulus_meta
from rsaflow.plots.stimuli import rdm_panel


def draw_rdms(rdm_paths, stimuli_path, out_path) -> None:
    """The RDM panel; reads the values and stored ranks of each drawn RDM only (see
    :mod:`rsaflow.jobs.figure_inputs`): no N^2 sort per panel."""
    stimuli = stimulus_meta(stimuli_path)
    rdm_panel(rdm_records(rdm_paths, stimuli), stimuli["labels"], stimuli["class_names"], out_path,
              percentiles=load_percentiles)

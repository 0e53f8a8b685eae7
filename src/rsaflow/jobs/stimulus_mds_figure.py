"""Rule ``stimulus_mds_figure``: each RDM's stimuli in 2-D (classical MDS), coloured by class."""

from __future__ import annotations

from rsaflow.jobs.figure_inputs import load_rdm, rdm_records, stimulus_meta
from rsaflow.plots.stimuli import stimulus_mds_panel


def draw_stimulus_mds(rdm_paths, stimuli_path, out_path) -> None:
    """:func:`rsaflow.plots.stimuli.stimulus_mds_panel`; reads the matrix of each drawn RDM only."""
    stimuli = stimulus_meta(stimuli_path)
    stimulus_mds_panel(rdm_records(rdm_paths, stimuli), stimuli["labels"], stimuli["class_names"],
                       out_path, load=load_rdm)

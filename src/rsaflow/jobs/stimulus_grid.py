"""Rule ``stimulus_grid``: one row of images per class, reading only the images it draws."""

from __future__ import annotations

from rsaflow import h5io
from rsaflow.plots import stimuli


def draw_stimulus_grid(stimuli_path, out_path) -> None:
    """The stimulus grid of a stimuli file (:func:`rsaflow.plots.stimuli.stimulus_grid`)."""
    with h5io.open_artifact(stimuli_path, "stimuli") as f:
        names = h5io.texts(f["class_names"][()])
        stimuli.stimulus_grid(f["images"], f["labels"][()], names, out_path)

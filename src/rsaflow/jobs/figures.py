"""Figure steps: read artifacts, draw with :mod:`rsaflow.figures`."""

from __future__ import annotations

from rsaflow import figures
from rsaflow.jobs.inputs import rdms_on_stimuli
from rsaflow.jobs.second_order import read_second_order
from rsaflow.jobs.stimuli import read_stimuli


def draw_stimulus_grid(stimuli_path, out_path) -> None:
    s = read_stimuli(stimuli_path)
    figures.stimulus_grid(s["images"], s["labels"], s["class_names"], out_path)


def draw_rdms(rdm_paths, stimuli_path, out_path) -> None:
    records, stimuli = rdms_on_stimuli(rdm_paths, stimuli_path)
    figures.rdm_panel([(r["label"], r["rdm"]) for r in records], stimuli["labels"], out_path)


def draw_stimulus_mds(rdm_paths, stimuli_path, out_path, seed: int) -> None:
    records, stimuli = rdms_on_stimuli(rdm_paths, stimuli_path)
    figures.stimulus_mds_panel([(r["label"], r["rdm"]) for r in records], stimuli["labels"],
                               stimuli["class_names"], seed, out_path)


def draw_second_order(second_order_path, out_path) -> None:
    figures.second_order_heatmap(read_second_order(second_order_path), out_path)


def draw_mds(second_order_path, out_path, seed: int) -> None:
    figures.mds_plot(read_second_order(second_order_path), seed, out_path)

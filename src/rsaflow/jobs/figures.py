"""Figure steps: read artifacts, draw with :mod:`rsaflow.figures`."""

from __future__ import annotations

from rsaflow import figures
from rsaflow.jobs.second_order import check_same_stimuli, read_rdm, read_second_order
from rsaflow.jobs.stimuli import read_stimuli


def draw_rdms(rdm_paths, stimuli_path, out_path) -> None:
    records = sorted((read_rdm(p) for p in rdm_paths), key=lambda r: r["label"])
    stimuli = read_stimuli(stimuli_path)
    check_same_stimuli([{"digest": stimuli["digest"], "path": str(stimuli_path)}, *records])
    labels = stimuli["labels"]
    figures.rdm_panel([(r["label"], r["rdm"]) for r in records], labels, out_path)


def draw_second_order(second_order_path, out_path) -> None:
    matrix, labels, method = read_second_order(second_order_path)
    figures.second_order_heatmap(matrix, labels, method, out_path)


def draw_mds(second_order_path, out_path, seed: int) -> None:
    matrix, labels, _ = read_second_order(second_order_path)
    figures.mds_plot(matrix, labels, seed, out_path)

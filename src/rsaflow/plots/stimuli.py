"""Figures of the stimuli and of each RDM: the stimulus grid, the percentile RDM panel and the
first-order MDS (each RDM's stimuli in 2-D)."""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np

from rsaflow.figure_data import (MAX_GRID_CLASSES, MAX_GRID_PER_CLASS, MAX_MDS_STIMULI, MAX_PANEL_STIMULI,
                                 MAX_PANELS, classical_mds, display_percentiles, evenly_spaced, figure_order,
                                 selection_note, stimulus_subsample)
from rsaflow.plots.base import (CMAP, figure_title, mark_classes, panel_grid, panel_title, plt,
                                save_figure)


def _shown_records(records: Sequence[dict], cap: int = MAX_PANELS) -> tuple[list[dict], str]:
    """The records drawn as panels, in figure order, and the selection note."""
    order = figure_order([r["model"] for r in records], [r["depth"] for r in records], [r["label"] for r in records])
    shown = [records[i] for i in order[evenly_spaced(len(order), cap)]]
    note = selection_note(len(shown), len(records), "RDMs", "evenly spaced in model/depth order, first and last kept")
    return shown, note


def stimulus_grid_figure(images, labels: np.ndarray, class_names: list[str]):
    """One row per class (at most MAX_GRID_CLASSES rows, evenly spaced), up to MAX_GRID_PER_CLASS
    images each in stored order, as one mosaic. ``images``: (N, C, H, W) uint8 array or HDF5 dataset
    (only the drawn images are read). Returns the figure."""
    labels = np.asarray(labels)
    classes = np.unique(labels)
    rows = classes[evenly_spaced(classes.size, MAX_GRID_CLASSES)]
    per = min(MAX_GRID_PER_CLASS, max(int(np.sum(labels == c)) for c in rows))
    idx = {c: np.nonzero(labels == c)[0][:per] for c in rows}
    wanted = np.unique(np.concatenate(list(idx.values())))
    drawn = dict(zip(wanted.tolist(), np.asarray(images[wanted])))
    _, ch, h, w = next(iter(drawn.values()))[None].shape
    gap = max(1, h // 16)
    mosaic = np.full((len(rows) * (h + gap), per * (w + gap), 3), 255, dtype=np.uint8)
    for r, c in enumerate(rows):
        for k, i in enumerate(idx[c]):
            img = drawn[int(i)].transpose(1, 2, 0)
            mosaic[r * (h + gap):r * (h + gap) + h, k * (w + gap):k * (w + gap) + w] = img if ch == 3 else img[..., :1]
    fig, ax = plt.subplots(figsize=(min(0.45 * per + 1.5, 12), min(0.45 * len(rows) + 0.8, 12)))
    ax.imshow(mosaic, interpolation="nearest")
    ax.set_yticks((np.arange(len(rows)) + 0.5) * (h + gap) - gap / 2, [class_names[int(c)] for c in rows], fontsize=7)
    ax.set_xticks([])
    ax.tick_params(length=0)
    for side in ax.spines.values():
        side.set_visible(False)
    notes = [selection_note(len(rows), classes.size, "classes", "evenly spaced in class order"),
             f"first {per} images of each class in stored order"
             if any(np.sum(labels == c) > per for c in rows) else ""]
    figure_title(fig, f"Stimuli: {labels.size} images, {classes.size} classes", notes)
    return fig


def stimulus_grid(images, labels: np.ndarray, class_names: list[str], path) -> None:
    """Draw :func:`stimulus_grid_figure` to ``path`` (PNG and PDF)."""
    save_figure(stimulus_grid_figure(images, labels, class_names), path)


def rdm_panel_figure(records: Sequence[dict], labels: np.ndarray, class_names: Sequence[str],
                     load: Callable[[dict], np.ndarray] | None = None,
                     percentiles: Callable[[dict, np.ndarray], np.ndarray] | None = None):
    """RDMs as percentile heatmaps (0-100, :func:`display_percentiles`), classes marked along the axes.

    records: dicts with ``label``, ``model``, ``depth``; ``percentiles(record, rows)`` returns the
    drawn block of percentiles (rsaflow.jobs.figure_inputs.load_percentiles reads them from the
    stored ranks), or else ``load(record)`` returns its (N, N) RDM (:func:`display_percentiles`);
    either is called only for the panels drawn, one at a time (at most MAX_PANELS, evenly spaced in
    figure order). Above MAX_PANEL_STIMULI stimuli, every s-th stimulus (stored order) is drawn. Classes
    (:func:`rsaflow.plots.base.mark_classes`): white lines between class blocks, class names at each
    block's midpoint, on the y axis of the left column and the x axis of each column's lowest panel.
    Peak memory: two N x N float64 arrays with ``load``, the two stored vectors (N^2 float64 in all)
    with ``percentiles``. Returns the figure.
    """
    labels = np.asarray(labels)
    shown, note = _shown_records(records)
    step = math.ceil(labels.size / MAX_PANEL_STIMULI)
    rows = np.arange(0, labels.size, step)
    if percentiles is None:
        def percentiles(record, rows):
            return display_percentiles(load(record), rows)
    fig, axes = panel_grid(len(shown))
    ncols = axes.shape[1]
    image, class_note = None, ""
    for i, (ax, record) in enumerate(zip(axes.flat, shown)):
        image = ax.imshow(percentiles(record, rows), cmap=CMAP, vmin=0, vmax=100,
                          interpolation="nearest")
        class_note = mark_classes(ax, labels[rows], class_names, x_names=i + ncols >= len(shown),
                                  y_names=i % ncols == 0)
        panel_title(ax, record)
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, ticks=[0, 50, 100])
    cbar.set_label("dissimilarity (percentile of all N\u00b2 entries)")
    stim_note = (f"every {step}th stimulus drawn ({rows.size} of {labels.size}, stored order); "
                 "percentiles over all entries") if step > 1 else ""
    figure_title(fig, "Representational dissimilarity matrices", [note, stim_note, class_note])
    return fig


def rdm_panel(records: Sequence[dict], labels: np.ndarray, class_names: Sequence[str], path,
              load=lambda r: r["rdm"], percentiles=None) -> None:
    """Draw :func:`rdm_panel_figure` to ``path`` (PNG and PDF)."""
    save_figure(rdm_panel_figure(records, labels, class_names, load, percentiles), path)


def stimulus_mds_figure(records: Sequence[dict], labels: np.ndarray, class_names: list[str],
                        load: Callable[[dict], np.ndarray]):
    """First-order MDS: each drawn RDM's stimuli in 2-D by :func:`classical_mds`, coloured by class.

    At most MAX_PANELS RDMs (evenly spaced in figure order) and MAX_MDS_STIMULI stimuli (the same
    :func:`stimulus_subsample` in every panel); ``load`` is called once per panel. Returns the figure.
    """
    labels = np.asarray(labels)
    shown, note = _shown_records(records)
    sub = stimulus_subsample(labels, MAX_MDS_STIMULI)
    n_classes = len(class_names)
    colours = plt.get_cmap("tab10" if n_classes <= 10 else "tab20")
    fig, axes = panel_grid(len(shown), width=3.0, extra_h=1.2)
    for ax, record in zip(axes.flat, shown):
        pos = classical_mds(load(record)[np.ix_(sub, sub)])
        for c in np.unique(labels[sub]):
            sel = labels[sub] == c
            ax.scatter(pos[sel, 0], pos[sel, 1], s=6 if sub.size > 300 else 12, color=colours(int(c) % colours.N),
                       label=class_names[int(c)], linewidths=0)
        panel_title(ax, record)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    if n_classes <= colours.N:
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=min(10, len(names)), fontsize=7, markerscale=1.5)
    stim_note = selection_note(sub.size, labels.size, "stimuli", "each class's share, evenly spaced in stored order")
    colour_note = f"colours repeat every {colours.N} classes (no legend)" if n_classes > colours.N else ""
    figure_title(fig, "Stimuli in each representation (classical MDS of the RDM)", [note, stim_note, colour_note])
    fig.subplots_adjust(bottom=0.1 if n_classes <= colours.N else 0.03)
    return fig


def stimulus_mds_panel(records: Sequence[dict], labels: np.ndarray, class_names: list[str], path,
                       load=lambda r: r["rdm"]) -> None:
    """Draw :func:`stimulus_mds_figure` to ``path`` (PNG and PDF)."""
    save_figure(stimulus_mds_figure(records, labels, class_names, load), path)

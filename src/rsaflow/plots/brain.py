"""The model-versus-brain figure: one panel per brain region (external group), a bar per model
layer of its mean similarity to the region's subjects, the noise ceiling as a grey band."""

from __future__ import annotations

import numpy as np

from rsaflow.figure_data import (EXTERNAL, NOT_LAYERS, MAX_BAR_LABELS, MAX_BRAIN_PANELS, brain_bars, brain_groups,
                                 model_blocks, model_style)
from rsaflow.plots.base import figure_title, plt, save_figure


def _brain_panel(ax, result: dict, group: int) -> str:
    """One region's bars (:func:`brain_bars`), error bars and ceiling band; returns the label note."""
    b = brain_bars(result, group)
    ax.axhspan(b["lower"], b["upper"], color="0.8", zorder=0, label="noise ceiling (lower to upper)")
    colours = [model_style(m)[0] for m in b["models"]]
    ax.bar(b["x"], b["value"], width=0.8, color=colours, zorder=2)
    what = ("bootstrap interval over stimuli" if b["error_kind"] == "bootstrap" else "± s.e.m. over subjects")
    ax.vlines(b["x"], b["low"], b["high"], color="black", lw=0.8, zorder=3, label=what)
    for end in (b["low"], b["high"]):  # caps
        ax.hlines(end, b["x"] - 0.15, b["x"] + 0.15, color="black", lw=0.8, zorder=3)
    ax.axhline(0.0, color="black", lw=0.6, zorder=1)
    ax.set_title(f"{result['labels'][group]} ({b['n_subjects']} subjects)", fontsize=9, pad=14)
    ax.set_ylabel(f"{result['method']} similarity\n(mean over subjects)", fontsize=8)
    note = ""
    if len(b["rows"]) <= MAX_BAR_LABELS:
        ax.set_xticks(b["x"], b["layers"], rotation=90, fontsize=max(5, min(8, 10 - len(b["rows"]) // 8)))
        for label, colour in zip(ax.get_xticklabels(), colours):
            label.set_color(colour)
    else:
        blocks = model_blocks(b["models"])
        ax.set_xticks([(b["x"][a] + b["x"][e - 1]) / 2 for _, a, e in blocks], [m for m, _, _ in blocks],
                      rotation=90, fontsize=7)
        note = f"{len(b['rows'])} layers: one label per model, layers in depth order"
    blocks = model_blocks(b["models"])  # model names above the bars (colours may repeat across models)
    top = ax.secondary_xaxis("top")
    top.set_xticks([(b["x"][a] + b["x"][e - 1]) / 2 for _, a, e in blocks], [m for m, _, _ in blocks], fontsize=7)
    top.tick_params(length=0)
    lo = min(0.0, float(np.nanmin(np.minimum(b["value"], b["low"]))), b["lower"])
    hi = max(float(np.nanmax(np.maximum(b["value"], b["high"]))), b["upper"])
    ax.set_ylim(lo - 0.05 * (hi - lo), hi + 0.25 * (hi - lo))
    ax.legend(loc="upper right", fontsize=7, frameon=True, framealpha=0.9)
    return note


def brain_figure(result: dict):
    """One panel per external group (brain region; at most MAX_BRAIN_PANELS, in figure order): a bar per
    model layer of its mean similarity to the region's subjects, grouped by model with layers in
    depth order, coloured by model; error bars as :func:`brain_bars` (bootstrap interval over stimuli
    when inference ran, else ± s.e.m. over subjects); the noise ceiling as a grey band."""
    groups = brain_groups(result)
    if not groups:
        raise ValueError("no external group with noise ceilings in this second-order file")
    shown = groups[:MAX_BRAIN_PANELS]
    n_bars = int(sum(m not in NOT_LAYERS for m in result["models"]))
    width = float(np.clip(0.22 * n_bars + 2.5, 5.0, 18.0))
    fig, axes = plt.subplots(len(shown), 1, figsize=(width, 3.4 * len(shown) + 0.9), squeeze=False)
    notes = [_brain_panel(ax, result, g) for ax, g in zip(axes[:, 0], shown)]
    if len(groups) > len(shown):
        notes.append(f"{len(shown)} of {len(groups)} regions shown: the first in name order")
    figure_title(fig, f"Model layers versus brain regions ({result['method']})", sorted(set(notes)))
    fig.tight_layout()
    return fig


def brain_plot(result: dict, path) -> None:
    """:func:`brain_figure` written to ``path`` (PNG) and the PDF beside it."""
    save_figure(brain_figure(result), path)

"""The second-order heatmap: the K x K matrix in figure order, each cell's value printed in it up
to MAX_CELL_NUMBERS rows, and with inference results a panel of pairs with intervals and p-values.

Layout in inches, not in shares of the figure: the matrix is always heatmap_side_inches(K) square,
the colour bar and the pairs panel sit beside it at their measured widths (tick labels, titles), and
the figure grows to hold them; nothing is shrunk to make room for another panel.
"""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np

from rsaflow.figure_data import (MAX_CELL_NUMBERS, MAX_PAIRS, MAX_TICK_LABELS, evenly_spaced,
                                 heatmap_side_inches, model_blocks, model_style, ordered_result,
                                 pair_selection, selection_note)
from rsaflow.methods import dissimilarity_label
from rsaflow.plots.base import CMAP, plt, save_figure

#: Inches: outer pad, gap before the pairs panel, colour bar width and its gap, pairs panel width, row pitch.
PAD, GAP, CBAR_W, CBAR_GAP, PAIRS_W, PAIR_ROW = 0.1, 0.35, 0.18, 0.15, 4.0, 0.19
#: Largest in-cell font size (pt) and the share of a cell's width the widest value may fill.
CELL_FONT_MAX, CELL_FILL = 8.0, 0.8


def _wrap(note: str, width: int = 72) -> str:
    return "\n".join(textwrap.wrap(note, width))


def _heatmap_ticks(ax, names: Sequence[str], models: Sequence[str]) -> str:
    """Row/column labels coloured by model (or one label per model block above MAX_TICK_LABELS rows),
    white lines between models. Returns the selection note."""
    k, blocks = len(names), model_blocks(models)
    for _, a, _b in blocks[1:]:
        ax.axhline(a - 0.5, color="white", lw=0.8)
        ax.axvline(a - 0.5, color="white", lw=0.8)
    if k <= MAX_TICK_LABELS:
        ticks, texts, owners, note = range(k), names, models, ""
    else:
        keep = evenly_spaced(len(blocks), MAX_TICK_LABELS)
        ticks = [(blocks[i][1] + blocks[i][2] - 1) / 2 for i in keep]
        texts = owners = [blocks[i][0] for i in keep]
        note = (f"{k} RDMs: one label per model block ({len(keep)} of {len(blocks)} models named), "
                "rows in model/depth order")
    fs = max(5, min(9, 10 - len(texts) // 8))
    ax.set_xticks(ticks, texts, rotation=90, fontsize=fs)
    ax.set_yticks(ticks, texts, fontsize=fs)
    for axis in (ax.get_xticklabels(), ax.get_yticklabels()):
        for label, model in zip(axis, owners):
            label.set_color(model_style(model)[0])
    return note


def _pairs_panel(ax, r: dict) -> None:
    """Selected pairs (:func:`pair_selection`) with their value, bootstrap interval and p-value."""
    matrix, names, method = r["matrix"], r["labels"], r["method"]
    pairs, total = pair_selection(r["models"])
    y = np.arange(len(pairs))
    ax.scatter([matrix[i, j] for i, j in pairs], y, color="black", s=12, zorder=2)
    if "ci_lower" in r:
        lo = np.array([r["ci_lower"][i, j] for i, j in pairs])
        hi = np.array([r["ci_upper"][i, j] for i, j in pairs])
        ax.hlines(y, lo, hi, color="tab:blue", lw=2, zorder=1, label="bootstrap interval")
        ax.legend(fontsize=7, loc="lower right", framealpha=0.9)
    labels = [f"{names[i]} vs {names[j]}" for i, j in pairs]
    if "p_values" in r:
        labels = [f"{t}  (p={float(r['p_values'][i, j]):.3g})" for t, (i, j) in zip(labels, pairs)]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.set_xlabel(dissimilarity_label(method))
    note = selection_note(len(pairs), total, "pairs", "groups in turn: network vs external, between networks, "
                           "within a network, external vs external;\nthe group that overflows keeps whole rows, "
                           "evenly spaced in model/depth order")
    title = "Pairs" + (" with bootstrap intervals" if "ci_lower" in r else "")
    ax.set_title(title + ("\n" + _wrap(note) if note else ""), fontsize=9 if not note else 8)


def cell_font_size(fig, matrix: np.ndarray, cell_in: float) -> float:
    """Font size (pt) of the in-cell values: the largest up to CELL_FONT_MAX at which the widest
    value (two decimals) fills at most CELL_FILL of a cell's width and 60% of its height."""
    widest = max((f"{v:.2f}" for v in np.asarray(matrix).ravel()), key=len)
    probe = fig.text(0, 0, widest, fontsize=10)
    width_px = probe.get_window_extent(fig.canvas.get_renderer()).width
    probe.remove()
    cell_pt = cell_in * 72.0
    return float(min(CELL_FONT_MAX, 10.0 * CELL_FILL * cell_in * fig.dpi / width_px, 0.6 * cell_pt))


def _cell_numbers(ax, matrix: np.ndarray, vmax: float, cell_in: float) -> None:
    """Each cell's value (two decimals) centred in it, white on the dark half of the colour scale."""
    size = cell_font_size(ax.figure, matrix, cell_in)
    for (i, j), v in np.ndenumerate(matrix):
        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=size,
                color="white" if v < 0.5 * vmax else "black")


def _margins(ax, renderer, dpi: float) -> np.ndarray:
    """Inches that an axes' decorations (tick labels, titles, labels) reach beyond its box:
    left, bottom, right, top (>= 0)."""
    box, tight = ax.get_window_extent(renderer), ax.get_tightbbox(renderer)
    return np.maximum([box.x0 - tight.x0, box.y0 - tight.y0, tight.x1 - box.x1, tight.y1 - box.y1], 0) / dpi


def _place(fig, heat, cbar, pairs, side: float, pairs_h: float) -> None:
    """Fixed-size axes, left to right: matrix (side x side in), colour bar, pairs panel (optional),
    each after the measured decorations of the one before; the figure is sized to hold them all."""
    renderer = fig.canvas.get_renderer()
    mh, mc = _margins(heat, renderer, fig.dpi), _margins(cbar, renderer, fig.dpi)
    mp = _margins(pairs, renderer, fig.dpi) if pairs is not None else np.zeros(4)
    x_heat = PAD + mh[0]
    x_cbar = x_heat + side + max(mh[2], CBAR_GAP)
    x_pairs = x_cbar + CBAR_W + mc[2] + GAP + mp[0]
    width = (x_pairs + PAIRS_W + mp[2] if pairs is not None else x_cbar + CBAR_W + mc[2]) + PAD
    top = PAD + max(mh[3], mc[3], mp[3])
    height = top + max(side + mh[1], pairs_h + mp[1] if pairs is not None else 0.0) + PAD
    fig.set_size_inches(width, height)
    for ax, x, w, h in ((heat, x_heat, side, side), (cbar, x_cbar, CBAR_W, side), (pairs, x_pairs, PAIRS_W, pairs_h)):
        if ax is not None:
            ax.set_position([x / width, (height - top - h) / height, w / width, h / height])


def second_order_heatmap_figure(result: dict):
    """The K x K second-order matrix (1 - similarity) in figure order, rows labelled and coloured by
    model, each cell's value printed in it when K <= MAX_CELL_NUMBERS (font sized to the cell,
    :func:`cell_font_size`). With inference results, a second panel lists pairs (at most MAX_PAIRS, by
    :func:`pair_selection`) with bootstrap interval and permutation p-value. Returns the figure."""
    r = ordered_result(result)
    matrix, k = r["matrix"], len(r["labels"])
    with_pairs = ("ci_lower" in r or "p_values" in r) and k > 1
    side = heatmap_side_inches(k)
    pairs_h = max(1.2, PAIR_ROW * min(MAX_PAIRS, k * (k - 1) // 2))
    fig = plt.figure(figsize=(side + 7.0, max(side, pairs_h) + 2.0))
    ax = fig.add_axes((0.1, 0.1, 0.3, 0.3))
    pairs = fig.add_axes((0.6, 0.1, 0.3, 0.8)) if with_pairs else None  # axes order: matrix, pairs, colour bar
    cax = fig.add_axes((0.45, 0.1, 0.02, 0.3))
    vmax = max(1.0, float(np.nanmax(matrix)))
    image = ax.imshow(matrix, cmap=CMAP, vmin=0, vmax=vmax, interpolation="nearest")
    note = _heatmap_ticks(ax, r["labels"], r["models"])
    if k <= MAX_CELL_NUMBERS:
        _cell_numbers(ax, matrix, vmax, side / k)
    fig.colorbar(image, cax=cax).set_label(dissimilarity_label(r["method"]))
    ax.set_title("Second-order dissimilarity matrix" + (f"\n{_wrap(note)}" if note else ""),
                 fontsize=10 if not note else 8)
    if with_pairs:
        _pairs_panel(pairs, r)
    _place(fig, ax, cax, pairs, side, pairs_h)
    return fig


def second_order_heatmap(result: dict, path) -> None:
    """Draw :func:`second_order_heatmap_figure` to ``path`` (PNG and PDF)."""
    save_figure(second_order_heatmap_figure(result), path)

"""The second-order MDS: every RDM as a point in 2-D (:func:`rsaflow.figure_data.mds_embedding`),
the layers of a network joined in depth order, labels placed without overlap."""

from __future__ import annotations

import textwrap
from typing import Sequence

import numpy as np

from rsaflow.figure_data import (NOT_LAYERS, label_subset, layer_key, layer_numbers, mds_embedding, model_blocks,
                                 model_style, ordered_result, selection_note)
from rsaflow.methods import dissimilarity_label
from rsaflow.label_boxes import free_box, segment_boxes
from rsaflow.plots.base import plt, save_figure


def place_labels(ax, texts: Sequence[str], xy: np.ndarray, marker_pt: float = 5.0, fontsize: float = 7,
                 colours: Sequence | None = None, segments: np.ndarray | None = None,
                 others: np.ndarray | None = None) -> list:
    """Label points without overlap or clipping, greedily in the given order.

    Each label takes the first free spot on rings of growing radius around its point (directions
    facing away from the cloud's centre first): inside the axes, clear of every placed label, of
    every marker (a square of ``marker_pt`` points half-width around each row of ``xy`` and of
    ``others``, the unlabelled points) and of the
    drawn line ``segments`` ((n, 2, 2) data coords). A label more than 4 pt from its point gets a
    thin leader line. Set the axes limits before calling. Returns the annotations, None where no
    free spot exists (the caller states how many were left out).
    """
    fig = ax.figure
    ax.apply_aspect()
    renderer = fig.canvas.get_renderer()
    px = fig.dpi / 72.0
    pts = ax.transData.transform(np.asarray(xy, dtype=np.float64))
    m = marker_pt * px
    every = pts if others is None else np.vstack([pts, ax.transData.transform(np.asarray(others, dtype=float))])
    obstacles = np.vstack([np.column_stack([every - m, every + m]), segment_boxes(
        ax.transData.transform(segments.reshape(-1, 2)).reshape(-1, 2, 2) if segments is not None and len(segments)
        else np.empty((0, 2, 2)))])
    frame = ax.bbox.extents + np.array([2, 2, -2, -2])
    out = []
    for i, text in enumerate(texts):
        probe = ax.text(0, 0, text, fontsize=fontsize, ha="left", va="bottom", transform=None)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        box = free_box(pts[i], ext.width + 2, ext.height + 2, pts.mean(axis=0), frame, obstacles)
        if box is None:
            out.append(None)
            continue
        gap = np.hypot(*np.maximum(np.maximum(box[:2] - pts[i], pts[i] - box[2:]), 0.0))
        out.append(ax.annotate(
            text, xy[i], xytext=(box[:2] + 1 - pts[i]) / px, textcoords="offset points", ha="left", va="bottom",
            fontsize=fontsize, color=colours[i] if colours is not None else "black", annotation_clip=False,
            arrowprops={"arrowstyle": "-", "lw": 0.5, "color": "0.55", "shrinkA": 0, "shrinkB": marker_pt * 0.8}
            if gap > m + 4 * px else None))
        obstacles = np.vstack([obstacles, box])
    return out


def _draw_points(ax, pos: np.ndarray, models: Sequence[str]) -> None:
    """Markers coloured by model (:func:`model_style`); layers of one network joined in depth order
    (figure order) with an arrow at the deepest; external RDMs as black stars, never joined."""
    from matplotlib.lines import Line2D

    handles = []
    big = len(models) > 100  # smaller markers in a crowd
    for model, a, b in model_blocks(models):
        colour, marker = model_style(model)
        if model in NOT_LAYERS:
            ax.scatter(pos[a:b, 0], pos[a:b, 1], color=colour, marker=marker, s=60 if big else 120, zorder=3,
                       linewidths=0)
            handles.append(Line2D([], [], color=colour, marker=marker, ls="", ms=11, label="external RDMs (no line)"))
            continue
        if b - a > 1:
            ax.plot(pos[a:b, 0], pos[a:b, 1], "-", color=colour, lw=0.7 if big else 1.3, alpha=0.8, zorder=1)
            ax.annotate("", xy=pos[b - 1], xytext=pos[b - 2], zorder=1,
                        arrowprops={"arrowstyle": "->", "color": colour, "lw": 1.3})
        ax.scatter(pos[a:b, 0], pos[a:b, 1], color=colour, marker=marker, s=15 if big else 40, zorder=2,
                   edgecolors="white", linewidths=0.5)
        handles.append(Line2D([], [], color=colour, marker=marker, ls="-" if b - a > 1 else "", label=model))
    if len(handles) > 30:
        handles = handles[:29] + [Line2D([], [], ls="", label=f"... {len(handles) - 29} more")]
    shown = handles
    ax.legend(handles=shown, fontsize=7, title="model (lines: layers in depth order)", title_fontsize=7,
              loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0, ncol=1 if len(shown) <= 20 else 2)


def _set_limits(ax, pos: np.ndarray, margin: float = 0.2) -> None:
    """Equal-aspect limits (each side at least 0.6 of the longer one) with a margin for labels, fixed
    before labels are placed; the axes box adjusts to the aspect."""
    lo, hi = pos.min(axis=0), pos.max(axis=0)
    span = float(max((hi - lo).max(), 1e-12))
    half = np.maximum(hi - lo, 0.6 * span) / 2 + margin * span
    mid = (lo + hi) / 2
    ax.set_xlim(mid[0] - half[0], mid[0] + half[0])
    ax.set_ylim(mid[1] - half[1], mid[1] + half[1])
    ax.set_aspect("equal", adjustable="box")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_color("0.85")


def _key(ax, labels: Sequence[str], models: Sequence[str], shown: Sequence[int]) -> str:
    """The layer-number key below the axes (:func:`rsaflow.figure_data.layer_key`), one line per
    entry in its models' colour, wrapped; returns the selection note."""
    from matplotlib.offsetbox import AnchoredOffsetbox, TextArea, VPacker

    entries, total = layer_key(labels, models, shown)
    if not entries:
        return ""
    lines = [TextArea("layer numbers: depth order within each model", textprops={"fontsize": 7, "color": "0.3"})]
    for names, pairs in entries:
        text = ", ".join(names) + ":  " + "   ".join(f"{n}\u00a0{layer}" for n, layer in pairs)
        colour = model_style(names[0])[0] if len(names) == 1 else "black"
        lines += [TextArea(line, textprops={"fontsize": 7, "color": colour})
                  for line in textwrap.wrap(text, 120, subsequent_indent="    ")]
    box = VPacker(children=lines, align="left", pad=0, sep=2)
    ax.add_artist(AnchoredOffsetbox("upper left", child=box, bbox_to_anchor=(0, -0.01), bbox_transform=ax.transAxes,
                                    frameon=False, borderpad=0, pad=0))
    return selection_note(len(entries), total, "key entries", "the first in model order")


def mds_figure(result: dict, seed: int):
    """Labelled 2-D MDS (:func:`mds_embedding`) of the second-order matrix, in figure order.

    Points of a network are labelled with their layer's position in the model's depth order
    (:func:`rsaflow.figure_data.layer_numbers`; '1' = shallowest), named in a key below the axes;
    external RDMs with their name. At most MAX_POINT_LABELS labels (by :func:`label_subset`), placed
    by :func:`place_labels`; the figure states how many points are labelled. Returns the figure.
    """
    r = ordered_result(result)
    names, models, k = r["labels"], r["models"], len(r["labels"])
    pos = mds_embedding(r["matrix"], seed)
    fig, ax = plt.subplots(figsize=(8.5, 6.5))
    _draw_points(ax, pos, models)
    _set_limits(ax, pos, margin=0.08)
    idx = label_subset(models, r["depth"])
    segments = np.array([pos[[i, i + 1]] for m, a, b in model_blocks(models) if m not in NOT_LAYERS
                         for i in range(a, b - 1)])
    short = layer_numbers(names, models)
    placed = place_labels(ax, [short[i] for i in idx], pos[idx], colours=[model_style(models[i])[0] for i in idx],
                          segments=segments.reshape(-1, 2, 2), others=pos, fontsize=8)
    shown = [i for i, a in zip(idx, placed) if a is not None]
    note = selection_note(len(shown), k, "points labelled",
                          "external RDMs and each model's first and last layer first, then evenly spaced; "
                          "a label with no free spot is left out")
    key_note = _key(ax, names, models, shown)
    notes = "".join(f"\n{n}" for n in (note, key_note) if n)
    ax.set_title(f"MDS of the second-order matrix ({dissimilarity_label(r['method'])})" + notes,
                 fontsize=10 if not notes else 8)
    return fig


def mds_plot(result: dict, seed: int, path) -> None:
    """Draw :func:`mds_figure` to ``path`` (PNG and PDF)."""
    save_figure(mds_figure(result, seed), path)

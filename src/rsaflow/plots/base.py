"""What every figure module shares: the Agg backend, writing PNG + PDF, titles that state
selections, panel grids and class marks along RDM axes."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rsaflow.figure_data import MAX_CLASS_TICKS, class_blocks, evenly_spaced, model_style  # noqa: E402

CMAP = "viridis"


def save_figure(fig, path) -> None:
    """Write ``path`` (PNG, 150 dpi) and the same figure as vector PDF beside it (same stem)."""
    path = Path(path)
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight", metadata={"Creator": None, "Producer": None,
                                                                         "CreationDate": None})
    plt.close(fig)


def mark_classes(ax, labels: np.ndarray, class_names: Sequence[str], x_names: bool, y_names: bool) -> str:
    """Class blocks along both axes of a stimulus-by-stimulus image: thin white lines between blocks
    (:func:`rsaflow.figure_data.class_blocks`), and each block's class name at its midpoint on the
    axes asked for (x: rotated 90 degrees). At most MAX_CLASS_TICKS names, evenly spaced in block
    order (separators are drawn for every block). Returns the selection note ('' if all named)."""
    blocks = class_blocks(labels)
    for _, a, _b in blocks[1:]:
        ax.axhline(a - 0.5, color="white", lw=0.4)
        ax.axvline(a - 0.5, color="white", lw=0.4)
    named = [blocks[i] for i in evenly_spaced(len(blocks), MAX_CLASS_TICKS)]
    ticks = [(a + b - 1) / 2 for _, a, b in named]
    names = [str(class_names[c]) if 0 <= c < len(class_names) else str(c) for c, _, _ in named]
    fs = 6 if len(named) <= 10 else 5
    ax.set_xticks(ticks, names if x_names else [], rotation=90, fontsize=fs)
    ax.set_yticks(ticks, names if y_names else [], fontsize=fs)
    ax.tick_params(length=0, pad=1)
    return "" if len(named) == len(blocks) else f"{len(named)} of {len(blocks)} class blocks named (evenly spaced)"


def panel_grid(k: int, width: float = 3.2, extra_h: float = 0.9):
    """A figure of k square panels, at most 4 per row; unused axes switched off."""
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 0.8, width * nrows + extra_h), squeeze=False)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    return fig, axes


def figure_title(fig, title: str, notes: Sequence[str]) -> None:
    """Suptitle plus one line per non-empty selection note (the figure says what it leaves out)."""
    lines = [n for n in notes if n]
    fig.suptitle("\n".join([title, *lines]), fontsize=10 if not lines else 9)


def panel_title(ax, record: dict) -> None:
    """The RDM's label above its panel, coloured by model."""
    ax.set_title(record["label"], fontsize=8, color=model_style(record["model"])[0])

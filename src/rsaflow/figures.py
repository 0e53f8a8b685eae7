"""Figures: stimulus grid, percentile RDM panel, second-order heatmap, MDS embedding.

Plotting only; the numbers come from :mod:`rsaflow.rdm` and :mod:`rsaflow.compare`.
Every figure is written as PNG, and as PDF when the output path ends in ``.pdf``.
"""

from __future__ import annotations

import math

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rsaflow.rdm import percentile_ranks  # noqa: E402

CMAP = "viridis"


def _save(fig, path) -> None:
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None} if str(path).endswith(".png") else None)
    plt.close(fig)


def _class_boundaries(ax, labels: np.ndarray) -> None:
    """Thin white lines between blocks of consecutive equal labels."""
    edges = np.nonzero(np.diff(labels))[0] + 0.5
    for e in edges:
        ax.axhline(e, color="white", lw=0.4)
        ax.axvline(e, color="white", lw=0.4)


def stimulus_grid(images: np.ndarray, labels: np.ndarray, class_names: list[str], path, max_per_class: int = 20) -> None:
    """One row per class, up to ``max_per_class`` images each, in the stored (selection) order."""
    classes = np.unique(labels)
    per_class = min(max_per_class, max(int(np.sum(labels == c)) for c in classes))
    fig, axes = plt.subplots(len(classes), per_class, figsize=(per_class * 0.6 + 1.2, len(classes) * 0.6), squeeze=False)
    for r, c in enumerate(classes):
        idx = np.nonzero(labels == c)[0][:per_class]
        for k in range(per_class):
            ax = axes[r, k]
            ax.axis("off")
            if k < len(idx):
                ax.imshow(images[idx[k]].transpose(1, 2, 0), interpolation="nearest")
        axes[r, 0].text(-0.1, 0.5, class_names[int(c)], transform=axes[r, 0].transAxes, ha="right", va="center", fontsize=7)
    fig.suptitle(f"Stimuli: {len(labels)} images, {len(classes)} classes")
    fig.subplots_adjust(wspace=0.05, hspace=0.05)
    _save(fig, path)


def rdm_panel(rdms: list[tuple[str, np.ndarray]], labels: np.ndarray, path) -> None:
    """All RDMs as percentile heatmaps (0-100) in one figure, class boundaries marked."""
    k = len(rdms)
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols + 0.8, 3.2 * nrows + 0.4), squeeze=False)
    image = None
    for ax, (name, rdm) in zip(axes.flat, rdms):
        image = ax.imshow(percentile_ranks(rdm), cmap=CMAP, vmin=0, vmax=100, interpolation="nearest")
        _class_boundaries(ax, labels)
        ax.set_title(name, fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, ticks=[0, 50, 100])
    cbar.set_label("dissimilarity (percentile)")
    fig.suptitle("Representational dissimilarity matrices")
    _save(fig, path)


def second_order_heatmap(matrix: np.ndarray, names: list[str], method: str, path) -> None:
    """The K x K second-order matrix with labelled rows and columns (1 - correlation, 0..1 colour scale)."""
    k = len(names)
    size = max(4.0, 0.35 * k + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1, size))
    image = ax.imshow(matrix, cmap=CMAP, vmin=0, vmax=max(1.0, float(matrix.max())), interpolation="nearest")
    ax.set_xticks(range(k), names, rotation=90, fontsize=max(5, 10 - k // 8))
    ax.set_yticks(range(k), names, fontsize=max(5, 10 - k // 8))
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.5 else "black")
    cbar = fig.colorbar(image, ax=ax, shrink=0.8)
    cbar.set_label(f"1 - {method} correlation")
    ax.set_title("Second-order dissimilarity matrix")
    _save(fig, path)


def mds_embedding(matrix: np.ndarray, seed: int) -> np.ndarray:
    """2-D metric MDS of a precomputed dissimilarity matrix (scikit-learn SMACOF, 4 random inits).

    K = 1 gives the origin; K = 2 places the points at -d/2 and +d/2 on the x axis (exact).
    """
    from sklearn.manifold import MDS

    k = matrix.shape[0]
    if k == 1:
        return np.zeros((1, 2))
    if k == 2:
        d = float(matrix[0, 1])
        return np.array([[-d / 2, 0.0], [d / 2, 0.0]])
    mds = MDS(n_components=2, metric="precomputed", metric_mds=True, init="random", n_init=4, random_state=seed)
    return mds.fit_transform(matrix)


def mds_plot(matrix: np.ndarray, names: list[str], seed: int, path) -> None:
    """Labelled 2-D MDS of the second-order matrix; lines between points coloured by dissimilarity."""
    pos = mds_embedding(matrix, seed)
    fig, ax = plt.subplots(figsize=(6, 5))
    cmap = plt.get_cmap(CMAP)
    k = len(names)
    if k <= 12:
        for i in range(k):
            for j in range(i + 1, k):
                ax.plot(pos[[i, j], 0], pos[[i, j], 1], color=cmap(min(matrix[i, j], 1.0)), lw=1, zorder=1)
    ax.scatter(pos[:, 0], pos[:, 1], color="black", s=40, zorder=2)
    for name, (x, y) in zip(names, pos):
        ax.annotate(name, (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
    ax.set_title("MDS of the second-order dissimilarity matrix")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    _save(fig, path)

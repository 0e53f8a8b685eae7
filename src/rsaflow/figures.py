"""Figures: stimulus grid, percentile RDM panel, second-order heatmap, MDS embedding.

Plotting only; the numbers come from :mod:`rsaflow.rdm` and :mod:`rsaflow.compare`.
Every figure is written as PNG (for the report) and as PDF (vector, for papers) beside it.
"""

from __future__ import annotations

import math
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rsaflow.rdm import percentile_ranks  # noqa: E402

CMAP = "viridis"


def _save(fig, path) -> None:
    """Write ``path`` (PNG, 150 dpi) and the same figure as vector PDF beside it (same stem)."""
    path = Path(path)
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight", metadata={"Creator": None, "Producer": None,
                                                                         "CreationDate": None})
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


def second_order_heatmap(result: dict, path) -> None:
    """The K x K second-order matrix with labelled rows and columns (1 - similarity).

    With inference results, a second panel lists every pair with its bootstrap interval and,
    when present, its permutation p-value.
    """
    matrix, names, method = result["matrix"], result["labels"], result["method"]
    k = len(names)
    has_ci = "ci_lower" in result
    size = max(4.0, 0.35 * k + 2.5)
    ncols = 2 if (has_ci or "p_values" in result) and k > 1 else 1
    widths = [1.0, 1.4][:ncols]
    fig, axes = plt.subplots(1, ncols, figsize=((size + 1) * sum(widths) + 1, size), squeeze=False,
                             layout="constrained", gridspec_kw={"width_ratios": widths})
    ax = axes[0, 0]
    image = ax.imshow(matrix, cmap=CMAP, vmin=0, vmax=max(1.0, float(matrix.max())), interpolation="nearest")
    ax.set_xticks(range(k), names, rotation=90, fontsize=max(5, 10 - k // 8))
    ax.set_yticks(range(k), names, fontsize=max(5, 10 - k // 8))
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.5 else "black")
    cbar = fig.colorbar(image, ax=ax, shrink=0.8)
    cbar.set_label(f"1 - {method} similarity")
    ax.set_title("Second-order dissimilarity matrix")
    if ncols == 2:
        ax = axes[0, 1]
        pairs = [(i, j) for i in range(k) for j in range(i + 1, k)][:60]
        y = np.arange(len(pairs))
        ax.scatter([matrix[i, j] for i, j in pairs], y, color="black", s=12, zorder=2)
        if has_ci:
            lo = np.array([result["ci_lower"][i, j] for i, j in pairs])
            hi = np.array([result["ci_upper"][i, j] for i, j in pairs])
            ax.hlines(y, lo, hi, color="tab:blue", lw=2, zorder=1, label="bootstrap interval")
        labels = [f"{names[i]} vs {names[j]}" for i, j in pairs]
        if "p_values" in result:
            labels = [f"{t}  (p={result['p_values'][i, j]:.3g})" for t, (i, j) in zip(labels, pairs)]
        ax.set_yticks(y, labels, fontsize=7)
        ax.invert_yaxis()
        ax.set_xlabel(f"1 - {method} similarity")
        ax.set_title("Pairs" + (" with bootstrap intervals" if has_ci else ""))
        if has_ci:
            ax.legend(fontsize=7, loc="lower right")
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


def _radial_labels(ax, names: list[str], pos: np.ndarray) -> None:
    """Label points away from the cloud's centre (fewer overlaps than labels all above)."""
    centre = pos.mean(axis=0)
    scale = np.abs(pos - centre).max() or 1.0
    for i, (name, p) in enumerate(zip(names, pos)):
        d = (p - centre) / scale
        norm = np.hypot(*d)
        d = d / norm if norm > 1e-9 else np.array([0.0, 1.0])
        ha = "left" if d[0] > 0.3 else "right" if d[0] < -0.3 else "center"
        ax.annotate(name, p, textcoords="offset points", xytext=(10 * d[0], 10 * d[1] - 3), ha=ha, fontsize=7)


def mds_plot(result: dict, seed: int, path) -> None:
    """Labelled 2-D MDS of the second-order matrix. Layers of one model are joined in depth
    order (their graph-node position) as a trajectory; with few points, lines between all
    pairs are coloured by their dissimilarity instead."""
    matrix, names = result["matrix"], result["labels"]
    models, depth = result["models"], result["depth"]
    pos = mds_embedding(matrix, seed)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    cmap = plt.get_cmap(CMAP)
    k = len(names)
    by_model: dict = {}
    for i, model in enumerate(models):
        by_model.setdefault(model, []).append(i)
    trajectories = {m: sorted(idx, key=lambda i: depth[i]) for m, idx in by_model.items() if len(idx) > 1}
    colours = plt.get_cmap("tab10")
    if trajectories:
        for c, (model, idx) in enumerate(sorted(trajectories.items())):
            ax.plot(pos[idx, 0], pos[idx, 1], "-", color=colours(c % 10), lw=1.5, zorder=1, label=model)
            ax.annotate("", xy=pos[idx[-1]], xytext=pos[idx[-2]],
                        arrowprops={"arrowstyle": "->", "color": colours(c % 10)}, zorder=1)
        ax.legend(fontsize=7, title="layers in depth order", title_fontsize=7)
    elif k <= 12:
        for i in range(k):
            for j in range(i + 1, k):
                ax.plot(pos[[i, j], 0], pos[[i, j], 1], color=cmap(min(matrix[i, j], 1.0)), lw=1, zorder=1)
    ax.scatter(pos[:, 0], pos[:, 1], color="black", s=30, zorder=2)
    _radial_labels(ax, names, pos)
    ax.set_title(f"MDS of the second-order matrix (1 - {result['method']})")
    ax.set_aspect("equal", adjustable="datalim")
    ax.set_xticks([])
    ax.set_yticks([])
    for side in ax.spines.values():
        side.set_visible(False)
    _save(fig, path)


def stimulus_mds_panel(rdms: list[tuple[str, np.ndarray]], labels: np.ndarray, class_names: list[str], seed: int,
                       path) -> None:
    """First-order MDS: each RDM's stimuli embedded in 2-D, coloured by class."""
    k = len(rdms)
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(3.2 * ncols, 3.2 * nrows + 0.5), squeeze=False)
    colours = plt.get_cmap("tab10" if len(class_names) <= 10 else "tab20")
    for ax, (name, rdm) in zip(axes.flat, rdms):
        pos = mds_embedding(rdm, seed)
        for c in np.unique(labels):
            sel = labels == c
            ax.scatter(pos[sel, 0], pos[sel, 1], s=10, color=colours(int(c) % colours.N), label=class_names[int(c)])
        ax.set_title(name, fontsize=8)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    handles, names = axes.flat[0].get_legend_handles_labels()
    fig.legend(handles, names, loc="lower center", ncol=min(10, len(names)), fontsize=7, markerscale=1.5)
    fig.suptitle("Stimuli in each representation (MDS of the RDM)")
    fig.subplots_adjust(bottom=0.12)
    _save(fig, path)

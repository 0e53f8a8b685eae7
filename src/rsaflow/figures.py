"""Figures: stimulus grid, percentile RDM panel, second-order heatmap, MDS embeddings, model-versus-brain bars.

Plotting only; the numbers come from :mod:`rsaflow.rdm` and :mod:`rsaflow.compare`.
Every figure is written as PNG (for the report) and as PDF (vector, for papers) beside it.

Conventions shared by every figure (documented in the report captions, ``workflow/report/*.rst``):

- **Order.** RDMs appear by model (model names sorted), within a model by layer depth (the stored
  ``node_index``, the node's position in the traced graph), then by label; external RDMs (model
  ``external``, depth -1) come last, by name. Never alphabetically by label (:func:`figure_order`).
- **Colours.** A model's colour and marker are a function of its name alone (SHA-256 of the name
  into a fixed palette of 12 colours and 6 markers, :func:`model_style`), so adding or removing
  another model never changes them; two models may share a colour, then their markers differ
  with probability 5/6. External RDMs are black stars, never joined by lines.
- **Selections.** Nothing is cut silently: where a figure shows fewer RDMs, stimuli, pairs or
  labels than exist, the figure says how many of how many and by which rule, and the caption
  states the rule. The caps are the ``MAX_*`` constants below.
"""

from __future__ import annotations

import hashlib
import math
from pathlib import Path
from typing import Callable, Sequence

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rsaflow.methods import dissimilarity_label  # noqa: E402

CMAP = "viridis"
EXTERNAL = "external"

#: At most this many RDMs drawn as panels (RDM panel, first-order MDS), evenly spaced in figure order.
MAX_PANELS = 16
#: At most this many stimuli per axis of an RDM panel (every s-th stimulus in stored order).
MAX_PANEL_STIMULI = 500
#: At most this many stimuli per first-order MDS panel (per-class share, evenly spaced in stored order).
MAX_MDS_STIMULI = 500
#: At most this many pairs listed beside the second-order heatmap.
MAX_PAIRS = 60
#: At most this many labelled points in the second-order MDS.
MAX_POINT_LABELS = 30
#: Above this many RDMs the heatmap labels models (blocks), not rows.
MAX_TICK_LABELS = 60
#: Stimulus grid: at most this many classes (rows; evenly spaced) and images per class.
MAX_GRID_CLASSES = 20
MAX_GRID_PER_CLASS = 20

#: Model colours (well separated on white) and markers; :func:`model_style` picks by name hash.
MODEL_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#808080",
                 "#f032e6", "#469990", "#c8a200", "#800000", "#808000", "#000075")
MODEL_MARKERS = ("o", "s", "^", "D", "v", "P")
EXTERNAL_STYLE = ("black", "*")


def _save(fig, path) -> None:
    """Write ``path`` (PNG, 150 dpi) and the same figure as vector PDF beside it (same stem)."""
    path = Path(path)
    fig.savefig(path, dpi=150, bbox_inches="tight", metadata={"Software": None})
    fig.savefig(path.with_suffix(".pdf"), bbox_inches="tight", metadata={"Creator": None, "Producer": None,
                                                                         "CreationDate": None})
    plt.close(fig)


# --- order, colours, selections ---------------------------------------------------------------

def figure_order(models: Sequence[str], depths: Sequence[int], labels: Sequence[str]) -> np.ndarray:
    """Indices that put RDMs in figure order: models by name, each by depth then label; externals last.

    External RDMs (model ``'external'``) follow every model, ordered by label.
    """
    keys = [(m == EXTERNAL, m, int(d), lab) for m, d, lab in zip(models, depths, labels)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def model_style(model: str) -> tuple[str, str]:
    """(colour, marker) of a model, from the SHA-256 of its name alone; externals: black star.

    colour = MODEL_COLOURS[h % 12], marker = MODEL_MARKERS[(h // 12) % 6], h = the digest as integer.
    """
    if model == EXTERNAL:
        return EXTERNAL_STYLE
    h = int.from_bytes(hashlib.sha256(model.encode()).digest()[:8], "big")
    return MODEL_COLOURS[h % len(MODEL_COLOURS)], MODEL_MARKERS[(h // len(MODEL_COLOURS)) % len(MODEL_MARKERS)]


def evenly_spaced(n: int, cap: int) -> np.ndarray:
    """All of ``range(n)`` when n <= cap, else ``cap`` indices evenly spaced from 0 to n - 1 (both ends kept)."""
    if n <= cap:
        return np.arange(n)
    return np.unique(np.round(np.linspace(0, n - 1, cap)).astype(np.int64))


def stimulus_subsample(labels: np.ndarray, cap: int) -> np.ndarray:
    """Sorted stimulus indices, at most ``cap``: all when N <= cap; else each class keeps
    max(1, floor(cap * n_c / N)) of its n_c stimuli, evenly spaced in stored order."""
    labels = np.asarray(labels)
    if labels.size <= cap:
        return np.arange(labels.size)
    keep = []
    for c in np.unique(labels):
        members = np.nonzero(labels == c)[0]
        keep.append(members[evenly_spaced(members.size, max(1, cap * members.size // labels.size))])
    return np.sort(np.concatenate(keep))


def _whole_rows(members: list[tuple[int, int]], room: int) -> list[tuple[int, int]]:
    """At most ``room`` of ``members``: as many whole rows (same first index) as fit, evenly spaced
    (first and last kept); a single row longer than ``room`` is itself evenly thinned."""
    rows: dict[int, list] = {}
    for pair in members:
        rows.setdefault(pair[0], []).append(pair)
    rows_list = list(rows.values())
    for r in range(len(rows_list), 0, -1):
        picked = [rows_list[i] for i in evenly_spaced(len(rows_list), r)]
        if sum(map(len, picked)) <= room:
            return [pair for row in picked for pair in row]
    first = rows_list[0]
    return [first[i] for i in evenly_spaced(len(first), room)]


def pair_selection(models: Sequence[str], cap: int = MAX_PAIRS) -> tuple[list[tuple[int, int]], int]:
    """Pairs (i < j, positions in figure order) to list, and the number of pairs in all.

    Rule: pairs in groups, in this order: network vs external, two different networks, within one
    network, external vs external; each group in figure order. Whole groups are kept while they fit
    in ``cap``; the first group that does not fit keeps whole rows (a layer with all its partners in
    the group), rows evenly spaced in figure order (:func:`_whole_rows`); later groups are left out.
    """
    k = len(models)

    def group(i, j):
        ext = (models[i] == EXTERNAL) + (models[j] == EXTERNAL)
        return {1: 0, 2: 3}.get(ext, 1 if models[i] != models[j] else 2)

    groups: list[list] = [[], [], [], []]
    for i in range(k):
        for j in range(i + 1, k):
            groups[group(i, j)].append((i, j))
    chosen: list[tuple[int, int]] = []
    for members in groups:
        room = cap - len(chosen)
        if room <= 0 or not members:
            continue
        chosen += members if len(members) <= room else _whole_rows(members, room)
        if len(members) > room:
            break
    return chosen, k * (k - 1) // 2


def _selection_note(shown: int, total: int, what: str, rule: str) -> str:
    """'' when everything is shown, else 'showing n of N <what> (<rule>)'."""
    return "" if shown >= total else f"showing {shown} of {total} {what} ({rule})"


# --- numbers drawn ------------------------------------------------------------------------------

def classical_mds(d: np.ndarray, n_components: int = 2) -> np.ndarray:
    """Classical (Torgerson) MDS: coordinates from the top eigenvectors of B = -1/2 J D^2 J.

    d: (n, n) symmetric dissimilarities. Returns (n, n_components): X = V sqrt(max(lambda, 0)) for the
    ``n_components`` largest eigenvalues of B (``scipy.linalg.eigh`` with ``subset_by_index``), in
    decreasing order. For Euclidean distances of points in <= n_components dimensions, the pairwise
    distances of X equal d exactly (up to rounding); otherwise X is the best rank-k fit of B.
    Sign convention: each column's entry of largest magnitude is positive (deterministic).
    """
    from scipy.linalg import eigh

    d = np.asarray(d, dtype=np.float64)
    n = d.shape[0]
    out = np.zeros((n, n_components))
    if n < 2:
        return out
    b = -0.5 * d * d
    b -= b.mean(axis=0, keepdims=True)
    b -= b.mean(axis=1, keepdims=True)
    k = min(n_components, n)
    w, v = eigh(b, subset_by_index=[n - k, n - 1])
    w, v = w[::-1], v[:, ::-1]
    v *= np.sign(v[np.abs(v).argmax(axis=0), np.arange(k)])
    out[:, :k] = v * np.sqrt(np.clip(w, 0.0, None))
    return out


def display_percentiles(rdm: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Percentiles of ``rdm[rows][:, rows]`` among ALL N^2 entries of ``rdm`` (diagonal included).

    Same convention as :func:`rsaflow.rdm.percentile_ranks` (average rank of ties * 100 / N^2),
    evaluated only at the entries drawn: one sort of the N^2 values plus two binary searches.
    """
    values = np.sort(np.asarray(rdm, dtype=np.float64), axis=None)
    shown = np.asarray(rdm, dtype=np.float64)[np.ix_(rows, rows)]
    left = np.searchsorted(values, shown, side="left")
    right = np.searchsorted(values, shown, side="right")
    return (left + right + 1) * (50.0 / values.size)


def mds_embedding(matrix: np.ndarray, seed: int) -> np.ndarray:
    """2-D metric MDS of a precomputed dissimilarity matrix: scikit-learn SMACOF started from
    :func:`classical_mds` (one deterministic run; at K=1,000 faster than four random starts, and
    a lower stress). ``seed`` is passed as ``random_state`` and does not change the result.

    K = 1 gives the origin; K = 2 places the points at -d/2 and +d/2 on the x axis (exact).
    """
    from sklearn.manifold import MDS

    k = matrix.shape[0]
    if k == 1:
        return np.zeros((1, 2))
    if k == 2:
        d = float(matrix[0, 1])
        return np.array([[-d / 2, 0.0], [d / 2, 0.0]])
    mds = MDS(n_components=2, metric="precomputed", metric_mds=True, init="random", n_init=1, random_state=seed)
    return mds.fit_transform(matrix, init=classical_mds(matrix))


# --- label placement ----------------------------------------------------------------------------

_RADII_PX = (3, 7, 12, 18, 26, 36, 48, 62, 80, 100, 125, 155, 190)


def _candidate_boxes(point: np.ndarray, w: float, h: float, outward: np.ndarray) -> np.ndarray:
    """Lower-left corners of label boxes (w x h px) around ``point``: rings of growing radius, each
    ring's directions ordered by closeness to ``outward``. Returns (n, 2)."""
    corners = []
    for r in _RADII_PX:
        n_dir = 8 if r < 20 else 16
        ang = np.arange(n_dir) * (2 * np.pi / n_dir)
        dirs = np.stack([np.cos(ang), np.sin(ang)], axis=1)
        dirs = dirs[np.argsort(-(dirs @ outward), kind="stable")]
        anchor = point + r * dirs
        corners.append(anchor - np.stack([w * (1 - dirs[:, 0]) / 2, h * (1 - dirs[:, 1]) / 2], axis=1))
    return np.concatenate(corners)


def _overlaps(boxes: np.ndarray, others: np.ndarray) -> np.ndarray:
    """For each (x0, y0, x1, y1) in ``boxes``, whether it intersects any of ``others``."""
    if len(others) == 0:
        return np.zeros(len(boxes), dtype=bool)
    a, b = boxes[:, None, :], others[None, :, :]
    hit = (a[..., 0] < b[..., 2]) & (b[..., 0] < a[..., 2]) & (a[..., 1] < b[..., 3]) & (b[..., 1] < a[..., 3])
    return hit.any(axis=1)


def _segment_boxes(segments_px: np.ndarray, half: float = 1.5, step: float = 3.0) -> np.ndarray:
    """Small boxes every ``step`` px along line segments ((n, 2, 2) display coords), as obstacles."""
    boxes = []
    for a, b in segments_px:
        t = np.linspace(0.0, 1.0, max(2, int(np.hypot(*(b - a)) / step) + 1))[:, None]
        p = a + t * (b - a)
        boxes.append(np.column_stack([p - half, p + half]))
    return np.concatenate(boxes) if boxes else np.empty((0, 4))


def _free_box(point, w, h, centre, frame, obstacles) -> np.ndarray | None:
    """The first free (x0, y0, x1, y1) label box around ``point`` (see :func:`place_labels`), or None."""
    outward = point - centre
    outward = outward / (np.hypot(*outward) or 1.0)
    lower_left = _candidate_boxes(point, w, h, outward)
    boxes = np.column_stack([lower_left, lower_left + [w, h]])
    reach = _RADII_PX[-1] + w + h
    near = obstacles[(np.abs(obstacles[:, :2] - point) < reach).all(axis=1)]
    ok = ((boxes[:, 0] >= frame[0]) & (boxes[:, 1] >= frame[1]) & (boxes[:, 2] <= frame[2])
          & (boxes[:, 3] <= frame[3]) & ~_overlaps(boxes, near))
    return boxes[int(np.argmax(ok))] if ok.any() else None


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
    obstacles = np.vstack([np.column_stack([every - m, every + m]), _segment_boxes(
        ax.transData.transform(segments.reshape(-1, 2)).reshape(-1, 2, 2) if segments is not None and len(segments)
        else np.empty((0, 2, 2)))])
    frame = ax.bbox.extents + np.array([2, 2, -2, -2])
    out = []
    for i, text in enumerate(texts):
        probe = ax.text(0, 0, text, fontsize=fontsize, ha="left", va="bottom", transform=None)
        ext = probe.get_window_extent(renderer)
        probe.remove()
        box = _free_box(pts[i], ext.width + 2, ext.height + 2, pts.mean(axis=0), frame, obstacles)
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


def label_subset(models: Sequence[str], depths: Sequence[int], cap: int = MAX_POINT_LABELS) -> np.ndarray:
    """Positions (in figure order) of the points to label: all when K <= cap; else external RDMs and
    each model's shallowest and deepest layer first (evenly spaced among them if they exceed ``cap``),
    then the others evenly spaced in figure order up to ``cap``. Returned in figure order."""
    k = len(models)
    if k <= cap:
        return np.arange(k)
    first = set()
    for model in set(models):
        idx = [i for i in range(k) if models[i] == model]
        first.update(idx if model == EXTERNAL else (min(idx, key=lambda i: depths[i]),
                                                    max(idx, key=lambda i: depths[i])))
    first = np.array(sorted(first))
    if first.size >= cap:
        return first[evenly_spaced(first.size, cap)]
    rest = np.setdiff1d(np.arange(k), first)
    return np.sort(np.concatenate([first, rest[evenly_spaced(rest.size, cap - first.size)]]))


# --- figures --------------------------------------------------------------------------------------

def _grid(k: int, width: float = 3.2, extra_h: float = 0.9):
    ncols = min(k, 4)
    nrows = math.ceil(k / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(width * ncols + 0.8, width * nrows + extra_h), squeeze=False)
    for ax in list(axes.flat)[k:]:
        ax.axis("off")
    return fig, axes


def _title(fig, title: str, notes: Sequence[str]) -> None:
    """Suptitle plus one line per non-empty selection note (the figure says what it leaves out)."""
    lines = [n for n in notes if n]
    fig.suptitle("\n".join([title, *lines]), fontsize=10 if not lines else 9)


def _panel_title(ax, record: dict) -> None:
    ax.set_title(record["label"], fontsize=8, color=model_style(record["model"])[0])


def _class_boundaries(ax, labels: np.ndarray) -> None:
    """Thin white lines between blocks of consecutive equal labels."""
    for e in np.nonzero(np.diff(labels))[0] + 0.5:
        ax.axhline(e, color="white", lw=0.4)
        ax.axvline(e, color="white", lw=0.4)


def _shown_records(records: Sequence[dict], cap: int = MAX_PANELS) -> tuple[list[dict], str]:
    """The records drawn as panels, in figure order, and the selection note."""
    order = figure_order([r["model"] for r in records], [r["depth"] for r in records], [r["label"] for r in records])
    shown = [records[i] for i in order[evenly_spaced(len(order), cap)]]
    note = _selection_note(len(shown), len(records), "RDMs", "evenly spaced in model/depth order, first and last kept")
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
    notes = [_selection_note(len(rows), classes.size, "classes", "evenly spaced in class order"),
             f"first {per} images of each class in stored order"
             if any(np.sum(labels == c) > per for c in rows) else ""]
    _title(fig, f"Stimuli: {labels.size} images, {classes.size} classes", notes)
    return fig


def stimulus_grid(images, labels: np.ndarray, class_names: list[str], path) -> None:
    """Draw :func:`stimulus_grid_figure` to ``path`` (PNG and PDF)."""
    _save(stimulus_grid_figure(images, labels, class_names), path)


def rdm_panel_figure(records: Sequence[dict], labels: np.ndarray, load: Callable[[dict], np.ndarray]):
    """RDMs as percentile heatmaps (0-100, :func:`display_percentiles`), class boundaries marked.

    records: dicts with ``label``, ``model``, ``depth``; ``load(record)`` returns its (N, N) RDM and is
    called only for the panels drawn, one at a time (at most MAX_PANELS, evenly spaced in figure
    order). Above MAX_PANEL_STIMULI stimuli, every s-th stimulus (stored order) is drawn. Peak memory:
    two N x N float64 arrays. Returns the figure.
    """
    labels = np.asarray(labels)
    shown, note = _shown_records(records)
    step = math.ceil(labels.size / MAX_PANEL_STIMULI)
    rows = np.arange(0, labels.size, step)
    fig, axes = _grid(len(shown))
    image = None
    for ax, record in zip(axes.flat, shown):
        image = ax.imshow(display_percentiles(load(record), rows), cmap=CMAP, vmin=0, vmax=100,
                          interpolation="nearest")
        _class_boundaries(ax, labels[rows])
        _panel_title(ax, record)
        ax.set_xticks([])
        ax.set_yticks([])
    cbar = fig.colorbar(image, ax=axes.ravel().tolist(), shrink=0.8, ticks=[0, 50, 100])
    cbar.set_label("dissimilarity (percentile of all N\u00b2 entries)")
    stim_note = (f"every {step}th stimulus drawn ({rows.size} of {labels.size}, stored order); "
                 "percentiles over all entries") if step > 1 else ""
    _title(fig, "Representational dissimilarity matrices", [note, stim_note])
    return fig


def rdm_panel(records: Sequence[dict], labels: np.ndarray, path, load=lambda r: r["rdm"]) -> None:
    """Draw :func:`rdm_panel_figure` to ``path`` (PNG and PDF)."""
    _save(rdm_panel_figure(records, labels, load), path)


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
    fig, axes = _grid(len(shown), width=3.0, extra_h=1.2)
    for ax, record in zip(axes.flat, shown):
        pos = classical_mds(load(record)[np.ix_(sub, sub)])
        for c in np.unique(labels[sub]):
            sel = labels[sub] == c
            ax.scatter(pos[sel, 0], pos[sel, 1], s=6 if sub.size > 300 else 12, color=colours(int(c) % colours.N),
                       label=class_names[int(c)], linewidths=0)
        _panel_title(ax, record)
        ax.set_xticks([])
        ax.set_yticks([])
        ax.set_aspect("equal", adjustable="datalim")
    if n_classes <= colours.N:
        handles, names = axes.flat[0].get_legend_handles_labels()
        fig.legend(handles, names, loc="lower center", ncol=min(10, len(names)), fontsize=7, markerscale=1.5)
    stim_note = _selection_note(sub.size, labels.size, "stimuli", "each class's share, evenly spaced in stored order")
    colour_note = f"colours repeat every {colours.N} classes (no legend)" if n_classes > colours.N else ""
    _title(fig, "Stimuli in each representation (classical MDS of the RDM)", [note, stim_note, colour_note])
    fig.subplots_adjust(bottom=0.1 if n_classes <= colours.N else 0.03)
    return fig


def stimulus_mds_panel(records: Sequence[dict], labels: np.ndarray, class_names: list[str], path,
                       load=lambda r: r["rdm"]) -> None:
    """Draw :func:`stimulus_mds_figure` to ``path`` (PNG and PDF)."""
    _save(stimulus_mds_figure(records, labels, class_names, load), path)


def ordered_result(result: dict) -> dict:
    """A second-order result with rows, columns and labels in :func:`figure_order`."""
    order = figure_order(result["models"], result["depth"], result["labels"])
    out = dict(result)
    for key in ("matrix", "ci_lower", "ci_upper", "boot_std", "p_values"):
        if key in result:
            out[key] = np.asarray(result[key])[np.ix_(order, order)]
    for key in ("labels", "models"):
        out[key] = [result[key][i] for i in order]
    out["depth"] = np.asarray(result["depth"])[order]
    return out


def _model_blocks(models: Sequence[str]) -> list[tuple[str, int, int]]:
    """(model, first, last + 1) of each run of equal models (figure order keeps a model contiguous)."""
    edges = [0] + [i for i in range(1, len(models)) if models[i] != models[i - 1]] + [len(models)]
    return [(models[a], a, b) for a, b in zip(edges[:-1], edges[1:])]


def _heatmap_ticks(ax, names: Sequence[str], models: Sequence[str]) -> str:
    """Row/column labels coloured by model (or one label per model block above MAX_TICK_LABELS rows),
    white lines between models. Returns the selection note."""
    k, blocks = len(names), _model_blocks(models)
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
        ax.legend(fontsize=7, loc="lower right")
    labels = [f"{names[i]} vs {names[j]}" for i, j in pairs]
    if "p_values" in r:
        labels = [f"{t}  (p={float(r['p_values'][i, j]):.3g})" for t, (i, j) in zip(labels, pairs)]
    ax.set_yticks(y, labels, fontsize=7)
    ax.set_ylim(len(pairs) - 0.5, -0.5)
    ax.set_xlabel(dissimilarity_label(method))
    note = _selection_note(len(pairs), total, "pairs", "groups in turn: network vs external, between networks, "
                           "within a network, external vs external;\nthe group that overflows keeps whole rows, "
                           "evenly spaced in model/depth order")
    title = "Pairs" + (" with bootstrap intervals" if "ci_lower" in r else "")
    ax.set_title(title + ("\n" + note.replace(" (", "\n(") if note else ""), fontsize=9)


def second_order_heatmap_figure(result: dict):
    """The K x K second-order matrix (1 - similarity) in figure order, rows labelled and coloured by
    model. With inference results, a second panel lists pairs (at most MAX_PAIRS, by
    :func:`pair_selection`) with bootstrap interval and permutation p-value. Returns the figure."""
    r = ordered_result(result)
    matrix, k = r["matrix"], len(r["labels"])
    with_pairs = ("ci_lower" in r or "p_values" in r) and k > 1
    side = float(np.clip(0.14 * k + 3.5, 4.5, 11.0))
    n_pairs = min(MAX_PAIRS, k * (k - 1) // 2)
    height = max(side, 0.16 * n_pairs + 1.6) if with_pairs else side
    widths = [side + 1.2, 6.5][: 1 + with_pairs]
    fig, axes = plt.subplots(1, len(widths), figsize=(sum(widths), height), squeeze=False, layout="constrained",
                             gridspec_kw={"width_ratios": widths})
    ax = axes[0, 0]
    image = ax.imshow(matrix, cmap=CMAP, vmin=0, vmax=max(1.0, float(np.nanmax(matrix))), interpolation="nearest")
    note = _heatmap_ticks(ax, r["labels"], r["models"])
    if k <= 12:
        for i in range(k):
            for j in range(k):
                ax.text(j, i, f"{matrix[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if matrix[i, j] < 0.5 else "black")
    fig.colorbar(image, ax=ax, shrink=0.8).set_label(dissimilarity_label(r["method"]))
    ax.set_title("Second-order dissimilarity matrix" + (f"\n{note}" if note else ""), fontsize=10 if not note else 8)
    if with_pairs:
        _pairs_panel(axes[0, 1], r)
    return fig


def second_order_heatmap(result: dict, path) -> None:
    """Draw :func:`second_order_heatmap_figure` to ``path`` (PNG and PDF)."""
    _save(second_order_heatmap_figure(result), path)


def _draw_points(ax, pos: np.ndarray, models: Sequence[str]) -> None:
    """Markers coloured by model (:func:`model_style`); layers of one network joined in depth order
    (figure order) with an arrow at the deepest; external RDMs as black stars, never joined."""
    from matplotlib.lines import Line2D

    handles = []
    big = len(models) > 100  # smaller markers in a crowd
    for model, a, b in _model_blocks(models):
        colour, marker = model_style(model)
        if model == EXTERNAL:
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


def mds_figure(result: dict, seed: int):
    """Labelled 2-D MDS (:func:`mds_embedding`) of the second-order matrix, in figure order.

    Labels (at most MAX_POINT_LABELS, by :func:`label_subset`) are placed by :func:`place_labels`;
    the figure states how many points are labelled. Returns the figure.
    """
    r = ordered_result(result)
    names, models, k = r["labels"], r["models"], len(r["labels"])
    pos = mds_embedding(r["matrix"], seed)
    fig, ax = plt.subplots(figsize=(8.5, 6.5))
    _draw_points(ax, pos, models)
    _set_limits(ax, pos)
    idx = label_subset(models, r["depth"])
    segments = np.array([pos[[i, i + 1]] for m, a, b in _model_blocks(models) if m != EXTERNAL
                         for i in range(a, b - 1)])
    placed = place_labels(ax, [names[i] for i in idx], pos[idx], colours=[model_style(models[i])[0] for i in idx],
                          segments=segments.reshape(-1, 2, 2), others=pos)
    n_placed = sum(a is not None for a in placed)
    note = _selection_note(n_placed, k, "points labelled",
                           "external RDMs and each model's first and last layer first, then evenly spaced; "
                           "a label with no free spot is left out")
    ax.set_title(f"MDS of the second-order matrix ({dissimilarity_label(r['method'])})" + (f"\n{note}" if note else ""),
                 fontsize=10 if not note else 8)
    return fig


def mds_plot(result: dict, seed: int, path) -> None:
    """Draw :func:`mds_figure` to ``path`` (PNG and PDF)."""
    _save(mds_figure(result, seed), path)


# --- model versus brain: bars per layer, noise ceiling band -------------------------------------

#: Brain-region panels (external groups) drawn in the model-versus-brain figure.
MAX_BRAIN_PANELS = 8
#: Bars per panel above which the axis names model blocks instead of layers.
MAX_BAR_LABELS = MAX_TICK_LABELS


def brain_groups(result: dict) -> list[int]:
    """Rows of ``result`` (rsaflow.results.read_second_order) that are external groups with noise
    ceilings, in :func:`figure_order`."""
    n = result.get("n_subjects")
    if n is None:
        return []
    order = figure_order(result["models"], result["depth"], result["labels"])
    return [int(i) for i in order if n[i] > 0]


def brain_bars(result: dict, group: int) -> dict:
    """What one panel draws: the model layers (not external RDMs) in figure order, their x positions
    (one slot per layer, one empty slot between models), ``value`` = mean similarity to the group's
    subjects (``subject_similarity``), the error bar from ``low`` to ``high`` and its ``error_kind``,
    the ceiling ``lower``/``upper``.

    Error bars: with the stimulus bootstrap (``subject_similarity_ci_lower``/``_ci_upper`` in the
    result), ``error_kind`` ``"bootstrap"`` and the percentile interval itself (asymmetric; it need
    not contain the value); otherwise ``"sem"`` and value -+ the s.e.m. over subjects
    (``subject_similarity_sem``)."""
    order = [int(i) for i in figure_order(result["models"], result["depth"], result["labels"])
             if result["models"][i] not in (EXTERNAL, "brain")]
    models = [result["models"][i] for i in order]
    x = np.arange(len(order), dtype=float) + np.cumsum([0] + [m != p for p, m in zip(models, models[1:])])
    value = np.asarray(result["subject_similarity"])[order, group]
    if "subject_similarity_ci_lower" in result:
        kind = "bootstrap"
        low = np.asarray(result["subject_similarity_ci_lower"])[order, group]
        high = np.asarray(result["subject_similarity_ci_upper"])[order, group]
    else:
        kind = "sem"
        sem = np.asarray(result["subject_similarity_sem"])[order, group]
        low, high = value - sem, value + sem
    return {"rows": order, "models": models, "x": x,
            "layers": [result["labels"][i].split("/", 1)[1] for i in order],
            "value": value, "low": low, "high": high, "error_kind": kind,
            "lower": float(result["noise_ceiling_lower"][group]),
            "upper": float(result["noise_ceiling_upper"][group]),
            "n_subjects": int(result["n_subjects"][group])}


def _brain_panel(ax, result: dict, group: int) -> str:
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
        blocks = _model_blocks(b["models"])
        ax.set_xticks([(b["x"][a] + b["x"][e - 1]) / 2 for _, a, e in blocks], [m for m, _, _ in blocks],
                      rotation=90, fontsize=7)
        note = f"{len(b['rows'])} layers: one label per model, layers in depth order"
    blocks = _model_blocks(b["models"])  # model names above the bars (colours may repeat across models)
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
    n_bars = int(sum(m != EXTERNAL for m in result["models"]))
    width = float(np.clip(0.22 * n_bars + 2.5, 5.0, 18.0))
    fig, axes = plt.subplots(len(shown), 1, figsize=(width, 3.4 * len(shown) + 0.9), squeeze=False)
    notes = [_brain_panel(ax, result, g) for ax, g in zip(axes[:, 0], shown)]
    if len(groups) > len(shown):
        notes.append(f"{len(shown)} of {len(groups)} regions shown: the first in name order")
    _title(fig, f"Model layers versus brain regions ({result['method']})", sorted(set(notes)))
    fig.tight_layout()
    return fig


def brain_plot(result: dict, path) -> None:
    """:func:`brain_figure` written to ``path`` (PNG) and the PDF beside it."""
    _save(brain_figure(result), path)

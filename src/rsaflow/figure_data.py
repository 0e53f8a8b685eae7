"""What the figures draw, as numbers: order, colours, selections and embeddings (no matplotlib).

The plotting modules under :mod:`rsaflow.plots` draw what these functions choose, so every rule of
a figure (which RDMs, stimuli, pairs and labels, in which order, where) can be tested without
drawing. Conventions shared by every figure (documented in the report captions,
``workflow/report/*.rst``):

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
from typing import Sequence

import numpy as np

EXTERNAL = "external"
#: The "models" of RDMs that are not network layers: external RDMs and brain regions (responses).
NOT_LAYERS = (EXTERNAL, "brain")

#: At most this many RDMs drawn as panels (RDM panel, first-order MDS), evenly spaced in figure order.
MAX_PANELS = 16
#: At most this many stimuli per axis of an RDM panel (every s-th stimulus in stored order).
MAX_PANEL_STIMULI = 500
#: At most this many class names along each axis of an RDM panel (evenly spaced in class-block order).
MAX_CLASS_TICKS = 20
#: At most this many stimuli per first-order MDS panel (per-class share, evenly spaced in stored order).
MAX_MDS_STIMULI = 500
#: At most this many pairs listed beside the second-order heatmap.
MAX_PAIRS = 60
#: Up to this many RDMs the heatmap prints each cell's value in it; above, the colours alone.
MAX_CELL_NUMBERS = 25
#: At most this many labelled points in the second-order MDS.
MAX_POINT_LABELS = 40
#: At most this many entries (networks, or networks with the same layers) in the MDS's layer-number key.
MAX_KEY_ENTRIES = 12
#: Above this many RDMs the heatmap labels models (blocks), not rows.
MAX_TICK_LABELS = 60
#: Brain-region panels (external groups) drawn in the model-versus-brain figure.
MAX_BRAIN_PANELS = 8
#: Bars per panel above which the brain figure's axis names model blocks instead of layers.
MAX_BAR_LABELS = MAX_TICK_LABELS
#: Stimulus grid: at most this many classes (rows; evenly spaced) and images per class.
MAX_GRID_CLASSES = 20
MAX_GRID_PER_CLASS = 20

#: Model colours (well separated on white) and markers; :func:`model_style` picks by name hash.
MODEL_COLOURS = ("#e6194b", "#3cb44b", "#4363d8", "#f58231", "#911eb4", "#808080",
                 "#f032e6", "#469990", "#c8a200", "#800000", "#808000", "#000075")
MODEL_MARKERS = ("o", "s", "^", "D", "v", "P")
EXTERNAL_STYLE = ("black", "*")


def figure_order(models: Sequence[str], depths: Sequence[int], labels: Sequence[str]) -> np.ndarray:
    """Indices that put RDMs in figure order: models by name, each by depth then label; externals last.

    External RDMs (model ``'external'``) follow every model, ordered by label.
    """
    keys = [(m in NOT_LAYERS, m, int(d), lab) for m, d, lab in zip(models, depths, labels)]
    return np.array(sorted(range(len(keys)), key=keys.__getitem__), dtype=np.int64)


def model_style(model: str) -> tuple[str, str]:
    """(colour, marker) of a model, from the SHA-256 of its name alone; externals: black star.

    colour = MODEL_COLOURS[h % 12], marker = MODEL_MARKERS[(h // 12) % 6], h = the digest as integer.
    """
    if model in NOT_LAYERS:
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
        ext = (models[i] in NOT_LAYERS) + (models[j] in NOT_LAYERS)
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


def selection_note(shown: int, total: int, what: str, rule: str) -> str:
    """'' when everything is shown, else 'showing n of N <what> (<rule>)'."""
    return "" if shown >= total else f"showing {shown} of {total} {what} ({rule})"


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


def percentiles_from_ranks(condensed: np.ndarray, ranks: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """:func:`display_percentiles` of the square RDM of ``condensed`` (zero diagonal), from its
    stored average ranks (an RDM file's ``ranks``, rsaflow.rdmfile) instead of a sort of N^2 values.

    ``condensed``/``ranks``: the upper triangle in squareform order and its average ranks 1..P
    among the P values (``scipy.stats.rankdata(condensed, method='average')``). Each value appears
    twice in the square, and the N diagonal zeros sit below the positive values, tie with the
    zeros and sit above the negative ones (cross-validated RDMs), so the average rank among all
    N^2 entries of a value of condensed rank r is exactly ``2 r - 1/2 + N ([x > 0] + [x = 0] / 2)``,
    and a diagonal entry's is ``2 #(x < 0) + #(x = 0) + (N + 1) / 2``. The percentile is that
    rank * 100 / N^2, computed as (2 rank) * (50 / N^2) like :func:`display_percentiles`: the same
    float64 numbers bit for bit, without the N^2 sort (memory: the two vectors, 2 x 8 P bytes).
    """
    condensed = np.asarray(condensed, dtype=np.float64)
    ranks = np.asarray(ranks, dtype=np.float64)
    rows = np.asarray(rows, dtype=np.int64)
    n = int(round((1 + np.sqrt(1 + 8 * condensed.size)) / 2))
    if n * (n - 1) // 2 != condensed.size or ranks.shape != condensed.shape:
        raise ValueError(f"{condensed.size} values and {ranks.size} ranks are not the upper triangle of a square RDM")
    i, j = np.minimum.outer(rows, rows), np.maximum.outer(rows, rows)
    off = i != j
    k = i[off] * (2 * n - i[off] - 1) // 2 + (j[off] - i[off] - 1)  # squareform index of (i, j), i < j
    x = condensed[k]
    twice = np.empty(i.shape, dtype=np.float64)
    twice[off] = 4.0 * ranks[k] - 1.0 + n * (2.0 * (x > 0) + (x == 0))
    twice[~off] = 4.0 * np.count_nonzero(condensed < 0) + 2.0 * np.count_nonzero(condensed == 0) + n + 1.0
    return twice * (50.0 / (n * n))


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
        first.update(idx if model in NOT_LAYERS else (min(idx, key=lambda i: depths[i]),
                                                    max(idx, key=lambda i: depths[i])))
    first = np.array(sorted(first))
    if first.size >= cap:
        return first[evenly_spaced(first.size, cap)]
    rest = np.setdiff1d(np.arange(k), first)
    return np.sort(np.concatenate([first, rest[evenly_spaced(rest.size, cap - first.size)]]))


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


def model_blocks(models: Sequence[str]) -> list[tuple[str, int, int]]:
    """(model, first, last + 1) of each run of equal models (figure order keeps a model contiguous)."""
    edges = [0] + [i for i in range(1, len(models)) if models[i] != models[i - 1]] + [len(models)]
    return [(models[a], a, b) for a, b in zip(edges[:-1], edges[1:])]


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
             if result["models"][i] not in NOT_LAYERS]
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


def class_blocks(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(class, first, last + 1) of each run of equal consecutive labels, in stored order.

    The stimuli job writes stimuli grouped by class, so each class is one run; a class split into
    several runs (stimuli not grouped) gives one block per run.
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return []
    edges = np.concatenate([[0], np.nonzero(np.diff(labels))[0] + 1, [labels.size]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]


def heatmap_side_inches(k: int) -> float:
    """Side of the second-order heatmap in inches: 0.5 in per row, between 3 and 9 in (a cell of
    0.36 in at K = 25, room for a two-decimal value in 8 pt; 0.15 in at K = 60)."""
    return float(np.clip(0.5 * k, 3.0, 9.0))


def layer_numbers(labels: Sequence[str], models: Sequence[str]) -> list[str]:
    """Short point labels of the second-order MDS, in figure order: a network layer is its 1-based
    position in its model's depth order ('1' = shallowest); an external RDM is its name without
    ``external/`` (:func:`layer_key` names the numbered layers)."""
    out = []
    for model, a, b in model_blocks(models):
        out += ([lab.split("/", 1)[-1] for lab in labels[a:b]] if model in NOT_LAYERS
                else [str(i + 1) for i in range(b - a)])
    return out


def layer_key(labels: Sequence[str], models: Sequence[str], shown: Sequence[int],
              cap: int = MAX_KEY_ENTRIES) -> tuple[list[tuple[list[str], list[tuple[str, str]]]], int]:
    """The key of the MDS's layer numbers (:func:`layer_numbers`): for each network with labelled
    points (``shown``: positions in figure order), its (number, layer name) pairs in depth order,
    layer name = the label after ``<model>/``. Networks whose labelled layers have the same numbers
    and names share one entry (a sweep of one architecture), listed by model name. At most ``cap``
    entries, in figure order. Returns (entries, number of entries in all).
    """
    numbers, shown = layer_numbers(labels, models), set(int(i) for i in shown)
    entries: dict[tuple, list[str]] = {}
    for model, a, b in model_blocks(models):
        if model in NOT_LAYERS:
            continue
        pairs = tuple((numbers[i], labels[i].split("/", 1)[-1]) for i in range(a, b) if i in shown)
        if pairs:
            entries.setdefault(pairs, []).append(model)
    out = [(names, list(pairs)) for pairs, names in entries.items()]
    return out[:cap], len(out)

"""Figures: order by model and depth, stable model colours, externals apart, labels that never
overlap or clip, classical MDS against an eigendecomposition, and selections that are stated."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text
from scipy.spatial.distance import pdist, squareform

from rsaflow import figure_data
from rsaflow.plots import mds, second_order, stimuli

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def result_of(models_layers: dict[str, int], externals: list[str], seed: int = 0, inference: bool = False) -> dict:
    """A second-order result as written (rows sorted by label): distances of random points."""
    rows = [(f"{m}/layer{d}", m, d) for m, n in models_layers.items() for d in range(n)]
    rows += [(f"external/{e}", "external", -1) for e in externals]
    rows.sort()
    x = np.random.default_rng(seed).normal(size=(len(rows), 4))
    matrix = squareform(pdist(x))
    out = {"matrix": matrix, "labels": [r[0] for r in rows], "models": [r[1] for r in rows],
           "depth": np.array([r[2] for r in rows]), "method": "spearman"}
    if inference:
        out.update(ci_lower=matrix - 0.1, ci_upper=matrix + 0.1, p_values=np.full(matrix.shape, 0.5))
    return out


def test_order_is_model_then_depth_with_externals_last():
    labels = ["external/V1", "alexnet/classifier.2", "alexnet/features.12", "alexnet/classifier.5",
              "alexnet/features.2", "external/IT", "vgg/features.0"]
    models = [lab.split("/")[0] for lab in labels]
    depths = [-1, 20, 12, 22, 2, -1, 0]
    order = figure_data.figure_order(models, depths, labels)
    assert [labels[i] for i in order] == [
        "alexnet/features.2", "alexnet/features.12", "alexnet/classifier.2", "alexnet/classifier.5",
        "vgg/features.0", "external/IT", "external/V1"]


def test_heatmap_rows_follow_depth_not_the_alphabet():
    result = {"matrix": np.eye(4)[::-1] + 0.5,
              "labels": ["a/classifier.2", "a/features.12", "a/features.2", "external/V1"],
              "models": ["a", "a", "a", "external"], "depth": np.array([20, 12, 2, -1]), "method": "pearson"}
    fig = second_order.second_order_heatmap_figure(result)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a/features.2", "a/features.12", "a/classifier.2",
                                                              "external/V1"]
    # the matrix is permuted with its labels: row "a/features.2" was row 2 of the input
    np.testing.assert_array_equal(ax.images[0].get_array()[0], result["matrix"][2, [2, 1, 0, 3]])


def _legend_colours(fig) -> dict:
    legend = fig.axes[0].get_legend()
    return {t.get_text(): h.get_color() for t, h in zip(legend.get_texts(), legend.legend_handles)}


def test_model_colour_does_not_change_when_a_model_is_added():
    before = _legend_colours(mds.mds_figure(result_of({"alexnet": 3, "vgg": 2}, ["V1"]), 0))
    after = _legend_colours(mds.mds_figure(result_of({"alexnet": 3, "vgg": 2, "cornet": 4, "aaa": 2}, ["V1"]), 0))
    assert before["alexnet"] == after["alexnet"] and before["vgg"] == after["vgg"]
    # independent of the other names present: same as the style of the name alone
    assert (before["alexnet"], before["vgg"]) == (figure_data.model_style("alexnet")[0], figure_data.model_style("vgg")[0])


def test_external_rdms_have_their_own_marker_and_no_line():
    result = result_of({"alexnet": 4, "vgg": 3}, ["V1", "V4", "IT"])
    fig = mds.mds_figure(result, 0)
    ax = fig.axes[0]
    r = figure_data.ordered_result(result)
    pos = figure_data.mds_embedding(r["matrix"], 0)
    ext = pos[[m == "external" for m in r["models"]]]
    for line in ax.get_lines():
        xy = line.get_xydata()
        assert not any(np.isclose(xy, p).all(axis=1).any() for p in ext), "a line touches an external RDM"
    drawn_lines = sum(len(line.get_xydata()) - 1 for line in ax.get_lines())
    assert drawn_lines == 3 + 2  # alexnet 4 layers, vgg 3 layers: consecutive depths only
    colours, markers = {}, {}
    legend = ax.get_legend()
    for text, handle in zip(legend.get_texts(), legend.legend_handles):
        colours[text.get_text()], markers[text.get_text()] = handle.get_color(), handle.get_marker()
    ext_key = next(k for k in markers if k.startswith("external"))
    assert markers[ext_key] not in {markers["alexnet"], markers["vgg"]}
    assert "black" not in {colours["alexnet"], colours["vgg"]}  # markers coloured by model
    # the scatter of externals sits exactly at the external positions
    offsets = [c.get_offsets() for c in ax.collections]
    assert any(o.shape == ext.shape and np.allclose(o, ext) for o in offsets)


def _assert_labels_clean(fig, expected: int) -> None:
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    texts = [t for t in ax.texts if t.get_text()]
    assert len(texts) == expected
    boxes = [Text.get_window_extent(t, renderer) for t in texts]  # the text itself, without its leader line
    frame, page = ax.bbox, fig.bbox
    for b in boxes:
        assert frame.x0 <= b.x0 and b.x1 <= frame.x1 and frame.y0 <= b.y0 and b.y1 <= frame.y1, "label clipped"
        assert page.x0 <= b.x0 and b.x1 <= page.x1 and page.y0 <= b.y0 and b.y1 <= page.y1
    for a, b in itertools.combinations(boxes, 2):
        assert not a.overlaps(b), "labels overlap"


@pytest.mark.parametrize("clustered", [False, True])
def test_thirty_labels_neither_overlap_nor_clip(clustered):
    result = result_of({"alexnet": 7, "resnet18": 8, "vgg16": 9}, ["V1", "V2", "V4", "IT", "hIT", "EVC"], seed=3)
    if clustered:  # 29 points in a tight clump and one far away: the clump is tiny on screen
        x = np.random.default_rng(1).normal(size=(30, 2)) * 0.05
        x[0] += 10
        result["matrix"] = squareform(pdist(x))
    fig = mds.mds_figure(result, 0)
    assert "labelled" not in fig.axes[0].get_title()
    _assert_labels_clean(fig, 30)


def test_more_points_label_a_stated_subset():
    result = result_of({"alexnet": 12, "resnet18": 14, "vgg16": 16}, ["V1", "V4", "IT"], seed=5)
    fig = mds.mds_figure(result, 0)
    title = fig.axes[0].get_title()
    shown = int(re.search(r"showing (\d+) of 45 points labelled", title).group(1))
    assert shown <= figure_data.MAX_POINT_LABELS
    _assert_labels_clean(fig, shown)
    labelled = {(t.get_text(), t.get_color()) for t in fig.axes[0].texts}
    # the rule: every external RDM and each model's first and last layer are among the labelled
    # (a layer is labelled with its position in its model's depth order, in the model's colour)
    colour = {m: figure_data.model_style(m)[0] for m in ("alexnet", "vgg16")}
    assert {("V1", "black"), ("V4", "black"), ("IT", "black"), ("1", colour["alexnet"]), ("12", colour["alexnet"]),
            ("1", colour["vgg16"]), ("16", colour["vgg16"])} <= labelled


def test_classical_mds_recovers_a_planar_configuration():
    x = np.random.default_rng(0).normal(size=(40, 2)) * [3.0, 1.0]
    d = squareform(pdist(x))
    y = figure_data.classical_mds(d)
    np.testing.assert_allclose(squareform(pdist(y)), d, rtol=0, atol=1e-8)


def test_classical_mds_equals_a_full_eigendecomposition_for_non_euclidean_input():
    rng = np.random.default_rng(1)
    d = squareform(pdist(rng.normal(size=(30, 6)), "cityblock"))
    n = d.shape[0]
    j = np.eye(n) - 1.0 / n
    w, v = np.linalg.eigh(-0.5 * j @ (d ** 2) @ j)  # reference: every eigenpair, numpy's LAPACK driver
    ref = v[:, [-1, -2]] * np.sqrt(w[[-1, -2]])
    y = figure_data.classical_mds(d)
    np.testing.assert_allclose(squareform(pdist(y)), squareform(pdist(ref)), rtol=0, atol=1e-8)
    assert np.allclose(np.abs(y), np.abs(ref), atol=1e-8)  # same axes, up to sign


def test_display_percentiles_equal_percentile_ranks():
    from rsaflow.rdm import percentile_ranks

    rdm = squareform(np.round(pdist(np.random.default_rng(2).normal(size=(50, 3))), 1))  # many ties
    rows = np.arange(0, 50, 3)
    np.testing.assert_allclose(figure_data.display_percentiles(rdm, rows), percentile_ranks(rdm)[np.ix_(rows, rows)],
                               rtol=0, atol=1e-12)


@pytest.mark.parametrize("kind", ["ties", "zeros", "negative", "positive"])
def test_percentiles_from_stored_ranks_equal_the_sorted_square_bit_for_bit(kind):
    """The RDM panel's percentiles from an RDM file's ranks (no N^2 sort) are display_percentiles of
    the square: with ties, with zero dissimilarities (tied with the diagonal) and with negative ones
    (crossnobis), for a subsample of rows and for all of them."""
    from scipy.stats import rankdata

    rng = np.random.default_rng(["ties", "zeros", "negative", "positive"].index(kind))
    n = 47
    v = {"ties": np.round(rng.uniform(0, 2, n * (n - 1) // 2), 1),
         "zeros": np.maximum(rng.normal(size=n * (n - 1) // 2), 0.0),
         "negative": np.round(rng.normal(0.2, 1.0, n * (n - 1) // 2), 2),
         "positive": rng.uniform(1, 2, n * (n - 1) // 2)}[kind]
    for rows in (np.arange(0, n, 3), np.arange(n)):
        new = figure_data.percentiles_from_ranks(v, rankdata(v), rows)
        old = figure_data.display_percentiles(squareform(v), rows)
        assert np.array_equal(new, old), np.abs(new - old).max()
    with pytest.raises(ValueError, match="upper triangle"):
        figure_data.percentiles_from_ranks(v[:-1], rankdata(v[:-1]), rows)


def _records(k: int, n: int) -> tuple[list[dict], np.ndarray]:
    labels = np.repeat(np.arange(4), n // 4)
    records = [{"label": f"net{i % 3}/layer{i}", "model": f"net{i % 3}", "depth": i, "seed": i} for i in range(k)]
    return records, labels


def _load(record: dict, n: int = 40) -> np.ndarray:
    return squareform(pdist(np.random.default_rng(record["seed"]).normal(size=(n, 3))))


def test_rdm_panel_states_its_selection_and_loads_only_what_it_draws():
    records, labels = _records(20, 40)
    loaded = []
    fig = stimuli.rdm_panel_figure(records, labels, list("abcd"), lambda r: loaded.append(r["label"]) or _load(r))
    assert f"showing {figure_data.MAX_PANELS} of 20 RDMs" in fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == loaded and len(loaded) == figure_data.MAX_PANELS
    order = [r["label"] for r in sorted(records, key=lambda r: (r["model"], r["depth"]))]
    assert titles[0] == order[0] and titles[-1] == order[-1]  # first and last kept, in figure order
    fig = stimuli.rdm_panel_figure(records[:5], labels, list("abcd"), _load)
    assert "showing" not in fig._suptitle.get_text()


def test_stimulus_mds_states_the_stimulus_subsample(monkeypatch):
    monkeypatch.setattr(stimuli, "MAX_MDS_STIMULI", 20)
    records, labels = _records(3, 40)
    fig = stimuli.stimulus_mds_figure(records, labels, ["a", "b", "c", "d"], _load)
    assert "showing 20 of 40 stimuli" in fig._suptitle.get_text()
    sub = figure_data.stimulus_subsample(labels, 20)
    assert sub.size == 20 and set(labels[sub]) == {0, 1, 2, 3}


def test_heatmap_pairs_panel_states_selection_and_reaches_every_network():
    result = result_of({"alexnet": 7, "resnet18": 7, "vgg16": 7}, ["V1", "V2", "V4", "IT"], inference=True)
    fig = second_order.second_order_heatmap_figure(result)
    panel = fig.axes[1]
    assert "showing 60 of 300 pairs" in panel.get_title()
    pairs = [t.get_text() for t in panel.get_yticklabels()]
    assert len(pairs) == 60 and all(" vs external/" in p for p in pairs)
    assert {p.split("/")[0] for p in pairs} == {"alexnet", "resnet18", "vgg16"}
    small = second_order.second_order_heatmap_figure(result_of({"a": 3}, ["V1"], inference=True))
    assert "showing" not in small.axes[1].get_title() and len(small.axes[1].get_yticklabels()) == 6


def test_captions_state_the_caps():
    report = REPO / "workflow" / "report"
    assert str(figure_data.MAX_PANELS) in (report / "rdms.rst").read_text()
    assert str(figure_data.MAX_PANEL_STIMULI) in (report / "rdms.rst").read_text()
    text = (report / "stimulus_mds.rst").read_text()
    assert str(figure_data.MAX_PANELS) in text and str(figure_data.MAX_MDS_STIMULI) in text
    assert str(figure_data.MAX_PAIRS) in (report / "second_order.rst").read_text()
    assert str(figure_data.MAX_CELL_NUMBERS) in (report / "second_order.rst").read_text()
    assert str(figure_data.MAX_CLASS_TICKS) in (report / "rdms.rst").read_text()
    text = (report / "mds.rst").read_text()
    assert str(figure_data.MAX_POINT_LABELS) in text and str(figure_data.MAX_KEY_ENTRIES) in text


def test_figure_jobs_read_rdms_through_the_reader(tmp_path, monkeypatch):
    from rsaflow import h5io
    from rsaflow.jobs import figure_inputs
    from rsaflow.jobs.per_layer import write_rdm_file
    from rsaflow.jobs.rdm_figure import draw_rdms
    from rsaflow.jobs.stimulus_grid import draw_stimulus_grid

    records, labels = _records(18, 40)
    h5io.write_h5(tmp_path / "stimuli.h5", "stimuli",
                  {"images": np.zeros((40, 3, 8, 8), np.uint8), "labels": labels, "indices": np.arange(40),
                   "class_names": np.array(list("abcd"), dtype=object)}, {"digest": "d0"})
    paths = []
    for r in records:
        paths.append(tmp_path / f"{r['seed']}.h5")
        write_rdm_file(paths[-1], _load(r), {"model": r["model"], "layer": f"layer{r['depth']}",
                                             "node_index": r["depth"], "stimulus_digest": "d0"}, "generated")
    reads = []
    real_rdm, real_meta = figure_inputs.read_rdm, figure_inputs.read_meta
    monkeypatch.setattr(figure_inputs, "read_rdm", lambda p, **kw: reads.append(True) or real_rdm(p, **kw))
    monkeypatch.setattr(figure_inputs, "read_meta", lambda p, *a: reads.append(False) or real_meta(p, *a))
    drawn = []
    real_percentiles = figure_inputs.load_percentiles
    monkeypatch.setattr("rsaflow.jobs.rdm_figure.load_percentiles",
                        lambda r, rows: drawn.append((r, real_percentiles(r, rows))) or drawn[-1][1])
    draw_rdms(paths, tmp_path / "stimuli.h5", tmp_path / "rdms.png")
    assert reads.count(True) == figure_data.MAX_PANELS and reads.count(False) == 18
    assert len(drawn) == figure_data.MAX_PANELS
    for r, block in drawn:  # what the job drew: the percentiles of the file's square, sorted
        square = figure_inputs.load_rdm(r)
        assert np.array_equal(block, figure_data.display_percentiles(square, np.arange(40)))
    draw_stimulus_grid(tmp_path / "stimuli.h5", tmp_path / "grid.png")
    assert (tmp_path / "rdms.pdf").exists() and (tmp_path / "grid.png").stat().st_size > 1000


@pytest.mark.parametrize("method, label", [("spearman", "1 - spearman similarity"),
                                           ("cka_rbf", "1 - cka_rbf similarity"),
                                           ("shape", "shape distance (radians)")])
def test_heatmap_and_mds_say_what_the_value_is(method, label):
    """The colour bar, the pairs axis and the MDS title name the matrix's quantity: the shape angle
    (rsaflow.compare.dissimilarity: arccos of the similarity) is not 1 - a similarity."""
    result = {**result_of({"a": 3}, ["V1"], inference=True), "method": method}
    fig = second_order.second_order_heatmap_figure(result)
    assert fig.axes[1].get_xlabel() == label  # the pairs panel
    assert label in [ax.get_ylabel() for ax in fig.axes[2:]]  # the colour bar
    assert f"({label})" in mds.mds_figure(result, seed=0).axes[0].get_title()


def _extents(texts, renderer) -> np.ndarray:
    return np.array([Text.get_window_extent(t, renderer).extents for t in texts])  # x0, y0, x1, y1 (px)


def _any_overlap(boxes: np.ndarray) -> bool:
    a, b = boxes[:, None], boxes[None]
    hit = (a[..., 0] < b[..., 2]) & (b[..., 0] < a[..., 2]) & (a[..., 1] < b[..., 3]) & (b[..., 1] < a[..., 3])
    np.fill_diagonal(hit, False)
    return bool(hit.any())


def _sweep(k: int, inference: bool) -> dict:
    """K RDMs: three networks of (k - 3) // 3 layers (rest to the first) and three external RDMs."""
    n = (k - 3) // 3
    return result_of({"alexnet": k - 3 - 2 * n, "resnet18": n, "vgg16": n}, ["V1", "V4", "IT"], inference=inference)


@pytest.mark.parametrize("inference", [False, True])
@pytest.mark.parametrize("k", [12, 25])
def test_heatmap_cell_numbers_never_overlap_and_the_matrix_keeps_its_size(k, inference):
    fig = second_order.second_order_heatmap_figure(_sweep(k, inference))
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    heat, cbar = fig.axes[0], fig.axes[-1]
    texts = [t for t in heat.texts if t.get_text()]
    assert len(texts) == k * k  # every cell's value, up to MAX_CELL_NUMBERS
    boxes = _extents(texts, renderer)
    assert not _any_overlap(boxes), "in-cell numbers overlap"
    # each number inside its own cell: the cell is heat's width / k pixels wide
    box = heat.get_window_extent(renderer)
    cell = box.width / k
    assert (boxes[:, 2] - boxes[:, 0]).max() < cell and (boxes[:, 3] - boxes[:, 1]).max() < cell
    # the matrix is not shrunk beside the other panels: its stated size in inches
    side = figure_data.heatmap_side_inches(k)
    assert (box.width / fig.dpi, box.height / fig.dpi) == pytest.approx((side, side), rel=1e-6)
    # nothing of the matrix (tick labels, title) runs into the colour bar or the pairs panel
    others = fig.axes[1:]
    assert len(others) == 1 + inference
    tight = [ax.get_tightbbox(renderer) for ax in fig.axes]
    for a, b in itertools.combinations(tight, 2):
        assert not a.overlaps(b), "panels overlap"
    page = fig.bbox
    assert all(page.x0 <= t.x0 and t.x1 <= page.x1 and page.y0 <= t.y0 and t.y1 <= page.y1 for t in tight)
    assert cbar.get_ylabel() == "1 - spearman similarity"


def test_heatmap_drops_cell_numbers_above_the_stated_k():
    k = figure_data.MAX_CELL_NUMBERS + 1
    fig = second_order.second_order_heatmap_figure(_sweep(k, True))
    assert len(figure_data.ordered_result(_sweep(k, True))["labels"]) == k
    assert not [t for t in fig.axes[0].texts if t.get_text()]


def test_rdm_panel_names_the_classes_along_its_axes():
    records, labels = _records(5, 40)  # 4 classes of 10, grouped; 5 panels: 4 in the first row, 1 below
    fig = stimuli.rdm_panel_figure(records, labels, ["cat", "dog", "car", "cup"], _load)
    panels = [ax for ax in fig.axes if ax.images and ax.get_title()]
    assert len(panels) == 5
    for i, ax in enumerate(panels):
        np.testing.assert_array_equal(ax.get_yticks(), [4.5, 14.5, 24.5, 34.5])  # the middle of each block
        np.testing.assert_array_equal(ax.get_xticks(), [4.5, 14.5, 24.5, 34.5])
        y_names = [t.get_text() for t in ax.get_yticklabels()]
        x_names = [t.get_text() for t in ax.get_xticklabels()]
        assert y_names == (["cat", "dog", "car", "cup"] if i % 4 == 0 else [""] * 4)  # left column
        assert x_names == (["cat", "dog", "car", "cup"] if i >= 1 else [""] * 4)  # lowest panel of each column
        # a separator between blocks, on both axes
        lines = [ln.get_xydata() for ln in ax.get_lines()]
        assert sorted({float(xy[0, 1]) for xy in lines if xy[0, 1] == xy[1, 1]}) == [9.5, 19.5, 29.5]
        assert sorted({float(xy[0, 0]) for xy in lines if xy[0, 0] == xy[1, 0]}) == [9.5, 19.5, 29.5]


def test_rdm_panel_names_at_most_the_cap_of_classes_and_says_so():
    labels = np.repeat(np.arange(30), 2)
    fig = stimuli.rdm_panel_figure(_records(1, 60)[0], labels, [f"c{i}" for i in range(30)], lambda r: _load(r, 60))
    names = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert len(names) == figure_data.MAX_CLASS_TICKS and names[0] == "c0" and names[-1] == "c29"
    assert f"{figure_data.MAX_CLASS_TICKS} of 30 class blocks named" in fig._suptitle.get_text()


def _trajectory_sweep(n_models: int, n_layers: int, step: float, seed: int = 0) -> dict:
    """A sweep whose layers follow a random walk per model (adjacent layers close, as in real networks)."""
    result = result_of({f"net{m}": n_layers for m in range(n_models)}, ["V1", "V4", "IT"], seed=seed)
    rng = np.random.default_rng(seed)
    points = {}
    for m in range(n_models):
        walk = rng.normal(size=4) * 3 + np.cumsum(rng.normal(size=(n_layers, 4)) * step, axis=0)
        points.update({f"net{m}/layer{d}": walk[d] for d in range(n_layers)})
    points.update({f"external/{e}": rng.normal(size=4) * 3 for e in ("V1", "V4", "IT")})
    result["matrix"] = squareform(pdist(np.array([points[lab] for lab in result["labels"]])))
    return result


@pytest.mark.parametrize("n_models, step, max_leaders", [(2, 0.3, 2), (3, 0.3, 2), (4, 0.3, 3), (3, 0.1, 27)])
def test_mds_labels_an_eight_layer_sweep_legibly(n_models, step, max_leaders):
    """Every point of an 8-layer sweep labelled (layer numbers, externals by name), no label over another
    label or any marker, none clipped, and the key names every numbered layer. Spread trajectories
    (step 0.3) put nearly every label next to its point (a few leader lines at most); tight clusters
    (step 0.1: each network a few pixels wide) may need a leader line for every label."""
    result = _trajectory_sweep(n_models, 8, step)
    fig = mds.mds_figure(result, 0)
    k = 8 * n_models + 3
    _assert_labels_clean(fig, k)
    ax, renderer = fig.axes[0], fig.canvas.get_renderer()
    texts = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in texts) == sorted([str(d) for d in range(1, 9)] * n_models + ["IT", "V1", "V4"])
    boxes = _extents(texts, renderer)
    r = figure_data.ordered_result(result)
    markers = ax.transData.transform(figure_data.mds_embedding(r["matrix"], 0))
    half = 3.0 * fig.dpi / 72  # the marker's half-width (s=40 points^2 is about 6.3 pt across)
    hits = ((boxes[:, None, 0] < markers[None, :, 0] + half) & (markers[None, :, 0] - half < boxes[:, None, 2])
            & (boxes[:, None, 1] < markers[None, :, 1] + half) & (markers[None, :, 1] - half < boxes[:, None, 3]))
    assert not hits.any(), "a label covers a marker"
    leaders = sum(t.arrow_patch is not None for t in texts)
    assert leaders <= max_leaders, f"{leaders} labels need a leader line"
    key = " ".join(child.get_text() for box in ax.artists for child in box.findobj(Text))
    for m in range(n_models):
        assert f"net{m}" in key
    for d in range(8):
        assert f"{d + 1}\u00a0layer{d}" in key


def test_class_blocks_are_the_runs_of_equal_labels():
    labels = np.array([2, 2, 0, 0, 0, 1, 2, 2])
    runs = [(int(k), len(list(g))) for k, g in itertools.groupby(labels)]  # reference: itertools
    starts = np.cumsum([0] + [n for _, n in runs])
    assert figure_data.class_blocks(labels) == [(c, int(a), int(a) + n) for (c, n), a in zip(runs, starts)]
    assert figure_data.class_blocks(np.array([], dtype=int)) == []


def test_layer_numbers_count_depth_within_each_model_and_the_key_names_them():
    r = figure_data.ordered_result(result_of({"b": 3, "a": 2, "c": 3}, ["V1"]))
    numbers = figure_data.layer_numbers(r["labels"], r["models"])
    assert numbers == ["1", "2", "1", "2", "3", "1", "2", "3", "V1"]  # a, b, c by name, then the external RDM
    entries, total = figure_data.layer_key(r["labels"], r["models"], shown=range(9))
    # b and c have the same layers: one shared entry
    assert entries == [(["a"], [("1", "layer0"), ("2", "layer1")]),
                       (["b", "c"], [("1", "layer0"), ("2", "layer1"), ("3", "layer2")])] and total == 2
    entries, _ = figure_data.layer_key(r["labels"], r["models"], shown=[0, 2, 4, 8])  # only the labelled layers
    assert entries == [(["a"], [("1", "layer0")]), (["b"], [("1", "layer0"), ("3", "layer2")])]
    capped = figure_data.layer_key(r["labels"], r["models"], shown=range(9), cap=1)
    assert capped == ([(["a"], [("1", "layer0"), ("2", "layer1")])], 2)  # the first in model order, of 2

"""Figures: order by model and depth, stable model colours, externals apart, labels that never
overlap or clip, classical MDS against an eigendecomposition, and selections that are stated."""

from __future__ import annotations

import itertools
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.text import Text
from scipy.spatial.distance import pdist, squareform

from rsaflow import figures

REPO = Path(__file__).resolve().parents[1]


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
    order = figures.figure_order(models, depths, labels)
    assert [labels[i] for i in order] == [
        "alexnet/features.2", "alexnet/features.12", "alexnet/classifier.2", "alexnet/classifier.5",
        "vgg/features.0", "external/IT", "external/V1"]


def test_heatmap_rows_follow_depth_not_the_alphabet():
    result = {"matrix": np.eye(4)[::-1] + 0.5,
              "labels": ["a/classifier.2", "a/features.12", "a/features.2", "external/V1"],
              "models": ["a", "a", "a", "external"], "depth": np.array([20, 12, 2, -1]), "method": "pearson"}
    fig = figures.second_order_heatmap_figure(result)
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["a/features.2", "a/features.12", "a/classifier.2",
                                                              "external/V1"]
    # the matrix is permuted with its labels: row "a/features.2" was row 2 of the input
    np.testing.assert_array_equal(ax.images[0].get_array()[0], result["matrix"][2, [2, 1, 0, 3]])


def _legend_colours(fig) -> dict:
    legend = fig.axes[0].get_legend()
    return {t.get_text(): h.get_color() for t, h in zip(legend.get_texts(), legend.legend_handles)}


def test_model_colour_does_not_change_when_a_model_is_added():
    before = _legend_colours(figures.mds_figure(result_of({"alexnet": 3, "vgg": 2}, ["V1"]), 0))
    after = _legend_colours(figures.mds_figure(result_of({"alexnet": 3, "vgg": 2, "cornet": 4, "aaa": 2}, ["V1"]), 0))
    assert before["alexnet"] == after["alexnet"] and before["vgg"] == after["vgg"]
    # independent of the other names present: same as the style of the name alone
    assert [figures.model_style(m) for m in ("alexnet", "vgg")] == [figures.model_style(m) for m in ("alexnet", "vgg")]


def test_external_rdms_have_their_own_marker_and_no_line():
    result = result_of({"alexnet": 4, "vgg": 3}, ["V1", "V4", "IT"])
    fig = figures.mds_figure(result, 0)
    ax = fig.axes[0]
    r = figures.ordered_result(result)
    pos = figures.mds_embedding(r["matrix"], 0)
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
    fig = figures.mds_figure(result, 0)
    assert "labelled" not in fig.axes[0].get_title()
    _assert_labels_clean(fig, 30)


def test_more_points_label_a_stated_subset():
    result = result_of({"alexnet": 12, "resnet18": 14, "vgg16": 10}, ["V1", "V4", "IT"], seed=5)
    fig = figures.mds_figure(result, 0)
    title = fig.axes[0].get_title()
    shown = int(re.search(r"showing (\d+) of 39 points labelled", title).group(1))
    assert shown <= figures.MAX_POINT_LABELS
    _assert_labels_clean(fig, shown)
    labelled = {t.get_text() for t in fig.axes[0].texts}
    # the rule: every external RDM and each model's first and last layer are among the labelled
    assert {"external/V1", "external/V4", "external/IT", "alexnet/layer0", "alexnet/layer11",
            "vgg16/layer0", "vgg16/layer9"} <= labelled


def test_classical_mds_recovers_a_planar_configuration():
    x = np.random.default_rng(0).normal(size=(40, 2)) * [3.0, 1.0]
    d = squareform(pdist(x))
    y = figures.classical_mds(d)
    np.testing.assert_allclose(squareform(pdist(y)), d, rtol=0, atol=1e-8)


def test_classical_mds_equals_a_full_eigendecomposition_for_non_euclidean_input():
    rng = np.random.default_rng(1)
    d = squareform(pdist(rng.normal(size=(30, 6)), "cityblock"))
    n = d.shape[0]
    j = np.eye(n) - 1.0 / n
    w, v = np.linalg.eigh(-0.5 * j @ (d ** 2) @ j)  # reference: every eigenpair, numpy's LAPACK driver
    ref = v[:, [-1, -2]] * np.sqrt(w[[-1, -2]])
    y = figures.classical_mds(d)
    np.testing.assert_allclose(squareform(pdist(y)), squareform(pdist(ref)), rtol=0, atol=1e-8)
    assert np.allclose(np.abs(y), np.abs(ref), atol=1e-8)  # same axes, up to sign


def test_display_percentiles_equal_percentile_ranks():
    from rsaflow.rdm import percentile_ranks

    rdm = squareform(np.round(pdist(np.random.default_rng(2).normal(size=(50, 3))), 1))  # many ties
    rows = np.arange(0, 50, 3)
    np.testing.assert_allclose(figures.display_percentiles(rdm, rows), percentile_ranks(rdm)[np.ix_(rows, rows)],
                               rtol=0, atol=1e-12)


def _records(k: int, n: int) -> tuple[list[dict], np.ndarray]:
    labels = np.repeat(np.arange(4), n // 4)
    records = [{"label": f"net{i % 3}/layer{i}", "model": f"net{i % 3}", "depth": i, "seed": i} for i in range(k)]
    return records, labels


def _load(record: dict, n: int = 40) -> np.ndarray:
    return squareform(pdist(np.random.default_rng(record["seed"]).normal(size=(n, 3))))


def test_rdm_panel_states_its_selection_and_loads_only_what_it_draws():
    records, labels = _records(20, 40)
    loaded = []
    fig = figures.rdm_panel_figure(records, labels, lambda r: loaded.append(r["label"]) or _load(r))
    assert f"showing {figures.MAX_PANELS} of 20 RDMs" in fig._suptitle.get_text()
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles == loaded and len(loaded) == figures.MAX_PANELS
    order = [r["label"] for r in sorted(records, key=lambda r: (r["model"], r["depth"]))]
    assert titles[0] == order[0] and titles[-1] == order[-1]  # first and last kept, in figure order
    fig = figures.rdm_panel_figure(records[:5], labels, _load)
    assert "showing" not in fig._suptitle.get_text()


def test_stimulus_mds_states_the_stimulus_subsample(monkeypatch):
    monkeypatch.setattr(figures, "MAX_MDS_STIMULI", 20)
    records, labels = _records(3, 40)
    fig = figures.stimulus_mds_figure(records, labels, ["a", "b", "c", "d"], _load)
    assert "showing 20 of 40 stimuli" in fig._suptitle.get_text()
    sub = figures.stimulus_subsample(labels, 20)
    assert sub.size == 20 and set(labels[sub]) == {0, 1, 2, 3}


def test_heatmap_pairs_panel_states_selection_and_reaches_every_network():
    result = result_of({"alexnet": 7, "resnet18": 7, "vgg16": 7}, ["V1", "V2", "V4", "IT"], inference=True)
    fig = figures.second_order_heatmap_figure(result)
    panel = fig.axes[1]
    assert "showing 60 of 300 pairs" in panel.get_title()
    pairs = [t.get_text() for t in panel.get_yticklabels()]
    assert len(pairs) == 60 and all(" vs external/" in p for p in pairs)
    assert {p.split("/")[0] for p in pairs} == {"alexnet", "resnet18", "vgg16"}
    small = figures.second_order_heatmap_figure(result_of({"a": 3}, ["V1"], inference=True))
    assert "showing" not in small.axes[1].get_title() and len(small.axes[1].get_yticklabels()) == 6


def test_captions_state_the_caps():
    report = REPO / "workflow" / "report"
    assert str(figures.MAX_PANELS) in (report / "rdms.rst").read_text()
    assert str(figures.MAX_PANEL_STIMULI) in (report / "rdms.rst").read_text()
    text = (report / "stimulus_mds.rst").read_text()
    assert str(figures.MAX_PANELS) in text and str(figures.MAX_MDS_STIMULI) in text
    assert str(figures.MAX_PAIRS) in (report / "second_order.rst").read_text()
    assert str(figures.MAX_POINT_LABELS) in (report / "mds.rst").read_text()


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
    draw_rdms(paths, tmp_path / "stimuli.h5", tmp_path / "rdms.png")
    assert reads.count(True) == figures.MAX_PANELS and reads.count(False) == 18
    draw_stimulus_grid(tmp_path / "stimuli.h5", tmp_path / "grid.png")
    assert (tmp_path / "rdms.pdf").exists() and (tmp_path / "grid.png").stat().st_size > 1000


@pytest.mark.parametrize("method, label", [("spearman", "1 - spearman similarity"),
                                           ("cka_rbf", "1 - cka_rbf similarity"),
                                           ("shape", "shape distance (radians)")])
def test_heatmap_and_mds_say_what_the_value_is(method, label):
    """The colour bar, the pairs axis and the MDS title name the matrix's quantity: the shape angle
    (rsaflow.compare.dissimilarity: arccos of the similarity) is not 1 - a similarity."""
    result = {**result_of({"a": 3}, ["V1"], inference=True), "method": method}
    fig = figures.second_order_heatmap_figure(result)
    assert fig.axes[1].get_xlabel() == label  # the pairs panel
    assert label in [ax.get_ylabel() for ax in fig.axes[2:]]  # the colour bar
    assert f"({label})" in figures.mds_figure(result, seed=0).axes[0].get_title()

"""The model-comparison figure of a brain region (as rsatoolbox's ``vis.plot_model_comparison``).

Left: one bar per layer (figure order: models by name, layers by depth, a gap between models, colours
by model as rsaflow.figure_data.model_style), height the mean evaluation over subjects, error bar +- sqrt of
the model variance (the s.e.m. over subjects, or the bootstrap's), the noise ceiling as a grey band
(lower to upper). Below each bar a filled dot where the layer is above zero (adjusted p_zero < alpha);
above it an open circle where it is NOT significantly below the lower noise ceiling (adjusted
p_ceiling >= alpha), rsatoolbox's marks. Right: the pairwise comparisons as a K x K matrix, a cell
filled where the row layer beats the column layer (adjusted p_pair < alpha). At most 60 layers are
drawn (evenly spaced, both ends kept) and the title says so.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from rsaflow import h5io  # noqa: E402
from rsaflow.figure_data import evenly_spaced, model_style  # noqa: E402
from rsaflow.plots.base import save_figure  # noqa: E402

MAX_BARS = 60


def read_evaluation(path) -> dict:
    """Every dataset of an ``evaluation.h5`` (rsaflow.jobs.brain_eval), strings decoded, and its attributes."""
    with h5io.open_artifact(path, "evaluation") as f:
        out = {k: f[k][()] for k in f}
        attrs = h5io.read_attrs(f)
    for k in ("labels", "models"):
        out[k] = h5io.texts(out[k])
    out["attrs"] = attrs
    return out


def _pair_matrix(d: dict, sel: np.ndarray, alpha: float) -> np.ndarray:
    k = len(d["labels"])
    i, j = np.triu_indices(k, k=1)
    win = np.zeros((k, k))
    sig = d["p_pair_adjusted"] < alpha
    diff = d["estimate"][i] - d["estimate"][j]
    win[i[sig & (diff > 0)], j[sig & (diff > 0)]] = 1
    win[j[sig & (diff < 0)], i[sig & (diff < 0)]] = 1
    return win[np.ix_(sel, sel)]


def plot_model_comparison(d: dict, path, alpha: float = 0.05) -> None:
    """Draw the figure (PNG and PDF beside it) from :func:`read_evaluation`'s dict."""
    k = len(d["labels"])
    sel = evenly_spaced(k, MAX_BARS)
    models = [d["models"][i] for i in sel]
    x = np.arange(sel.size) + np.cumsum([0] + [m != p for p, m in zip(models, models[1:])])
    fig, (ax, axp) = plt.subplots(1, 2, figsize=(max(6, 0.35 * sel.size + 4), 4.5),
                                  gridspec_kw={"width_ratios": [3, 1.2]})
    lo, hi = d["noise_ceiling"]
    ax.axhspan(lo, hi, color="0.85", zorder=0, label="noise ceiling")
    est, sem = d["estimate"][sel], np.sqrt(np.maximum(d["var_model"][sel], 0))
    ax.bar(x, est, yerr=sem, color=[model_style(m)[0] for m in models], capsize=2, zorder=2)
    span = max(hi, (est + sem).max()) - min(0, (est - sem).min())
    above_zero = d["p_zero_adjusted"][sel] < alpha
    at_ceiling = d["p_ceiling_adjusted"][sel] >= alpha
    base = min(0, (est - sem).min()) - 0.05 * span
    ax.plot(x[above_zero], np.full(above_zero.sum(), base), "k.", ms=6, label=f"> 0 (adj. p < {alpha})")
    ax.plot(x[at_ceiling], (est + sem)[at_ceiling] + 0.04 * span, "o", mfc="none", mec="k", ms=5,
            label="not below the lower ceiling")
    ax.set_xticks(x, [d["labels"][i].split("/", 1)[1] for i in sel], rotation=90, fontsize=7)
    ax.set_ylabel(f"mean {d['attrs']['config']['method']} over subjects")
    ax.axhline(0, color="k", lw=0.6)
    ax.legend(fontsize=7, loc="upper left")
    note = "" if sel.size == k else f" ({sel.size} of {k} layers)"
    ax.set_title(f"{d['attrs']['region']}: layers vs subjects{note}", fontsize=9)
    axp.imshow(_pair_matrix(d, sel, alpha), cmap="Greys", vmin=0, vmax=1)
    axp.set_title("row beats column\n(adj. p < %g)" % alpha, fontsize=8)
    axp.set_xticks([])
    axp.set_yticks([])
    fig.tight_layout()
    save_figure(fig, path)


def draw_evaluation(evaluation_path, out_path, alpha: float = 0.05) -> None:
    """Rule ``evaluation_figure``: :func:`plot_model_comparison` of one region's evaluation.h5."""
    plot_model_comparison(read_evaluation(evaluation_path), out_path, alpha)

"""Rule ``brain_eval``: every model layer evaluated against a brain region's subjects (rsaflow.evaluation).

Inputs: the layers' RDM files (the region's ``evaluate.rdm_metric``) and the region's group file
(results/brain/<region>.h5, dataset ``subjects``). Outputs, in results/evaluation/<region>/:

- ``evaluation.h5`` (kind ``evaluation``): ``evaluations`` (K, S) per-layer per-subject similarities
  (rsatoolbox eval_fixed), ``labels``, ``models``, ``depth``, ``estimate`` (K,) their mean over subjects,
  ``noise_ceiling`` (2,) lower, upper; ``var_model`` (K,), ``var_pair`` (K(K-1)/2,), ``var_ceiling`` (K, 2);
  ``p_zero``, ``p_ceiling``, ``p_pair`` and ``p_*_adjusted`` (correction per family); with a bootstrap,
  ``samples`` (B, K) and ``samples_ceiling`` (B, 2). Settings as attributes (JSON ``config``).
- ``commitment.tsv`` (``evaluate.commit``; header only when ``none``): per model the layer chosen on one
  half of the stimuli or subjects, its score there (``selection``), on the other half (``reported``), and the
  best layer's score on that other half (``best_reported``, what picking on the same data would claim).
- ``layers.tsv``: one line per layer: label, model, depth, estimate, sem (sqrt of var_model), p_zero,
  p_zero_adjusted, p_ceiling, p_ceiling_adjusted; ``pairs.tsv``: label_a, label_b, difference, p, p_adjusted.

Memory: K + S condensed RDMs (8 (K + S) P B); pearson and cosine add per thread a few blocks of
8192 pairs x 3 x 64 resamples (~20 MB), the ranked methods per resample their unit vectors (8 (K + S) P B).
"""

from __future__ import annotations

import logging

import numpy as np

from rsaflow import evaluation, h5io
from rsaflow.errors import InputFileError
from rsaflow.figure_data import figure_order
from rsaflow.provenance import base_attrs
from rsaflow.results import check_same_stimuli, read_rdm, read_subjects

log = logging.getLogger(__name__)


def _inputs(layer_paths, group_path):
    records = [read_rdm(p) for p in layer_paths]
    group = read_rdm(group_path)
    check_same_stimuli(records + [group])
    subjects = read_subjects(group_path)
    if subjects is None or subjects.shape[0] < 2:
        raise InputFileError(group_path, "not a group of 2 or more subjects' RDMs")
    order = figure_order([r["model"] for r in records], [r["depth"] for r in records],
                         [r["label"] for r in records])
    records = [records[i] for i in order]
    return records, np.stack([r["condensed"] for r in records]), subjects


def evaluate_region(layer_paths, group_path, spec: dict) -> dict:
    """The datasets of ``evaluation.h5`` (see the module docstring); ``spec``: the region's ``evaluate``."""
    records, layers, subjects = _inputs(layer_paths, group_path)
    method, kind = spec["method"], spec["bootstrap"]
    evals, ceiling = evaluation.evaluate_fixed(layers, subjects, method)
    n = records[0]["n_stimuli"] or evaluation.n_from_pairs(layers.shape[1])
    boot = None
    if kind != "none":
        boot = evaluation.bootstrap(layers, subjects, method, kind, spec["samples"], spec["seed"])
    var = evaluation.variances(evals, boot, kind, n)
    estimate = evals.mean(axis=1)
    test = spec["test"] if kind != "none" else "t-test"
    p = evaluation.tests(estimate, ceiling[0], var, test, boot)
    log.info("%d layers x %d subjects, %s, uncertainty %s, %s; best %s (%.4f), noise ceiling %.4f-%.4f",
             *evals.shape, method, kind, test, records[int(np.argmax(estimate))]["label"], estimate.max(), *ceiling)
    out = {"evaluations": evals, "estimate": estimate, "noise_ceiling": np.array(ceiling),
           "labels": np.array([r["label"] for r in records], dtype=object),
           "models": np.array([r["model"] for r in records], dtype=object),
           "depth": np.array([r["depth"] for r in records], dtype=np.int64),
           "var_model": var["model"], "var_pair": var["pair"], "var_ceiling": var["ceiling"],
           "dof": np.array(var["dof"], dtype=np.int64)}
    for family, values in p.items():
        out[f"p_{family}"] = values
        out[f"p_{family}_adjusted"] = evaluation.correct(values, spec["correction"])
    if boot is not None:
        out["samples"], out["samples_ceiling"] = boot["samples"], boot["ceiling"]
    if spec["commit"] != "none":
        out["commitment"] = evaluation.commit_layers(layers, subjects, [r["model"] for r in records], method,
                                                     spec["commit"], spec["seed"])
    return out


def _tsv(path, header: list[str], rows: list[list]) -> None:
    lines = ["\t".join(header)] + ["\t".join(c if isinstance(c, str) else repr(c) for c in r) for r in rows]
    with open(path, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")


def write_evaluation(layer_paths, group_path, out_h5, out_layers, out_pairs, out_commit, region: str, spec: dict,
                     code) -> None:
    """Evaluate, then write ``evaluation.h5``, ``layers.tsv``, ``pairs.tsv`` and ``commitment.tsv``."""
    d = evaluate_region(layer_paths, group_path, spec)
    commitment = d.pop("commitment", [])
    h5io.write_h5(out_h5, "evaluation", d, {**base_attrs(spec, code), "region": region})
    labels = [str(s) for s in d["labels"]]
    _tsv(out_commit, ["model", "layer", "split", "selection", "reported", "best_reported"],
         [[c["model"], labels[c["layer"]], spec["commit"], c["selection"], c["reported"], c["best_reported"]]
          for c in commitment])
    sem = np.sqrt(np.maximum(d["var_model"], 0))
    _tsv(out_layers, ["label", "model", "depth", "estimate", "sem", "p_zero", "p_zero_adjusted", "p_ceiling",
                      "p_ceiling_adjusted"],
         [[labels[k], str(d["models"][k]), int(d["depth"][k]), float(d["estimate"][k]), float(sem[k]),
           float(d["p_zero"][k]), float(d["p_zero_adjusted"][k]), float(d["p_ceiling"][k]),
           float(d["p_ceiling_adjusted"][k])] for k in range(len(labels))])
    i, j = np.triu_indices(len(labels), k=1)
    _tsv(out_pairs, ["label_a", "label_b", "difference", "p", "p_adjusted"],
         [[labels[a], labels[b], float(d["estimate"][a] - d["estimate"][b]), float(d["p_pair"][n]),
           float(d["p_pair_adjusted"][n])] for n, (a, b) in enumerate(zip(i, j))])

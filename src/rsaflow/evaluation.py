"""Model evaluation against a group of subjects' RDMs, with rsatoolbox's semantics and statistics.

For layers' RDMs ``L`` (K, P) and subjects' RDMs ``D`` (S, P) (condensed upper triangles of the same
N stimuli) and a comparison method (``pearson``, ``cosine``, ``spearman``: rsatoolbox's ``corr``,
``cosine``, ``spearman``):

- :func:`evaluate_fixed`: ``e[k, s] = sim(L_k, D_s)`` (rsatoolbox ``eval_fixed(...).evaluations[0]``),
  with the noise ceiling of ``rsatoolbox.inference.boot_noise_ceiling`` (rsaflow.ceiling.noise_ceiling).
- :func:`bootstrap`: resamples of subjects (``subjects``: rsatoolbox ``eval_bootstrap_rdm``), of
  stimuli (``stimuli``: ``eval_bootstrap_pattern``) or both at once, with the dual bootstrap's
  three sample sets (``both``: ``eval_dual_bootstrap`` without cross-validation, Schütt et al. 2023):
  each sample draws S subjects and N stimuli with replacement (rsaflow.resampling.draw, one
  generator) and evaluates on (subjects and stimuli), (subjects), (stimuli) resampled. A stimulus
  resample is the RDM of the drawn stimuli without the pairs of two draws of one stimulus (as
  rsatoolbox's ``subsample_pattern``), held as the distinct pairs with their counts as weights. The
  noise ceiling is recomputed per sample (leave one distinct subject out, pooled with multiplicity).
- :func:`variances`: the model, pairwise-difference and noise-ceiling-difference variances of
  rsatoolbox's ``extract_variances`` (its ``_dual_bootstrap`` correction for ``both``:
  ``n_s/(n_s-1) v_subj + n_p/(n_p-1) v_stim - n_s n_p/((n_s-1)(n_p-1)) (v_both - v_subj - v_stim)``,
  clipped below by the single-factor terms and above by ``v_both``).
- :func:`tests`: p-values against 0 (one-sided), the lower noise ceiling (two-sided) and of every pair
  (two-sided), by rsatoolbox's t-test (``t_test_0``, ``t_test_nc``, ``t_tests``) or bootstrap
  (``bootstrap_pair_tests`` and the sample proportions), and :func:`correct` (``fdr``:
  Benjamini-Hochberg, scipy.stats.false_discovery_control; ``bonferroni``: min(1, m p)).
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from rsaflow.compare import DegenerateRDMError, n_from_pairs
from rsaflow.resampling import draw
from rsaflow.ceiling import noise_ceiling

EVAL_METHODS = ("pearson", "cosine", "spearman")
KINDS = ("none", "subjects", "stimuli", "both")


def weighted_ranks(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Average ranks of each value in the multiset {x[q] repeated w[q] times} (ties at their mean rank)."""
    order = np.argsort(x, kind="stable")
    xs, ws = x[order], w[order]
    _, start, inverse = np.unique(xs, return_index=True, return_inverse=True)
    group_w = np.add.reduceat(ws, start)
    before = np.concatenate([[0.0], np.cumsum(group_w)[:-1]])
    ranks = np.empty_like(x, dtype=np.float64)
    ranks[order] = (before + (group_w + 1) / 2)[inverse]
    return ranks


def _units(x: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    """Rows of ``x`` as vectors whose dot products are the method's weighted similarities."""
    x = np.asarray(x, dtype=np.float64)
    if method == "spearman":
        x = np.stack([weighted_ranks(row, w) for row in x])
    if method in ("pearson", "spearman"):
        x = x - ((x @ w) / w.sum())[:, None]
    norm = np.sqrt((x * x) @ w)
    if np.any(norm == 0):
        raise DegenerateRDMError("an RDM is constant on this selection of stimuli: similarity undefined")
    return x * np.sqrt(w) / norm[:, None]


def _pool(x: np.ndarray, mult: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    """rsatoolbox's pool_rdm of the rows of ``x`` repeated ``mult`` times, on the weighted pairs."""
    total = w.sum()
    if method == "spearman":
        x = np.stack([weighted_ranks(row, w) for row in x])
    elif method == "pearson":
        x = x - ((x @ w) / total)[:, None]
        x = x / np.sqrt(((x * x) @ w) / total)[:, None]
    else:
        x = x / np.sqrt(((x * x) @ w) / total)[:, None]
    return (mult @ x) / mult.sum()


def _ceiling(d: np.ndarray, mult: np.ndarray, w: np.ndarray, method: str) -> tuple[float, float]:
    """(lower, upper) noise ceiling of the distinct subjects ``d`` drawn ``mult`` times (boot_noise_ceiling)."""
    keep = mult > 0
    d, mult = d[keep], mult[keep].astype(np.float64)
    if d.shape[0] < 2:
        return np.nan, np.nan
    units = _units(d, w, method)
    upper = _units(_pool(d, mult, w, method)[None], w, method)[0]
    lows = []
    for s in range(d.shape[0]):
        others = mult.copy()
        others[s] = 0
        lows.append(_units(_pool(d, others, w, method)[None], w, method)[0] @ units[s])
    return float(np.mean(lows)), float(np.mean(units @ upper))


def evaluate_fixed(layers: np.ndarray, subjects: np.ndarray, method: str) -> tuple[np.ndarray, tuple]:
    """(K, S) similarities of each layer to each subject and the (lower, upper) noise ceiling."""
    w = np.ones(layers.shape[1])
    evals = _units(layers, w, method) @ _units(subjects, w, method).T
    return evals, noise_ceiling(subjects, method)


class _Moments:
    """Weighted sums over all P pairs for pearson and cosine: a resample's similarities from one
    K x P x (S + 1) product and O(P) vectors, no copies of the RDMs (``x2`` is kept once)."""

    def __init__(self, layers: np.ndarray, subjects: np.ndarray, method: str):
        self.x, self.y, self.centred = layers, subjects, method == "pearson"
        self.xx = layers * layers

    def _stats(self, w: np.ndarray):
        total = w.sum()
        xw = self.x @ np.column_stack([w, (self.y * w).T])  # (K, 1 + S): sum w x, sum w x y
        yw, yyw = self.y @ w, (self.y * w) @ self.y.T
        xxw = self.xx @ w
        sx, sxy = xw[:, 0], xw[:, 1:]
        if self.centred:
            sxy = sxy - np.outer(sx, yw) / total
            yyw = yyw - np.outer(yw, yw) / total
            xxw = xxw - sx * sx / total
        if np.any(xxw <= 0) or np.any(np.diag(yyw) <= 0):
            raise DegenerateRDMError("an RDM is constant on this selection of stimuli: similarity undefined")
        ny = np.sqrt(np.diag(yyw))
        return sxy / np.sqrt(xxw)[:, None] / ny[None, :], yyw / np.outer(ny, ny)

    def sample(self, w: np.ndarray):
        """(K, S) similarities on pairs weighted ``w`` and ceiling(mult) -> (lower, upper)."""
        ev, rho = self._stats(w)
        return ev, lambda mult: _gram_ceiling(rho, mult)


def _gram_ceiling(rho: np.ndarray, mult: np.ndarray) -> tuple[float, float]:
    """boot_noise_ceiling for pearson / cosine from the subjects' similarity matrix: the pooled RDM of
    rsatoolbox (mean of z-scores, or of RMS-normalised RDMs) has sim(sum_t a_t z_t, z_s) =
    a . rho[:, s] / sqrt(a rho a)."""
    keep = np.flatnonzero(mult > 0)
    if keep.size < 2:
        return np.nan, np.nan
    rho, a = rho[np.ix_(keep, keep)], mult[keep].astype(np.float64)
    lows, highs = [], []
    for n in range(keep.size):
        b = a.copy()
        b[n] = 0
        lows.append(b @ rho[:, n] / np.sqrt(b @ rho @ b))
        highs.append(a @ rho[:, n] / np.sqrt(a @ rho @ a))
    return float(np.mean(lows)), float(np.mean(highs))


def _sampler(layers: np.ndarray, subjects: np.ndarray, method: str):
    """sample(w, counts) -> ((K, S) similarities, ceiling(mult)) on the pairs weighted ``w``."""
    if method in ("pearson", "cosine"):
        moments = _Moments(layers, subjects, method)
        return lambda w, counts: moments.sample(w)

    def sample(w, counts):
        keep = w > 0
        ww = w[keep]
        d = subjects[:, keep]
        ev = _units(layers[:, keep], ww, method) @ _units(d, ww, method).T
        return ev, lambda mult: _ceiling(d, mult, ww, method)

    return sample


def _pair_weights(counts: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """w over all P pairs: c_i c_j (0 where a stimulus was not drawn), as rsaflow.inference._weighted_pairs."""
    return (counts[i] * counts[j]).astype(np.float64)


def bootstrap(layers: np.ndarray, subjects: np.ndarray, method: str, kind: str, n_boot: int,
              seed: int = 0) -> dict:
    """Bootstrap samples of the mean evaluation. Returns ``samples`` (B, K) and ``ceiling`` (B, 2) of
    ``kind``, and for ``both`` also ``samples_subjects``/``_stimuli`` and ``ceiling_subjects``/``_stimuli``
    (the dual bootstrap's other two sets, the same draws). Samples that cannot be evaluated (fewer than
    2 distinct subjects, too few stimuli, a constant RDM) are NaN rows."""
    k, s_n = layers.shape[0], subjects.shape[0]
    n = n_from_pairs(layers.shape[1])
    i, j = np.triu_indices(n, k=1)
    sampler = _sampler(layers, subjects, method)
    full = sampler(np.ones(layers.shape[1]), None)
    rng = np.random.default_rng(seed)
    sets = ("both", "subjects", "stimuli") if kind == "both" else (kind,)
    out = {f"samples_{t}": np.full((n_boot, k), np.nan) for t in sets}
    out.update({f"ceiling_{t}": np.full((n_boot, 2), np.nan) for t in sets})
    ones = np.ones(s_n, dtype=np.int64)
    for b in range(n_boot):
        subj = np.bincount(rng.integers(0, s_n, s_n), minlength=s_n) if kind != "stimuli" else ones
        counts = draw(rng, n, whole=False) if kind != "subjects" else np.ones(n, np.int64)
        if counts is None or np.count_nonzero(subj) < 2:
            continue
        try:
            resampled = sampler(_pair_weights(counts, i, j), counts) if kind != "subjects" else full
            chosen = {"both": (resampled, subj), "subjects": (full, subj), "stimuli": (resampled, ones)}
            for t in sets:
                (ev, ceiling), mult = chosen[t]
                out[f"samples_{t}"][b] = (ev @ mult) / mult.sum()
                out[f"ceiling_{t}"][b] = ceiling(mult)
        except DegenerateRDMError:
            continue
    out["samples"], out["ceiling"] = out[f"samples_{sets[0]}"], out[f"ceiling_{sets[0]}"]
    return out


def _pairs(k: int) -> tuple[np.ndarray, np.ndarray]:
    return np.triu_indices(k, k=1)


def _cov_parts(cov: np.ndarray, k: int, n: int | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(model, pair-difference, ceiling-difference) variances from the (K + 2)^2 covariance of
    [evaluations, lower, upper] (rsatoolbox extract_variances, nc_included), times n / (n - 1)."""
    i, j = _pairs(k)
    model = np.diag(cov)[:k]
    pair = model[i] + model[j] - 2 * cov[i, j]
    nc = model[:, None] - 2 * cov[:k, k:] + np.diag(cov)[None, k:]
    f = 1.0 if n is None else n / (n - 1)
    return f * model, f * pair, f * nc


def variances(evals: np.ndarray, boot: dict | None, kind: str, n_stimuli: int) -> dict:
    """``model`` (K,), ``pair`` (K(K-1)/2, upper-triangle order), ``ceiling`` (K, 2) variances and
    ``dof`` as rsatoolbox's Result derives them for eval_fixed (``none``), eval_bootstrap_rdm
    (``subjects``), eval_bootstrap_pattern (``stimuli``) and eval_dual_bootstrap (``both``)."""
    k, s = evals.shape
    if kind == "none":
        i, j = _pairs(k)
        model = evals.var(axis=1, ddof=1) / s
        return {"model": model, "pair": (evals[i] - evals[j]).var(axis=1, ddof=1) / s,
                "ceiling": np.stack([model, model], axis=1), "dof": s - 1}
    sets = ("both", "subjects", "stimuli") if kind == "both" else (kind,)
    parts = []
    for t in sets:
        m = np.concatenate([boot[f"samples_{t}"], boot[f"ceiling_{t}"]], axis=1)
        m = m[~np.isnan(m).any(axis=1)]
        cov = np.cov(m.T)
        parts.append(_cov_parts(cov, k, None if kind == "both" else (s if t == "subjects" else n_stimuli)))
    if kind != "both":
        model, pair, nc = parts[0]
        return {"model": model, "pair": pair, "ceiling": nc, "dof": (s if kind == "subjects" else n_stimuli) - 1}
    dual = [_dual(*(p[q] for p in parts), s, n_stimuli) for q in range(3)]
    return {"model": dual[0], "pair": dual[1], "ceiling": dual[2], "dof": min(s, n_stimuli) - 1}


def _dual(v_both, v_subj, v_stim, n_rdm: int, n_pattern: int) -> np.ndarray:
    """rsatoolbox's ``_dual_bootstrap`` with both ns (Schütt et al. 2023's small-sample formula)."""
    a, b = n_rdm / (n_rdm - 1) * v_subj, n_pattern / (n_pattern - 1) * v_stim
    v = a + b - n_pattern * n_rdm / (n_pattern - 1) / (n_rdm - 1) * (v_both - v_subj - v_stim)
    return np.minimum(np.maximum(np.maximum(v, a), b), v_both)


def tests(estimate: np.ndarray, lower: float, var: dict, test: str, boot: dict | None = None) -> dict:
    """p-values ``zero`` (K,), ``ceiling`` (K,), ``pair`` (K(K-1)/2,).

    ``t-test``: t = estimate / sqrt(var) (one-sided against 0: rsatoolbox t_test_0), (estimate - lower) /
    sqrt(ceiling var) (two-sided, t_test_nc), pair differences / sqrt(pair var) (two-sided, t_tests), on
    ``var['dof']`` degrees of freedom; ``estimate`` is the evaluation on all data (rsatoolbox's uses the
    mean of its bootstrap samples, the same for eval_fixed). ``bootstrap``: rsatoolbox's proportions over
    the valid samples of ``boot``: (#(e_b <= 0) + 1) / B, (#(lower_b - e_b <= 0) + 1) / B, and
    bootstrap_pair_tests' two-sided ``(B - 1) / B * 2 min(q, 1 - q) + 1 / B``."""
    k = estimate.size
    i, j = _pairs(k)
    if test == "t-test":
        dof, eps = var["dof"], np.finfo(float).eps
        t0 = estimate / np.sqrt(np.maximum(var["model"], eps))
        tn = (estimate - lower) / np.sqrt(np.maximum(var["ceiling"][:, 0], eps))
        tp = (estimate[i] - estimate[j]) / np.sqrt(np.maximum(var["pair"], eps))
        return {"zero": stats.t.sf(t0, dof), "ceiling": 2 * stats.t.sf(np.abs(tn), dof),
                "pair": 2 * stats.t.sf(np.abs(tp), dof)}
    ok = ~np.isnan(boot["samples"]).any(axis=1) & ~np.isnan(boot["ceiling"]).any(axis=1)
    e, nc = boot["samples"][ok], boot["ceiling"][ok, 0]
    b = e.shape[0]
    q = (e[:, i] < e[:, j]).sum(axis=0) / (b - (e[:, i] == e[:, j]).sum(axis=0))
    return {"zero": ((e <= 0).sum(axis=0) + 1) / b, "ceiling": ((nc[:, None] - e <= 0).sum(axis=0) + 1) / b,
            "pair": (b - 1) / b * 2 * np.minimum(q, 1 - q) + 1 / b}


def correct(p: np.ndarray, method: str) -> np.ndarray:
    """Multiple-comparison adjusted p-values of one family: ``fdr`` (Benjamini-Hochberg,
    scipy.stats.false_discovery_control(p, method='bh')), ``bonferroni`` (min(1, m p)), ``none``."""
    p = np.asarray(p, dtype=np.float64)
    if method == "none" or p.size == 0:
        return p.copy()
    if method == "fdr":
        return stats.false_discovery_control(p, method="bh")
    return np.minimum(1.0, p * p.size)


def subset_pairs(stimuli: np.ndarray, n: int) -> np.ndarray:
    """Condensed positions of the pairs of ``stimuli`` (sorted indices), in squareform order of the subset."""
    a, b = np.triu_indices(stimuli.size, k=1)
    i, j = stimuli[a], stimuli[b]
    return i * (2 * n - i - 1) // 2 + (j - i - 1)


def commit_layers(layers: np.ndarray, subjects: np.ndarray, models: list[str], method: str, split: str,
                  seed: int = 0) -> list[dict]:
    """Brain-Score's layer commitment: per model, the layer with the best mean evaluation on one half
    (``split`` ``stimuli``: a seeded random half of the stimuli, the RDMs restricted to their pairs;
    ``subjects``: half of the subjects), and its evaluation on the other half, so that choosing the best
    of many layers does not inflate the reported score. Returns one dict per model (first-seen order):
    ``model``, ``layer`` (row index), ``selection`` (its score on the selection half), ``reported`` (on
    the other half) and ``best_reported`` (the best layer's score on the report half, for comparison)."""
    n = n_from_pairs(layers.shape[1])
    rng = np.random.default_rng(seed)
    if split == "stimuli":
        perm = rng.permutation(n)
        halves = [subset_pairs(np.sort(perm[: n // 2]), n), subset_pairs(np.sort(perm[n // 2 :]), n)]
        scores = [evaluate_fixed(layers[:, h], subjects[:, h], method)[0].mean(axis=1) for h in halves]
    else:
        perm = rng.permutation(subjects.shape[0])
        half = subjects.shape[0] // 2
        evals = evaluate_fixed(layers, subjects, method)[0]
        scores = [evals[:, np.sort(perm[:half])].mean(axis=1), evals[:, np.sort(perm[half:])].mean(axis=1)]
    out = []
    for model in dict.fromkeys(models):
        rows = np.array([k for k, m in enumerate(models) if m == model])
        chosen = int(rows[np.argmax(scores[0][rows])])
        out.append({"model": model, "layer": chosen, "selection": float(scores[0][chosen]),
                    "reported": float(scores[1][chosen]), "best_reported": float(scores[1][rows].max())})
    return out

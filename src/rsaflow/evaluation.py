"""Model evaluation against a group of subjects' RDMs, with rsatoolbox's semantics and statistics.

For layers' RDMs ``L`` (K, P) and subjects' RDMs ``D`` (S, P) (condensed upper triangles of the same
N stimuli) and a comparison method of :data:`EVAL_METHODS` (the registry's methods with a noise ceiling:
``spearman``, ``pearson``, ``cosine``, ``rho_a``, ``kendall_tau_a``, ``cosine_cov``, ``corr_cov``, as
rsatoolbox names them in rsaflow.methods.Method.rsatoolbox; chosen by the records' kind, ranked and
centred, never by name):

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
  Pearson and cosine evaluate :data:`BATCH` resamples at a time from weighted moments
  (rsaflow.evaluation_moments: a few columns per resample in one product per block of pairs); the
  sums run in a fixed block order, so a seed gives the same bytes whatever the thread count.
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

from rsaflow import evaluation_moments
from rsaflow.ceiling import noise_ceiling, pool_rdms, rdm_similarity
from rsaflow.compare import DegenerateRDMError, kendall_tau_a, n_from_pairs, tied_pairs
from rsaflow.methods import METHODS, NOISE_CEILING_METHODS
from rsaflow.resampling import draw, rank_vector

#: Method kinds (rsaflow.methods.Method.kind) a layer can be evaluated with, and those whose
#: stimulus resamples are defined here: weighted distinct pairs (``vector``) or the resampled
#: triangle itself (``raw``). A ``whole`` method (cosine_cov, corr_cov) whitens the resample's whole
#: RDM, where rsatoolbox drops the pairs of two draws of one stimulus: only its subjects resample.
EVAL_KINDS = ("vector", "raw", "whole")
STIMULUS_KINDS = ("vector", "raw")
#: The evaluation methods: those with rsatoolbox's noise ceiling (a ``pool``) of these kinds.
EVAL_METHODS = tuple(m for m in NOISE_CEILING_METHODS if METHODS[m].kind in EVAL_KINDS)
KINDS = ("none", "subjects", "stimuli", "both")


def resamples_stimuli(method: str) -> bool:
    """Whether a bootstrap over stimuli (``stimuli``, ``both``) is defined for ``method`` here."""
    return METHODS[method].kind in STIMULUS_KINDS


def _units(x: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    """Rows of ``x`` as vectors whose dot products are the (``vector`` kind) method's weighted
    similarities: ranked methods by rsaflow.resampling.rank_vector (unit, or rho-a's scale), the
    others centred (when ``centred``) and of unit weighted norm."""
    info = METHODS[method]
    x = np.asarray(x, dtype=np.float64)
    if info.ranked:
        total = float(w.sum())
        return np.stack([rank_vector(row, w, total, method) for row in x])
    if info.centred:
        x = x - ((x @ w) / w.sum())[:, None]
    norm = np.sqrt((x * x) @ w)
    if np.any(norm == 0):
        raise DegenerateRDMError("an RDM is constant on this selection of stimuli: similarity undefined")
    return x * np.sqrt(w) / norm[:, None]


def _pool_rows(x: np.ndarray, w: np.ndarray, method: str) -> np.ndarray:
    """Each row of ``x`` as rsatoolbox's pool_rdm normalises it before averaging, on the weighted pairs, by
    the method's ``pool``: weighted ranks, z-scores or RMS-normalised values (a shift of the z-score pool,
    rsatoolbox's minus its minimum, changes no ``vector`` similarity)."""
    total = w.sum()
    pool = METHODS[method].pool
    if pool == "ranks":
        return np.stack([evaluation_moments.weighted_ranks(row, w) for row in x])
    if pool == "zscore":
        x = x - ((x @ w) / total)[:, None]
    return x / np.sqrt(((x * x) @ w) / total)[:, None]


def _ceiling(d: np.ndarray, w: np.ndarray, method: str, units: np.ndarray):
    """ceiling(mult) -> (lower, upper) noise ceiling of the subjects ``d`` (their :func:`_units` ``units``)
    drawn ``mult`` times (boot_noise_ceiling: leave one distinct subject out, pooled with multiplicity);
    the rows' pool forms are computed once for every ``mult``."""
    rows = _pool_rows(d, w, method)

    def ceiling(mult):
        keep = np.flatnonzero(mult > 0)
        if keep.size < 2:
            return np.nan, np.nan
        m = mult[keep].astype(np.float64)
        pools = np.array([m] + [np.where(np.arange(keep.size) == s, 0.0, m) for s in range(keep.size)])
        pooled = _units((pools @ rows[keep]) / pools.sum(axis=1)[:, None], w, method)
        lows = np.einsum("sp,sp->s", pooled[1:], units[keep])
        return float(np.mean(lows)), float(np.mean(units[keep] @ pooled[0]))

    return ceiling


def _plain_ceiling(d: np.ndarray, mult: np.ndarray, method: str) -> tuple[float, float]:
    """boot_noise_ceiling of the subjects ``d`` (their triangles as they are) drawn ``mult`` times, any
    method: rsaflow.ceiling's pool and similarity of the drawn copies, leaving out each distinct subject
    (all its copies) in turn, averaged over the distinct subjects."""
    keep = np.flatnonzero(mult > 0)
    if keep.size < 2:
        return np.nan, np.nan
    d, mult = d[keep], mult[keep]
    everyone = pool_rdms(np.repeat(d, mult, axis=0), method)
    lows, highs = [], []
    for s in range(keep.size):
        others = np.repeat(np.delete(d, s, axis=0), np.delete(mult, s), axis=0)
        lows.append(rdm_similarity(pool_rdms(others, method), d[s], method))
        highs.append(rdm_similarity(everyone, d[s], method))
    return float(np.mean(lows)), float(np.mean(highs))


def _table(layers: np.ndarray, subjects: np.ndarray, method: str) -> np.ndarray:
    """(K, S) similarities of the triangles as they are (every pair once): unit vectors (``vector``:
    :func:`_units`; ``whole``: rsaflow.measures.cov_vector) and one product, or kendall_tau_a per pair
    (``raw``, the tie counts of each triangle computed once)."""
    kind = METHODS[method].kind
    if kind == "vector":
        w = np.ones(layers.shape[1])
        return _units(layers, w, method) @ _units(subjects, w, method).T
    if kind == "whole":
        from rsaflow.measures import DegenerateInputError, cov_vector

        try:
            return (np.stack([cov_vector(r, method) for r in layers])
                    @ np.stack([cov_vector(r, method) for r in subjects]).T)
        except DegenerateInputError as exc:
            raise DegenerateRDMError(str(exc)) from None
    ties_l, ties_s = [tied_pairs(r) for r in layers], [tied_pairs(r) for r in subjects]
    return np.array([[kendall_tau_a(x, y, tx, ty) for y, ty in zip(subjects, ties_s)]
                     for x, tx in zip(layers, ties_l)])


def evaluate_fixed(layers: np.ndarray, subjects: np.ndarray, method: str) -> tuple[np.ndarray, tuple]:
    """(K, S) similarities of each layer to each subject and the (lower, upper) noise ceiling."""
    if method not in EVAL_METHODS:
        raise ValueError(f"no model evaluation with {method!r}; choose one of {', '.join(EVAL_METHODS)}")
    with _one_blas_thread():
        return _table(np.asarray(layers, float), np.asarray(subjects, float), method), noise_ceiling(subjects, method)


def _one_blas_thread():
    """A context with BLAS on one thread: threaded dot products and matrix-vector products split their
    sums by thread, so the bits of a result would depend on the job's thread count."""
    from threadpoolctl import threadpool_limits

    return threadpool_limits(1, user_api="blas")


def _sampler(layers: np.ndarray, subjects: np.ndarray, method: str):
    """sample(w, counts) -> ((K, S) similarities, ceiling(mult)) on the pairs weighted ``w``: from the
    unit vectors of the pairs drawn (``vector``; pearson and cosine take rsaflow.evaluation_moments), or
    from the resampled triangle, each pair repeated w times (``raw``: kendall_tau_a)."""
    info = METHODS[method]
    raw = info.kind == "raw"
    sorted_rows = None if raw or not info.ranked else [evaluation_moments.SortedRows(x) for x in (layers, subjects)]

    def sample(w, counts):
        keep = w > 0
        if raw:
            idx = np.repeat(np.flatnonzero(keep), w[keep].astype(np.int64))
            d = subjects[:, idx]
            return _table(layers[:, idx], d, method), lambda mult: _plain_ceiling(d, mult, method)
        ww, d = w[keep], subjects[:, keep]
        if sorted_rows is None:
            units = _units(d, ww, method)
            return _units(layers[:, keep], ww, method) @ units.T, _ceiling(d, ww, method, units)
        units = sorted_rows[1].vectors(keep, w, info.unit)
        return sorted_rows[0].vectors(keep, w, info.unit) @ units.T, _ceiling(d, ww, method, units)

    return sample


def _pair_weights(counts: np.ndarray, i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """w over all P pairs: c_i c_j (0 where a stimulus was not drawn), as rsaflow.inference._weighted_pairs."""
    return (counts[i] * counts[j]).astype(np.float64)


def job_bytes(k: int, s: int, n: int, threads: int, samples: int = 64) -> int:
    """Peak bytes of numpy arrays of one brain_eval job (rsaflow.jobs.brain_eval) for K layers, S
    subjects, N stimuli (P pairs) on ``threads`` threads: about 6 copies of the K + S condensed RDMs
    (the records read and their stack; the unit vectors of evaluate_fixed and their temporaries; the
    ranked methods' per-resample unit vectors stay below), plus per thread one block of pairs
    (rsaflow.evaluation_moments.BLOCK): the subjects' S (S + 1) / 2 + S + 1 products, 4 weight columns
    per resample of a batch (``samples`` up to BATCH) and a K-row square of the layers. Checked against
    tracemalloc peaks in tests/test_evaluation.py (the rule adds 300 MB of interpreter and libraries)."""
    p = n * (n - 1) // 2
    block = min(evaluation_moments.BLOCK, p)
    columns = s * (s + 1) // 2 + 2 * s + 1 + 4 * min(evaluation_moments.BATCH, samples) + k
    return int(8 * p * 6 * (k + s) + threads * 8 * block * columns)


def _draws(rng: np.random.Generator, kind: str, n_boot: int, s_n: int, n: int) -> list:
    """The resamples in draw order, one generator: (b, subject multiplicities, stimulus counts) of the
    samples that are not skipped (fewer than 2 distinct subjects; too few stimuli, rsaflow.resampling.draw)."""
    ones = np.ones(s_n, dtype=np.int64)
    out = []
    for b in range(n_boot):
        subj = np.bincount(rng.integers(0, s_n, s_n), minlength=s_n) if kind != "stimuli" else ones
        counts = draw(rng, n, whole=False) if kind != "subjects" else np.ones(n, np.int64)
        if counts is not None and np.count_nonzero(subj) >= 2:
            out.append((b, subj, counts))
    return out


def bootstrap(layers: np.ndarray, subjects: np.ndarray, method: str, kind: str, n_boot: int,
              seed: int = 0) -> dict:
    """Bootstrap samples of the mean evaluation. Returns ``samples`` (B, K) and ``ceiling`` (B, 2) of
    ``kind``, and for ``both`` also ``samples_subjects``/``_stimuli`` and ``ceiling_subjects``/``_stimuli``
    (the dual bootstrap's other two sets, the same draws). Samples that cannot be evaluated (fewer than
    2 distinct subjects, too few stimuli, a constant RDM) are NaN rows. The draws come from one
    generator in sample order (:func:`_draws`) and the sums over pairs are added in a fixed block
    order (rsaflow.evaluation_moments; the per-resample methods run on one BLAS thread), so a seed gives the same
    bytes whatever the thread count. ``method``: one of :data:`EVAL_METHODS`; a bootstrap over stimuli
    needs :func:`resamples_stimuli`."""
    k, s_n = layers.shape[0], subjects.shape[0]
    n = n_from_pairs(layers.shape[1])
    sets = ("both", "subjects", "stimuli") if kind == "both" else (kind,)
    out = {f"samples_{t}": np.full((n_boot, k), np.nan) for t in sets}
    out.update({f"ceiling_{t}": np.full((n_boot, 2), np.nan) for t in sets})
    info = METHODS[method]
    if method not in EVAL_METHODS:
        raise ValueError(f"no model evaluation with {method!r}; choose one of {', '.join(EVAL_METHODS)}")
    if kind != "subjects" and not resamples_stimuli(method):
        raise ValueError(f"{method} whitens each resample's whole RDM: no bootstrap over stimuli here "
                         "(rsatoolbox drops the pairs of two draws of one stimulus); use bootstrap subjects or none")
    layers = np.ascontiguousarray(layers, dtype=np.float64)
    subjects = np.ascontiguousarray(subjects, dtype=np.float64)
    draws = _draws(np.random.default_rng(seed), kind, n_boot, s_n, n)
    if info.kind == "vector" and not info.ranked:
        evaluation_moments.samples(layers, subjects, info.centred, draws, sets, out)
    else:
        with _one_blas_thread():
            _unit_samples(layers, subjects, method, kind, draws, sets, out)
    out["samples"], out["ceiling"] = out[f"samples_{sets[0]}"], out[f"ceiling_{sets[0]}"]
    return out


def _unit_samples(layers, subjects, method: str, kind: str, draws: list, sets: tuple, out: dict) -> None:
    """Samples of ``draws`` into ``out`` one resample at a time (:func:`_sampler`), for the methods
    without batched moments; a resample on which an RDM is constant is skipped (NaN rows)."""
    s_n, n = subjects.shape[0], n_from_pairs(layers.shape[1])
    sampler = _sampler(layers, subjects, method)
    if resamples_stimuli(method):
        full = sampler(np.ones(layers.shape[1]), None)
    else:
        full = (_table(layers, subjects, method), lambda mult: _plain_ceiling(subjects, mult, method))
    i, j = np.triu_indices(n, k=1)
    ones = np.ones(s_n, dtype=np.int64)
    for b, subj, counts in draws:
        try:
            resampled = sampler(_pair_weights(counts, i, j), counts) if kind != "subjects" else full
            chosen = {"both": (resampled, subj), "subjects": (full, subj), "stimuli": (resampled, ones)}
            for t in sets:
                (ev, ceiling), mult = chosen[t]
                out[f"samples_{t}"][b] = (ev @ mult) / mult.sum()
                out[f"ceiling_{t}"][b] = ceiling(mult)
        except DegenerateRDMError:
            continue


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
    from scipy import stats  # here, not at import: the workflow reads job_bytes at DAG-build time

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
    from scipy import stats

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

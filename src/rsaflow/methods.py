"""The registry of RDM metrics and comparison methods: every other place derives from it.

Pure standard library (read at DAG-build time too). Like scipy's table of distance metrics, one
entry per name says what the workflow needs to know about it; the functions that compute them live
in :mod:`rsaflow.rdm` and :mod:`rsaflow.compare` (a ``pairwise`` method names its own function).
The config schema's enums are filled from these names when it is loaded (rsaflow.schema), and the
measure table of docs/measures.md is :func:`measure_table` (``python -m rsaflow.methods`` prints it;
a test checks the page holds it).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass


@dataclass(frozen=True)
class Metric:
    """An RDM metric: d(i, j) for patterns x_i, x_j in R^M (computed by :func:`rsaflow.rdm.compute_rdm`).

    angular: computed from cosines of (centred, for ``correlation``) patterns rather than from
    squared distances; centred: patterns are centred per stimulus first; squared: the squared
    distance is kept (no square root); formula and same_as: the convention and who shares it.
    row_local: d(i, j) depends on rows i and j alone (not on the other stimuli), so the RDM of a
    grown stimulus set may copy the stored distances of rows it shares (rsaflow.rdm_grow); every
    metric here is (correlation centres each row by its own mean).
    """

    name: str
    formula: str
    same_as: str
    angular: bool = False
    centred: bool = False
    squared: bool = False
    row_local: bool = True


@dataclass(frozen=True)
class Method:
    """A comparison method: everything rsaflow needs to know about it, in one record.

    kind: ``vector`` (one matrix product of per-RDM vectors read chunk by chunk from the RDM
    file), ``whole`` (one matrix product of per-RDM vectors that need the whole RDM:
    rsaflow.measures.cov_vector), ``raw`` (kendall_tau_a: one comparison per pair of raw upper
    triangles, with the tie counts the RDM file stores), ``pairwise`` (any function of two whole
    RDMs: ``pair`` names it, ``"module:function"``, called as f(x, y) -> float on two condensed
    float64 upper triangles of one length; :meth:`pair_function`) or ``activation`` (compares
    per-layer activation artifacts, not RDMs). artifact: the per-layer
    file it reads (``rdm``; ``cka``: a unit-norm centred kernel, compared by dot products;
    ``shape``: a Gram eigen-factor, compared by one SVD per pair).

    The unit vector of a ``vector`` method (rsaflow.compare.unit_vector, the one implementation)
    is v = the values (their average ranks when ``ranked``), minus their mean when ``centred``,
    then divided by its norm when ``unit`` (else multiplied by sqrt(12 / (n^3 - n)), rsatoolbox's
    rho-a); the per-file scalars it needs (rsaflow.rdmfile) are those ``centre_<name>`` and
    ``norm_<name>`` (``scale_<name>`` when not unit), from ``ranks`` when ranked.

    rsatoolbox: its name there (export, noise ceiling, docs; None: no rsatoolbox equivalent);
    pool: how rsatoolbox pools subjects' RDMs for the noise ceiling (rsaflow.ceiling.pool_rdms:
    ``ranks``, ``rms`` or ``zscore``; None: no noise ceiling); inference: whether bootstrap and
    permutations of the stimuli are defined for it; external: whether external RDMs can join;
    params: the ``compare`` keys it takes besides the common ones. mem: the job memory it adds
    beyond the streamed chunks, ``(coefficient, size)``: coefficient x 8 bytes x size with size
    ``P`` = N (N - 1) / 2 or ``N2`` = N^2 (workflow/rules/common.smk, method_mem_mb).
    top: the similarity of an RDM with itself, and the second-order dissimilarity is top - s
    (1 - s; 0 - s for a negative distance); bound: the largest top - s (the second-order matrix is
    clipped to [0, bound]); angle: the dissimilarity is arccos(s) in radians instead
    (rsaflow.compare.dissimilarity); distance: what that dissimilarity is, for labels, when it is
    not top - s in words. kernel, debiased: what a ``cka`` artifact computes
    (rsaflow.measures.cka_vector). formula, same_as: its row of the measure table
    (:func:`measure_table`): the second-order dissimilarity, and how other tools name it.
    """

    name: str
    kind: str
    artifact: str
    inference: bool
    external: bool
    rsatoolbox: str | None = None
    pool: str | None = None
    params: tuple[str, ...] = ()
    ranked: bool = False
    centred: bool = True
    unit: bool = True
    mem: tuple[float, str] = (0.0, "P")
    bound: float = 2.0
    angle: bool = False
    kernel: str | None = None
    debiased: bool = False
    pair: str | None = None
    top: float = 1.0
    distance: str | None = None
    formula: str = ""
    same_as: str = ""

    @property
    def label(self) -> str:
        """What a second-order matrix entry is, for axis and colour-bar labels."""
        return self.distance or f"{self.top:g} - {self.name} similarity"

    def pair_function(self):
        """The function ``pair`` names (a ``pairwise`` method), imported on first use."""
        module, name = self.pair.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def ceiling(self) -> bool:
        """Whether a noise ceiling of external groups is defined (rsaflow.ceiling.noise_ceiling)."""
        return self.pool is not None

    def mem_mb(self, n: int) -> float:
        """MB this method adds to a second-order or tile job for ``n`` stimuli (see ``mem``)."""
        coefficient, size = self.mem
        return coefficient * 8 * (n * (n - 1) / 2 if size == "P" else n * n) / 1e6


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("euclidean", "d(i,j) = sqrt(‖x_i − x_j‖² / M)",
           "the tutorial's; scipy `pdist(X)/sqrt(M)`"),
    Metric("sqeuclidean", "‖x_i − x_j‖² / M",
           "rsatoolbox's `'euclidean'`", squared=True),
    Metric("correlation", "1 − Pearson r(x_i, x_j) across units",
           "scipy `pdist(X, 'correlation')`", angular=True, centred=True),
    Metric("cosine", "1 − x_i·x_j / (‖x_i‖ ‖x_j‖)",
           "scipy `pdist(X, 'cosine')`", angular=True),
)}

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("spearman", "vector", "rdm", True, True, "spearman", "ranks", ranked=True,
           formula="1 − Spearman ρ of the upper triangles (ties: average ranks)",
           same_as="the tutorial's `1 − spearmanr`; rsatoolbox `compare(method='spearman')`"),
    Method("pearson", "vector", "rdm", True, True, "corr", "zscore",
           formula="1 − Pearson r of the upper triangles",
           same_as="rsatoolbox `'corr'`"),
    Method("cosine", "vector", "rdm", True, True, "cosine", "rms", centred=False,
           formula="1 − cosine of the (uncentred) upper triangles",
           same_as="rsatoolbox `'cosine'`"),
    Method("rho_a", "vector", "rdm", True, True, "rho-a", "ranks", ranked=True, unit=False,
           formula="1 − ρ_A, ρ_A = 12 Σ(r_a − r̄)(r_b − r̄) / (n³ − n) on average ranks (no tie correction)",
           same_as="rsatoolbox `'rho-a'`"),
    Method("kendall_tau_a", "raw", "rdm", True, True, "tau-a", "ranks", mem=(10, "P"),
           formula="1 − τ_A = 1 − (concordant − discordant)/(n(n−1)/2)",
           same_as="rsatoolbox `'tau-a'`; differs from scipy's `kendalltau` (τ_b) under ties"),
    Method("cka", "activation", "cka", False, False, bound=1.0, kernel="linear",
           formula="1 − linear CKA of the **activations**: ⟨HKH, HLH⟩/(‖HKH‖‖HLH‖), K = XXᵀ",
           same_as="Kornblith et al. 2019; not computed from RDMs"),
    Method("cka_debiased", "activation", "cka", False, False, kernel="linear", debiased=True,
           formula="1 − ⟨K̃, L̃⟩/(‖K̃‖‖L̃‖), K̃ the U-centred Gram: K̃ᵢⱼ = Kᵢⱼ − rᵢ/(N−2) − rⱼ/(N−2) + "
                   "Σr/((N−1)(N−2)) off the diagonal (r the row sums of K with its diagonal zeroed), K̃ᵢᵢ = 0; ⟨K̃, "
                   "L̃⟩/(N(N−3)) is the unbiased HSIC",
           same_as="Song et al. 2012; Kornblith et al. 2019 appendix; thingsvision `get_cka(kernel='linear', "
                   "unbiased=True)`; ≈ 0 for independent representations (biased CKA is ≈ 0.94 at N=64, width 1,000)"),
    Method("cka_rbf", "activation", "cka", False, False, params=("sigma_frac",), bound=1.0, kernel="rbf",
           formula="1 − CKA of Gaussian kernels exp(−d²ᵢⱼ/(2σ²)), σ = `sigma_frac` × √(median of the nonzero d²ᵢⱼ, "
                   "i<j) (default 0.8), each layer its own σ; biased (HKH)",
           same_as="thingsvision `kernel='rbf', sigma=None` is `sigma_frac: 1` (NumPy backend); Kornblith et al. "
                   "report 0.2/0.4/0.8, with the zero diagonal inside their median"),
    Method("cka_rbf_debiased", "activation", "cka", False, False, params=("sigma_frac",), kernel="rbf",
           debiased=True,
           formula="1 − ⟨K̃, L̃⟩/(‖K̃‖‖L̃‖) with K, L `cka_rbf`'s Gaussian kernels (same σ) and K̃ the U-centring of "
                   "`cka_debiased`; ≈ 0 for independent representations, can be negative",
           same_as="thingsvision `kernel='rbf', unbiased=True` (NumPy backend) at `sigma_frac: 1`"),
    Method("shape", "activation", "shape", False, False, params=("alpha",), mem=(6, "N2"), angle=True,
           distance="shape distance (radians)",
           formula="angular shape distance arccos(‖φ(X)ᵀφ(Y)‖_*/(‖φ(X)‖‖φ(Y)‖)) in radians, φ(X) = X_c(αI + "
                   "(1−α)C^−½), X_c centred and scaled to ‖X_c‖ = 1, C = X_cᵀX_c; a metric. α = 1 Procrustes (= "
                   "arccos of `bures`), α = 0 CCA (arccos of Σρ/√(rank X rank Y); 0 for any two layers of width ≥ "
                   "N−1)",
           same_as="Williams et al. 2021; netrep `LinearMetric(alpha)` (equal at α = 0 and 1; between, netrep skips "
                   "the unit-norm step and is not scale invariant); from the N×N Grams for every α"),
    Method("bures", "activation", "shape", False, False, "bures", mem=(6, "N2"), bound=1.0,
           formula="1 − tr((K_c^½ L_c K_c^½)^½)/√(tr K_c tr L_c), K_c = HKH: the cosine of the Procrustes angle, "
                   "‖X_cᵀY_c‖_*/(‖X_c‖‖Y_c‖)",
           same_as="rsatoolbox `compare(method='bures')` (with K_c = −HDH/2 from an RDM D); from the N×N Grams"),
    Method("cosine_cov", "whole", "rdm", True, True, "cosine_cov", "rms", centred=False, mem=(8, "N2"),
           formula="1 − ⟨G_a, G_b⟩/(‖G_a‖‖G_b‖), G = −HDH/2 of the RDM D: the whitened unbiased RDM cosine with "
                   "i.i.d. pattern noise",
           same_as="rsatoolbox `compare(method='cosine_cov')` with its default `sigma_k=None`"),
    Method("corr_cov", "whole", "rdm", True, True, "corr_cov", "zscore", mem=(8, "N2"),
           formula="as `cosine_cov` after subtracting the mean of each upper triangle from its off-diagonal entries",
           same_as="rsatoolbox `compare(method='corr_cov')`"),
    Method("neg_riem_dist", "pairwise", "rdm", False, True, "neg_riem_dist", pair="rsaflow.riemannian:neg_riem_dist",
           top=0.0, bound=float("inf"), distance="Riemannian distance", mem=(8, "N2"),
           formula="(d(a, b) + d(b, a))/2, d(a, b) = min_θ ‖log λ(e^θ₀G_a + e^θ₁Σ, G_b)‖ the Riemannian distance of "
                   "the RDMs' second moments G = (D_0i + D_0j − D_ij)/2 (relative to the first stimulus), Σ = I + "
                   "11ᵀ, λ the generalised eigenvalues (`rsaflow.riemannian`); G must be positive definite",
           same_as="rsatoolbox `compare(method='neg_riem_dist')` (= −d(a, b), with its default `sigma_k=None`), "
                   "averaged over both orders"),
)}

#: Every method-specific ``compare`` key (see Method.params) and its default.
PARAM_DEFAULTS = {"sigma_frac": 0.8, "alpha": 1.0}


def methods_of(kind: str) -> tuple[str, ...]:
    """The comparison methods of one ``kind`` (``vector``, ``whole``, ``raw``, ``pairwise``, ``activation``), in
    registry order."""
    return tuple(name for name, info in METHODS.items() if info.kind == kind)


#: Comparison methods with a noise ceiling of external groups (rsaflow.ceiling.noise_ceiling).
NOISE_CEILING_METHODS = tuple(name for name, info in METHODS.items() if info.ceiling)


#: How each noise-ceiling pool (Method.pool) averages the subjects' RDMs, in words (rsaflow.ceiling.pool_rdms).
POOL_WORDS = {"rms": "RMS-scaled RDMs", "zscore": "z-scored RDMs", "ranks": "average ranks"}


def measure_table() -> str:
    """The measure table of docs/measures.md (markdown): one row per metric and method, in registry
    order (the first of each is the schema's default), then the noise ceiling's row."""
    rows = ["| config | formula | relation to other tools |", "|---|---|---|"]
    for key, table in (("rdm.metric", METRICS), ("compare.method", METHODS)):
        for i, (name, info) in enumerate(table.items()):
            notes = [f"`compare.{p}`, default {PARAM_DEFAULTS[p]:g}" for p in getattr(info, "params", ())]
            notes = ["default"] * (i == 0) + notes
            extra = f" ({'; '.join(notes)})" if notes else ""
            rows.append(f"| `{key}: {name}`{extra} | {info.formula} | {info.same_as} |")
    pools = "; ".join(f"of {words} ({', '.join(m for m in NOISE_CEILING_METHODS if METHODS[m].pool == pool)})"
                      for pool, words in POOL_WORDS.items() if any(METHODS[m].pool == pool for m in METHODS))
    rows.append("| noise ceiling (external RDM groups) | lower = mean over subjects s of sim(pool(others), RDM_s), "
                f"upper = mean of sim(pool(all), RDM_s); pool: the mean {pools} | rsatoolbox "
                "`inference.boot_noise_ceiling` (`rsaflow.ceiling.noise_ceiling`) |")
    return "\n".join(rows) + "\n"


def method_info(name: str) -> Method:
    """The registry entry of a comparison method; ValueError naming the allowed ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown comparison method {name!r}; choose one of {', '.join(METHODS)}") from None


def dissimilarity_label(method: str) -> str:
    """What a second-order matrix entry of ``method`` is, for axis and colour-bar labels: the
    angle ``"shape distance (radians)"`` for ``shape`` (arccos of its similarity), else
    ``"1 - <method> similarity"`` (as :func:`rsaflow.compare.dissimilarity` computes them)."""
    return method_info(method).label


def artifact_spec(method: str, params: dict) -> dict:
    """What the per-layer artifact of an activation ``method`` computes (its job's config slice).

    ``cka`` artifacts: ``{"kind": "cka", "kernel": "linear" | "rbf", "debiased": bool}`` plus
    ``sigma_frac`` for rbf (rsaflow.measures.cka_vector); ``shape`` artifacts:
    ``{"kind": "shape", "alpha": a}`` (rsaflow.measures.shape_factor; bures is alpha 1, so
    ``bures`` and ``shape`` with alpha 1 share their artifacts). ``params``: the analysis's
    values of the method's Method.params (defaults PARAM_DEFAULTS).
    """
    info = method_info(method)
    value = {k: float(params.get(k, PARAM_DEFAULTS[k])) for k in info.params}
    if info.artifact == "cka":
        return {"kind": "cka", "kernel": info.kernel, "debiased": info.debiased, **value}
    if info.artifact == "shape":
        return {"kind": "shape", "alpha": value.get("alpha", 1.0)}
    raise ValueError(f"{method} reads RDM files, not a per-layer activation artifact")


def artifact_name(spec: dict) -> str:
    """The folder name of a per-layer artifact spec (:func:`artifact_spec`): readable and unique,
    e.g. ``cka``, ``cka_debiased``, ``cka_rbf_sigma_frac-0.8``, ``cka_rbf_debiased_sigma_frac-0.8``,
    ``shape_alpha-1.0``. The workflow maps names back to specs through a table built from the
    config, never by parsing them."""
    if spec["kind"] == "shape":
        return f"shape_alpha-{spec['alpha']!r}"
    name = "cka" if spec["kernel"] == "linear" else "cka_rbf"
    name += "_debiased" if spec["debiased"] else ""
    return name + (f"_sigma_frac-{spec['sigma_frac']!r}" if "sigma_frac" in spec else "")


if __name__ == "__main__":
    print(measure_table(), end="")

"""The registry of RDM metrics and comparison methods: every other place derives from it.

Pure standard library (read at DAG-build time too). Like scipy's table of distance metrics, one
entry per name says what the workflow needs to know about it; the functions that compute them live
in :mod:`rsaflow.rdm` and :mod:`rsaflow.compare`, and a test checks that the config schema's enums
are exactly these names.
"""

from __future__ import annotations

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
    rsaflow.measures.cov_vector), ``raw`` (one comparison per pair of raw upper triangles) or
    ``activation`` (compares per-layer activation artifacts, not RDMs). artifact: the per-layer
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
    bound: the largest 1 - s (the second-order matrix is clipped to [0, bound]); angle: the
    dissimilarity is arccos(s) in radians instead (rsaflow.compare.dissimilarity). kernel,
    debiased: what a ``cka`` artifact computes (rsaflow.measures.cka_vector).
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

    @property
    def label(self) -> str:
        """What a second-order matrix entry is, for axis and colour-bar labels."""
        return "shape distance (radians)" if self.angle else f"1 - {self.name} similarity"

    @property
    def ceiling(self) -> bool:
        """Whether a noise ceiling of external groups is defined (rsaflow.ceiling.noise_ceiling)."""
        return self.pool is not None

    def mem_mb(self, n: int) -> float:
        """MB this method adds to a second-order or tile job for ``n`` stimuli (see ``mem``)."""
        coefficient, size = self.mem
        return coefficient * 8 * (n * (n - 1) / 2 if size == "P" else n * n) / 1e6


METRICS: dict[str, Metric] = {m.name: m for m in (
    Metric("euclidean", "sqrt(||x_i - x_j||^2 / M)", "the tutorial's; scipy pdist('euclidean') / sqrt(M)"),
    Metric("sqeuclidean", "||x_i - x_j||^2 / M", "rsatoolbox's 'euclidean'", squared=True),
    Metric("correlation", "1 - Pearson r(x_i, x_j)", "scipy pdist('correlation')", angular=True, centred=True),
    Metric("cosine", "1 - <x_i, x_j> / (||x_i|| ||x_j||)", "scipy pdist('cosine')", angular=True),
)}

METHODS: dict[str, Method] = {m.name: m for m in (
    Method("spearman", "vector", "rdm", True, True, "spearman", "ranks", ranked=True),
    Method("pearson", "vector", "rdm", True, True, "corr", "zscore"),
    Method("cosine", "vector", "rdm", True, True, "cosine", "rms", centred=False),
    Method("rho_a", "vector", "rdm", True, True, "rho-a", "ranks", ranked=True, unit=False),
    Method("kendall_tau_a", "raw", "rdm", True, True, "tau-a", "ranks", mem=(10, "P")),
    Method("cka", "activation", "cka", False, False, bound=1.0, kernel="linear"),
    Method("cka_debiased", "activation", "cka", False, False, kernel="linear", debiased=True),
    Method("cka_rbf", "activation", "cka", False, False, params=("sigma_frac",), bound=1.0, kernel="rbf"),
    Method("cka_rbf_debiased", "activation", "cka", False, False, params=("sigma_frac",), kernel="rbf",
           debiased=True),
    Method("shape", "activation", "shape", False, False, params=("alpha",), mem=(6, "N2"), angle=True),
    Method("bures", "activation", "shape", False, False, "bures", mem=(6, "N2"), bound=1.0),
    Method("cosine_cov", "whole", "rdm", True, True, "cosine_cov", "rms", centred=False, mem=(8, "N2")),
    Method("corr_cov", "whole", "rdm", True, True, "corr_cov", "zscore", mem=(8, "N2")),
)}

#: Every method-specific ``compare`` key (see Method.params) and its default.
PARAM_DEFAULTS = {"sigma_frac": 0.8, "alpha": 1.0}


def methods_of(kind: str) -> tuple[str, ...]:
    """The comparison methods of one ``kind`` (``vector``, ``whole``, ``raw``, ``activation``), in registry order."""
    return tuple(name for name, info in METHODS.items() if info.kind == kind)


#: Comparison methods with a noise ceiling of external groups (rsaflow.ceiling.noise_ceiling).
NOISE_CEILING_METHODS = tuple(name for name, info in METHODS.items() if info.ceiling)


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

"""The registry of RDM metrics and comparison methods: every other place derives from it.

Pure standard library (read at DAG-build time too). Like scipy's table of distance metrics, one
entry per name says what the workflow needs to know about it; the functions that compute them live
in :mod:`rsaflow.rdm` and :mod:`rsaflow.compare`, and a test checks that the config schema's enums
are exactly these names.
"""

from __future__ import annotations

from typing import NamedTuple


class MetricInfo(NamedTuple):
    """An RDM metric: d(i, j) for patterns x_i, x_j in R^M (see :mod:`rsaflow.rdm`)."""

    formula: str
    same_as: str


class MethodInfo(NamedTuple):
    """A comparison method (see :mod:`rsaflow.compare` and :mod:`rsaflow.measures` for its formula).

    kind: ``vector`` (one matrix product of per-RDM vectors derived chunk by chunk from the RDM
    file), ``whole`` (one matrix product of per-RDM vectors that need the whole RDM),
    ``raw`` (pairwise on the raw upper triangles) or ``activation`` (compares activations, not
    RDMs); artifact: the per-layer file it reads (``rdm`` files; ``cka``: a unit-norm centred
    kernel, N^2 floats, compared by dot products; ``shape``: a Gram eigen-factor, compared by one
    SVD per pair); inference: whether bootstrap and permutations of the stimuli are defined for
    it here; external: whether external RDMs can join it; params: the ``compare`` keys it takes
    besides the common ones (they reach its per-layer artifact and its analysis, and no other).
    """

    kind: str
    artifact: str
    inference: bool
    external: bool
    params: tuple[str, ...] = ()


METRICS: dict[str, MetricInfo] = {
    "euclidean": MetricInfo("sqrt(||x_i - x_j||^2 / M)", "the tutorial's; scipy pdist('euclidean') / sqrt(M)"),
    "sqeuclidean": MetricInfo("||x_i - x_j||^2 / M", "rsatoolbox's 'euclidean'"),
    "correlation": MetricInfo("1 - Pearson r(x_i, x_j)", "scipy pdist('correlation')"),
    "cosine": MetricInfo("1 - <x_i, x_j> / (||x_i|| ||x_j||)", "scipy pdist('cosine')"),
}

METHODS: dict[str, MethodInfo] = {
    "spearman": MethodInfo("vector", "rdm", True, True),
    "pearson": MethodInfo("vector", "rdm", True, True),
    "cosine": MethodInfo("vector", "rdm", True, True),
    "rho_a": MethodInfo("vector", "rdm", True, True),
    "kendall_tau_a": MethodInfo("raw", "rdm", True, True),
    "cka": MethodInfo("activation", "cka", False, False),
    "cka_debiased": MethodInfo("activation", "cka", False, False),
    "cka_rbf": MethodInfo("activation", "cka", False, False, ("sigma_frac",)),
    "cka_rbf_debiased": MethodInfo("activation", "cka", False, False, ("sigma_frac",)),
    "shape": MethodInfo("activation", "shape", False, False, ("alpha",)),
    "bures": MethodInfo("activation", "shape", False, False),
    "cosine_cov": MethodInfo("whole", "rdm", True, True),
    "corr_cov": MethodInfo("whole", "rdm", True, True),
}

#: Every method-specific ``compare`` key (see MethodInfo.params) and its default.
PARAM_DEFAULTS = {"sigma_frac": 0.8, "alpha": 1.0}


def methods_of(kind: str) -> tuple[str, ...]:
    """The comparison methods of one ``kind`` (``vector``, ``whole``, ``raw``, ``activation``), in registry order."""
    return tuple(name for name, info in METHODS.items() if info.kind == kind)


def method_info(name: str) -> MethodInfo:
    """The registry entry of a comparison method; ValueError naming the allowed ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown comparison method {name!r}; choose one of {', '.join(METHODS)}") from None


def dissimilarity_label(method: str) -> str:
    """What a second-order matrix entry of ``method`` is, for axis and colour-bar labels: the
    angle ``"shape distance (radians)"`` for ``shape`` (arccos of its similarity), else
    ``"1 - <method> similarity"`` (as :func:`rsaflow.compare.dissimilarity` computes them)."""
    method_info(method)
    return "shape distance (radians)" if method == "shape" else f"1 - {method} similarity"


def artifact_spec(method: str, params: dict) -> dict:
    """What the per-layer artifact of an activation ``method`` computes (its job's config slice).

    ``cka`` artifacts: ``{"kind": "cka", "kernel": "linear" | "rbf", "debiased": bool}`` plus
    ``sigma_frac`` for rbf (rsaflow.measures.cka_vector); ``shape`` artifacts:
    ``{"kind": "shape", "alpha": a}`` (rsaflow.measures.shape_factor; bures is alpha 1, so
    ``bures`` and ``shape`` with alpha 1 share their artifacts). ``params``: the analysis's
    values of the method's MethodInfo.params (defaults PARAM_DEFAULTS).
    """
    info = method_info(method)
    value = {k: float(params.get(k, PARAM_DEFAULTS[k])) for k in info.params}
    if info.artifact == "cka":
        kernel = "rbf" if method.startswith("cka_rbf") else "linear"
        return {"kind": "cka", "kernel": kernel, "debiased": method.endswith("_debiased"), **value}
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

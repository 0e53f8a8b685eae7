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
    """A comparison method (see :mod:`rsaflow.compare` for its exact formula).

    kind: ``vector`` (one matrix product of per-RDM vectors), ``raw`` (pairwise on the raw upper
    triangles) or ``activation`` (compares activations, not RDMs); artifact: the per-layer file it
    reads (``rdm`` files, or ``cka`` Gram files); inference: whether bootstrap and permutations of
    the stimuli are defined for it here; external: whether external RDMs can join it.
    """

    kind: str
    artifact: str
    inference: bool
    external: bool


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
}


def methods_of(kind: str) -> tuple[str, ...]:
    """The comparison methods of one ``kind`` (``vector``, ``raw``, ``activation``), in registry order."""
    return tuple(name for name, info in METHODS.items() if info.kind == kind)


def method_info(name: str) -> MethodInfo:
    """The registry entry of a comparison method; ValueError naming the allowed ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown comparison method {name!r}; choose one of {', '.join(METHODS)}") from None

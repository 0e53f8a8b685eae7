"""What a model entry means, shared by the DAG-time checks and the extraction job.

Which kind of value ``weights`` is, which graph node a layer's ``node`` selects, which architectures
and weights names are accepted, and which config slice a layer's activation file records. The
Snakefile's checks (:mod:`rsaflow.config`, :mod:`rsaflow.catalog`) and the extraction job
(:mod:`rsaflow.extract`) both import this module, so they cannot disagree; and since the
extraction job imports nothing else of the DAG-time code, editing config normalisation or the
catalog reruns no extraction. Pure standard library.
"""

from __future__ import annotations

import difflib

from rsaflow.errors import ConfigError

def weights_kind(value: str) -> str:
    """``'none'`` (untrained, seeded initialisation), ``'name'`` or ``'checkpoint'``.

    A name is made of letters, digits and underscores only (``DEFAULT``, ``IMAGENET1K_V1``): a
    torchvision weights name of the architecture, checked against its list where torchvision is
    installed. Anything else (a ``/``, a ``.``, a ``-``, ...) is the path of a checkpoint file.
    """
    if value == "none":
        return "none"
    if value.replace("_", "").isalnum():
        return "name"
    return "checkpoint"


def checkpoint_path(weights: str) -> str | None:
    """The checkpoint file named by a ``weights`` value, or None for a weights name or ``none``."""
    return weights if weights_kind(weights) == "checkpoint" else None


def check_arch(arch: str, archs: list[str], key: str) -> None:
    """ConfigError at ``key`` (with close matches) unless ``arch`` is one of ``archs``."""
    if arch not in archs:
        close = difflib.get_close_matches(arch, archs, n=5, cutoff=0.5)
        hint = f"close matches: {', '.join(close)}" if close else "list them with: rsaflow layers --list"
        raise ConfigError(key, f"unknown torchvision classification architecture {arch!r}; {hint}")


def check_weights(weights: str, arch: str, names: list[str], key: str) -> None:
    """ConfigError at ``key`` unless ``weights`` is 'none', a checkpoint path, DEFAULT or one of ``names``."""
    if weights_kind(weights) != "name" or weights in ("DEFAULT", *names):
        return
    listed = ["DEFAULT", *sorted(n for n in names if n != "DEFAULT")]
    raise ConfigError(key, f"{weights!r} is neither a weights name of {arch} ({', '.join(listed)}), 'none', "
                           "nor a checkpoint path")


def select_node(node: str, nodes: list[str], arch: str, key: str, searched: str | None = None,
                listing: str | None = None) -> tuple[str, int]:
    """The graph node that ``node`` selects among ``nodes`` (execution order) and its index there.

    A module name (e.g. ``layer3``) selects the last graph node inside that module, as
    torchvision's ``create_feature_extractor`` does. ConfigError at ``key`` with close matches
    when ``node`` selects nothing; ``searched`` says what was searched (default ``arch``, e.g.
    ``"timm 1.0.31 convnext_atto (module names)"``), ``listing`` the command that lists them.
    """
    if node in nodes:
        return node, nodes.index(node)
    inside = [n for n in nodes if n.startswith(node + ".")]
    if inside:
        return inside[-1], nodes.index(inside[-1])
    close = difflib.get_close_matches(node, nodes, n=5, cutoff=0.5)
    raise ConfigError(key, f"node {node!r} not found in {searched or arch}; close matches: {', '.join(close) or 'none'} "
                           f"(list all with: {listing or f'rsaflow layers {arch}'})")


def layer_slice(model_spec: dict, label: str) -> dict:
    """The config slice recorded in one layer's activation file: the model's extraction slice
    (:func:`rsaflow.config.model_slice`) without ``layers``, plus this layer's label, node and reduce."""
    layer = model_spec["layers"][label]
    out = {k: v for k, v in model_spec.items() if k != "layers"}
    return {**out, "layer": label, "node": layer["node"], "reduce": layer["reduce"]}

"""The workflow's config after schema validation: normalised model/layer specs and per-rule slices.

Pure Python (no torch, no numpy): imported by the Snakefile at DAG-build time.
Each rule receives only its own slice, as one ``json.dumps(slice, sort_keys=True)`` string, so
reordering YAML keys, models or layers never reruns a job, and any change of a value does.
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

from rsaflow.errors import ConfigError
from rsaflow.methods import METHODS, PARAM_DEFAULTS, artifact_name, artifact_spec
from rsaflow import sources
from rsaflow.modelspec import checkpoint_path, weights_kind

DEFAULT_REDUCE = "flatten"


def dumps(obj) -> str:
    """Canonical JSON text of a config slice (sorted keys, no whitespace variation)."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


def layer_spec(value) -> dict:
    """``"node"`` or ``{"node": ..., "reduce": ..., "layout": ...}`` -> ``{"node", "reduce"}`` (+ ``layout`` if given)."""
    if isinstance(value, str):
        return {"node": value, "reduce": DEFAULT_REDUCE}
    out = {"node": value["node"], "reduce": value.get("reduce", DEFAULT_REDUCE)}
    if "layout" in value:
        out["layout"] = value["layout"]
    return out


def model_spec(key: str, value: dict, graph_nodes: dict | None = None) -> dict:
    """A model entry with defaults made explicit: arch, weights, seed, layers; and for a source
    other than torchvision (rsaflow.sources) ``source`` and the keys only it takes (``preprocess``
    with its defaults, ``trust_remote_code``, ``layers_by``; a factory's ``factory_sha256``). A
    torchvision entry's spec is what it was before sources existed, so its results keep their keys.

    graph_nodes: ``{catalog key: [node names in execution order]}`` (rsaflow.sources.Source.catalog_key),
    needed only to expand a glob pattern.
    """
    record = sources.get(value.get("source", sources.DEFAULT_SOURCE), f"models.{key}.source")
    arch = value.get("arch", key)
    weights = value.get("weights", record.default_weights)
    if weights is None:
        raise ConfigError(f"models.{key}.weights", f"required key is missing (source {record.name}); allowed: "
                                                   f"{record.weights_help}")
    nodes = None if graph_nodes is None else graph_nodes.get(record.catalog_key(arch))
    out = {"arch": arch, "weights": weights, "seed": value.get("seed", 0),
           "layers": layers_spec(value["layers"], nodes, f"models.{key}.layers", arch)}
    for name, field in sources.SOURCE_KEYS.items():
        if name in value and not getattr(record, field):
            allowed = ", ".join(s.name for s in sources.SOURCES.values() if getattr(s, field))
            raise ConfigError(f"models.{key}.{name}", f"source {record.name} takes no {name} (only: {allowed})")
    if record.name == sources.DEFAULT_SOURCE:
        return out
    out["source"] = record.name
    if record.preprocess:
        out["preprocess"] = {**sources.PREPROCESS_DEFAULTS, **value.get("preprocess", {})}
    for name in ("trust_remote_code", "layers_by"):
        if name in value:
            out[name] = value[name]
    if record.factory:
        path = sources.factory_file(arch, f"models.{key}.arch")
        if path is not None:
            out["factory_sha256"] = sources.file_digest(path)
    return out


#: Keys of a sweep given as a mapping: ``{pattern: glob, reduce: ...}`` or ``{nodes: [...], reduce: ...}``.
SWEEP_KEYS = ("pattern", "nodes")


def _is_sweep(layers) -> bool:
    return isinstance(layers, dict) and any(k in layers for k in SWEEP_KEYS) and set(layers) <= {*SWEEP_KEYS, "reduce"}


def _expand_pattern(pattern: str, nodes: list[str] | None, key: str, arch: str) -> list[str]:
    if nodes is None:
        raise ConfigError(key, f"the pattern {pattern!r} needs the graph's node names: install torchvision "
                               "where Snakemake runs, or list the nodes")
    matched = [n for n in nodes if fnmatch.fnmatchcase(n, pattern)]
    if not matched:
        raise ConfigError(key, f"the pattern {pattern!r} matches no node of {arch} "
                               f"(list them with: rsaflow layers {arch} --filter '{pattern}')")
    return matched


def layers_spec(layers, nodes: list[str] | None = None, key: str = "layers", arch: str = "") -> dict:
    """The ``layers`` of a model entry -> ``{label: {node, reduce}}``. Accepted forms:

    - ``{label: node | {node, reduce}}``: named layers;
    - ``[node, ...]``: a list of nodes (each labelled by its node name);
    - ``"glob"``: a pattern over the graph's ``nodes`` (fnmatch, case-sensitive, execution order);
    - ``{pattern: glob, reduce: r}`` or ``{nodes: [node, ...], reduce: r}``: a sweep with one
      reduction for all its layers (``pattern`` and ``nodes`` are therefore not layer labels).
    """
    reduce = DEFAULT_REDUCE
    if _is_sweep(layers):
        if "pattern" in layers and "nodes" in layers:
            raise ConfigError(key, "give either 'pattern' or 'nodes', not both")
        reduce = layers.get("reduce", DEFAULT_REDUCE)
        layers = layers.get("pattern", layers.get("nodes"))
    if isinstance(layers, str):
        return {n: {"node": n, "reduce": reduce} for n in _expand_pattern(layers, nodes, key, arch)}
    if isinstance(layers, list):
        return {node: {"node": node, "reduce": reduce} for node in layers}
    return {label: layer_spec(v) for label, v in layers.items()}


def normalise(config: dict, graph_nodes: dict | None = None) -> dict:
    """Validated config -> ``{"models": {key: model_spec}, "branches": [(model, layer), ...]}``.

    Branches are sorted, so every list derived from them is independent of the config's order.
    """
    models = {key: model_spec(key, value, graph_nodes) for key, value in config["models"].items()}
    seen: dict = {}
    for key, spec in models.items():
        for label, layer in spec["layers"].items():
            ident = (spec.get("source"), spec["arch"], spec["weights"], spec["seed"], layer["node"], layer["reduce"],
                     layer.get("layout"), dumps(spec.get("preprocess")))
            if ident in seen:
                raise ConfigError(
                    f"models.{key}.layers.{label}",
                    f"same architecture, weights, node and reduction as models.{seen[ident]}: the RDM would be computed twice",
                )
            seen[ident] = f"{key}.layers.{label}"
    branches = sorted((key, label) for key, spec in models.items() for label in spec["layers"])
    found = analyses(config)
    n_rdms = len(branches) + len(config.get("external_rdms", {}))
    for name, spec in found.items():
        if (spec["bootstrap"] or spec["permutations"]) and n_rdms < 2:
            key = "compare" if name == MAIN else f"analyses.{name}"
            raise ConfigError(key, f"bootstrap and permutations compare RDMs, but the config gives {n_rdms}; "
                                   "add a model, a layer or an external RDM, or set them to 0")
    return {"models": models, "branches": branches, "analyses": found, "kernels": kernels(found)}


MAIN = "main"


def analyses(config: dict) -> dict:
    """Every analysis by name: the main one (``rdm`` + ``compare``) and ``config['analyses']``.

    Each gets ``metric``, the comparison settings, and what its method compares: ``artifact``
    (``rdm`` or ``cka``) and ``joins_external``. The workflow writes an analysis's outputs under
    ``results/second_order/<name>/`` from RDMs under ``results/rdms/<metric>/`` (shared by the
    analyses of one metric): the name and the metric are wildcards, not parsed back from folders.
    A method-specific key (rsaflow.methods.PARAM_DEFAULTS: ``sigma_frac``, ``alpha``) stays only in
    the analyses whose method takes it, so changing it reruns no other analysis. Activation methods
    get ``kernel``: the folder name of their per-layer artifact (:func:`kernels`).
    """
    main_metric = config["rdm"]["metric"]
    out = {MAIN: {"metric": main_metric, **config["compare"]}}
    for name, spec in config.get("analyses", {}).items():
        if name == MAIN:
            raise ConfigError("analyses.main", "the name 'main' is the main analysis (rdm + compare); choose another")
        out[name] = {"metric": spec.get("metric", main_metric), **{k: v for k, v in spec.items() if k != "metric"}}
    for name, spec in out.items():
        info = METHODS[spec["method"]]
        for key in PARAM_DEFAULTS:
            if key in info.params:
                spec.setdefault(key, PARAM_DEFAULTS[key])
            else:
                spec.pop(key, None)
        spec["artifact"] = info.artifact
        spec["joins_external"] = info.external
        if info.artifact != "rdm":
            spec["kernel"] = artifact_name(artifact_spec(spec["method"], spec))
        for key in ("bootstrap", "permutations"):
            if not info.inference and spec.get(key):
                where = "compare" if name == MAIN else f"analyses.{name}"
                why = ("compares activations, and bootstrap and permutations resample RDMs" if info.artifact != "rdm"
                       else "has no resampling of its RDMs defined")
                raise ConfigError(f"{where}.{key}", f"{spec['method']} {why}; set it to 0, or use an RDM "
                                                    f"method ({', '.join(m for m, i in METHODS.items() if i.inference)})")
        if spec.get("tiles") and (spec.get("bootstrap") or spec.get("permutations")):
            where = "compare" if name == MAIN else f"analyses.{name}"
            raise ConfigError(f"{where}.tiles", "bootstrap and permutations resample all K RDMs in one job; set tiles "
                                                "to 0, or bootstrap and permutations to 0")
    return out


def kernels(found: dict) -> dict:
    """``{artifact folder name: artifact spec}`` of the activation analyses (rsaflow.methods.artifact_spec):
    the table the per-layer artifact rule looks its slice up in."""
    return {spec["kernel"]: artifact_spec(spec["method"], spec) for spec in found.values() if "kernel" in spec}


def analysis_slice(analysis: dict) -> dict:
    """What a second-order job depends on: the metric and the comparison settings."""
    return {k: v for k, v in analysis.items() if k not in ("artifact", "joins_external", "kernel")}


def model_slice(config: dict, norm: dict, model: str) -> dict:
    """What one model's extraction job depends on: the model, its layers, the extraction settings.

    ``seed`` only seeds the initialisation of an untrained model, so it is part of the slice only
    for ``weights: none`` (changing it for a trained model or a checkpoint reruns nothing).
    Threads, memory and the GPU declaration change how a job runs, not what it computes: not here.
    """
    spec = norm["models"][model]
    ex = config["extraction"]
    out = {
        "model": model,
        "arch": spec["arch"],
        "weights": spec["weights"],
        "layers": spec["layers"],
        **{k: ex[k] for k in ("batch_size", "device", "precision", "channels_last")},
    }
    if weights_kind(spec["weights"]) == "none":
        out["seed"] = spec["seed"]
    out.update({k: spec[k] for k in MODEL_EXTRAS if k in spec})
    return out


#: What a non-torchvision model's slice adds (rsaflow.config.model_spec).
MODEL_EXTRAS = ("source", "preprocess", "trust_remote_code", "layers_by", "factory_sha256")


def stimulus_files(stimuli: dict) -> list[str]:
    """The image files of a ``folder`` source (so that editing an image reruns the workflow)."""
    if stimuli["source"] != "folder":
        return []
    root = Path(stimuli["root"])
    if not root.is_dir():
        raise ConfigError("stimuli.root", f"folder {root} does not exist (source: folder needs root/<class>/<images>)")
    return sorted(str(p) for p in root.glob("*/*") if p.is_file() and not p.name.startswith("."))


def existing_path(key: str, path, hint: str = "") -> Path:
    """``path`` as a Path if it exists; ConfigError at ``key`` naming it (and ``hint``) otherwise."""
    p = Path(path).expanduser()
    if not p.exists():
        where = "" if p.is_absolute() else f" (relative to the working directory {Path.cwd()})"
        raise ConfigError(key, f"{p} does not exist{where}{'; ' + hint if hint else ''}")
    return p


def cifar10_files(stimuli: dict) -> list[Path]:
    """The CIFAR10 test split's files the stimuli job reads (none when it may download them)."""
    if stimuli["source"] != "cifar10" or stimuli["download"]:
        return []
    root = Path(stimuli["root"]) / "cifar-10-batches-py"
    return [root / "test_batch", root / "batches.meta"]


def check_paths(config: dict, norm: dict) -> None:
    """ConfigError for the first config path that does not exist: a checkpoint, an external RDM, the stimuli.

    Run before the DAG is built: Snakemake itself skips a job whose input is missing while its
    output exists (even when its params changed), which would keep a stale result without a word.
    """
    for key, spec in norm["models"].items():
        path = checkpoint_path(spec["weights"])
        if path is not None:
            existing_path(f"models.{key}.weights", path)
    for name, spec in config.get("external_rdms", {}).items():
        if "paths" in spec:
            for i, path in enumerate(spec["paths"]):
                existing_path(f"external_rdms.{name}.paths[{i}]", path)
        else:
            existing_path(f"external_rdms.{name}.path", spec["path"])
        if spec.get("ids"):
            existing_path(f"external_rdms.{name}.ids", spec["ids"])
    for path in cifar10_files(config["stimuli"]):
        existing_path("stimuli.root", path, "put CIFAR10's extracted cifar-10-batches-py/ folder under stimuli.root, "
                                            "or set stimuli.download: true where the network is available")
